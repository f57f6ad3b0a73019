export * from './disk-image';
export * from './import-options';
export * from './vm-image-import';
export * from './vm-import-role';
