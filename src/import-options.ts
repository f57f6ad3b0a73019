import { Size } from 'aws-cdk-lib';

/**
 * The processor architecture of the imported image.
 *
 * ImportImage accepts only these two. An arm64 image is imported with ImportSnapshot and
 * registered with RegisterImage instead.
 *
 * @see https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ImportImage.html
 */
export enum Architecture {
  /** 32-bit x86 (value `i386`). */
  I386 = 'i386',
  /** 64-bit x86 (value `x86_64`). */
  X86_64 = 'x86_64',
}

/**
 * The boot mode of the imported image.
 *
 * `uefi-preferred` exists for RegisterImage but is not supported for imports.
 *
 * @see https://docs.aws.amazon.com/vm-import/latest/userguide/vmie_prereqs.html#vmimport-boot-modes
 */
export enum BootMode {
  /** Legacy BIOS: the disk boots from an MBR (value `legacy-bios`). */
  LEGACY_BIOS = 'legacy-bios',
  /** UEFI: the disk boots from an EFI System Partition on a GPT disk (value `uefi`). */
  UEFI = 'uefi',
}

/**
 * The operating system of the imported image.
 */
export enum Platform {
  /** A Linux distribution (value `Linux`). */
  LINUX = 'Linux',
  /** Microsoft Windows (value `Windows`). */
  WINDOWS = 'Windows',
}

/**
 * The license type of the imported image.
 *
 * @see https://docs.aws.amazon.com/vm-import/latest/userguide/licensing.html
 */
export enum LicenseType {
  /** License included: AWS provides the operating system license, pay as you go (value `AWS`). */
  AWS = 'AWS',
  /** Bring your own license (value `BYOL`). */
  BYOL = 'BYOL',
}

/**
 * The target hypervisor of the import.
 */
export enum Hypervisor {
  /** Xen, the only value ImportImage accepts (value `xen`). */
  XEN = 'xen',
}

/**
 * Information about the upload of the disk image, recorded on the import task.
 */
export interface ClientData {
  /**
   * A free-form comment about the upload.
   *
   * @default - no comment
   */
  readonly comment?: string;

  /**
   * When the upload started.
   *
   * Checked at synth: a valid `Date`.
   *
   * @default - not recorded
   */
  readonly uploadStart?: Date;

  /**
   * When the upload ended.
   *
   * Checked at synth: a valid `Date`, not before `uploadStart`.
   *
   * @default - not recorded
   */
  readonly uploadEnd?: Date;

  /**
   * The size of the uploaded disk image.
   *
   * Checked at synth: a `Size` above zero.
   *
   * @default - not recorded
   */
  readonly uploadSize?: Size;
}
