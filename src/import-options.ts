import { Size } from 'aws-cdk-lib';

/**
 * The processor architecture of the imported image.
 *
 * ImportImage accepts only `i386` and `x86_64`. An arm64 image takes the snapshot route
 * (`importMethod: ImportMethod.SNAPSHOTS`), which imports each disk with ImportSnapshot and
 * registers the AMI with RegisterImage.
 *
 * @see https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ImportImage.html
 */
export enum Architecture {
  /** 32-bit x86 (value `i386`). */
  I386 = 'i386',
  /** 64-bit x86 (value `x86_64`). */
  X86_64 = 'x86_64',
  /** 64-bit Arm (value `arm64`): only with `ImportMethod.SNAPSHOTS`, and with `BootMode.UEFI`. */
  ARM64 = 'arm64',
}

/**
 * How the disks become an AMI.
 *
 * @see https://docs.aws.amazon.com/vm-import/latest/userguide/vmie_prereqs.html
 */
export enum ImportMethod {
  /**
   * `ImportImage` (value `image`): VM Import converts the operating system (drivers,
   * licensing) and registers the AMI. For Windows and other licensed systems, and for
   * OVA and VHDX files. i386 and x86_64 only.
   */
  IMAGE = 'image',
  /**
   * `ImportSnapshot` for each disk, in parallel, then `RegisterImage` with every field
   * set by this library (value `snapshots`): no operating system conversion and no
   * license handling. For arm64, UEFI and cloud-ready Linux disks, and for systems VM
   * Import does not recognise. VHD, VMDK and RAW only; the image must be named.
   */
  SNAPSHOTS = 'snapshots',
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
