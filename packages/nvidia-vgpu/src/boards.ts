/**
 * Physical boards and their vGPU profile tables, restated from published sources. Only tables
 * confirmed in a source are here; anything not confirmed is left out (undefined), never guessed.
 *
 * Profile name = `<board>-<framebuffer GB><series>` (NVIDIA vGPU documentation); the sysfs `name`
 * is "NVIDIA <profile>" (newer releases; older ones printed "GRID <profile>").
 */

/** Q = RTX Virtual Workstation, B = virtual PC, A = virtual applications, C = compute. */
export type VgpuSeries = 'Q' | 'B' | 'A' | 'C';

export interface Resolution {
  readonly width: number;
  readonly height: number;
}

export interface VgpuProfile {
  /** The numeric vGPU type id: the mdev type is `nvidia-<typeId>`, the SR-IOV selector takes it as is. */
  readonly typeId: number;
  /** e.g. `T4-8C`, `RTX6000-Ada-4Q`. */
  readonly profile: string;
  readonly series: VgpuSeries;
  /** Framebuffer per vGPU in MiB (the `framebuffer=<n>M` of the description). */
  readonly framebufferMiB: number;
  /** Maximum vGPUs of this type per physical GPU in equal-size mode. */
  readonly maxInstances: number;
  /** Virtual display heads; undefined where no source gives it. */
  readonly numHeads?: number;
  /** Maximum resolution per head; undefined where no source gives it. */
  readonly maxResolution?: Resolution;
  /** Frame-rate limiter in frames per second (`frl_config`); undefined where no source gives it. */
  readonly frlConfig?: number;
  /** PCI subsystem device id the guest sees for this type (subsystem vendor 0x10de); undefined if unpublished. */
  readonly subsystemId?: number;
}

export interface BoardSpec {
  /** Marketing name. */
  readonly name: string;
  /** Short name used in profile names. */
  readonly short: string;
  readonly deviceId: number;
  /** 24-bit class code. */
  readonly classCode: number;
  readonly revision: number;
  /** Framebuffer of one physical GPU in MiB. */
  readonly framebufferMiB: number;
  /** How the NVIDIA host stack provisions vGPUs on this board. */
  readonly provisioning: 'mdev' | 'sriov';
  /** Whether the GPU has a mixed-size (heterogeneous) mode. */
  readonly mixedSizeSupported: boolean;
  /** Framebuffer per placement slot in MiB (the smallest profile's framebuffer). */
  readonly slotMiB: number;
  readonly profiles: readonly VgpuProfile[];
}

/** PCI vendor id of NVIDIA Corporation (pci.ids). */
export const NVIDIA_VENDOR_ID = 0x10de;

/** PCI class 03 (display) subclass 02 (3D controller), prog-if 00. */
export const PCI_CLASS_DISPLAY_3D = 0x030200;
/** PCI class 03 (display) subclass 00 (VGA compatible), prog-if 00. */
export const PCI_CLASS_DISPLAY_VGA = 0x030000;

const GIB = 1024;

/**
 * Tesla T4 (TU104GL, 16 GB, one GPU, Turing: no SR-IOV vGPU, no mixed-size mode).
 * IDs: `lspci -nn` shows "3D controller [0302]: NVIDIA Corporation Tesla T4 [10de:1eb8] (rev a1)".
 * C-series table: NVIDIA AI Enterprise release 8 reference (turing.html): 16C/8C/4C, max 1/2/4.
 * Type ids nvidia-319/320/321, one head, 4096x2160, 60 fps: the vgpuConfig.xml table of driver
 * 510.47.03 (and the P40-4C description "num_heads=1, frl_config=60, ..., max_resolution=4096x2160"
 * printed by a real host for the same series). The AIE r8 page lists 3840x2400 as the largest
 * display; the description keeps what the driver prints.
 * Subsystem ids per type (10de:139a, 10de:139b, 10de:1375) as the vGPU presents them to guests.
 */
export const TESLA_T4: BoardSpec = {
  name: 'Tesla T4',
  short: 'T4',
  deviceId: 0x1eb8,
  classCode: PCI_CLASS_DISPLAY_3D,
  revision: 0xa1,
  framebufferMiB: 16 * GIB,
  provisioning: 'mdev',
  mixedSizeSupported: false,
  slotMiB: 4 * GIB,
  profiles: [c(319, 'T4-4C', 4, 4, 0x139a), c(320, 'T4-8C', 8, 2, 0x139b), c(321, 'T4-16C', 16, 1, 0x1375)],
};

function c(typeId: number, profile: string, gb: number, max: number, subsystemId: number): VgpuProfile {
  return {
    typeId,
    profile,
    series: 'C',
    framebufferMiB: gb * GIB,
    maxInstances: max,
    numHeads: 1,
    maxResolution: { width: 4096, height: 2160 },
    frlConfig: 60,
    subsystemId,
  };
}

/**
 * RTX 6000 Ada Generation (AD102GL, 48 GB, one GPU): `lspci -nn` shows "VGA compatible controller
 * [0300]: NVIDIA Corporation AD102GL [RTX 6000 Ada Generation] [10de:26b1] (rev a1)".
 * Q types 941..950 ("NVIDIA RTX6000-Ada-<n>Q") from creatable_vgpu_types in the upstream RFC v2
 * (Documentation/gpu/drivers/nvidia-vgpu.rst). Equal-size maximum = 48 / n (derived; every size
 * divides 48). Q-series profiles cap at 60 fps in every published Q table (derived by series).
 * Heads, maximum resolution and per-type subsystem ids are not published for these types and are
 * left out. Mixed-size mode: NVIDIA documents it for vGPU 17+ GPUs; its support on this board was
 * not confirmed from a primary source here [U]; set `mixedSizeSupported: false` to be strict.
 */
export const RTX_6000_ADA: BoardSpec = {
  name: 'RTX 6000 Ada Generation',
  short: 'RTX6000-Ada',
  deviceId: 0x26b1,
  classCode: PCI_CLASS_DISPLAY_VGA,
  revision: 0xa1,
  framebufferMiB: 48 * GIB,
  provisioning: 'sriov',
  mixedSizeSupported: true,
  slotMiB: 1 * GIB,
  profiles: [1, 2, 3, 4, 6, 8, 12, 16, 24, 48].map((gb, i) => ({
    typeId: 941 + i,
    profile: `RTX6000-Ada-${gb}Q`,
    series: 'Q' as const,
    framebufferMiB: gb * GIB,
    maxInstances: 48 / gb,
    frlConfig: 60,
  })),
};

export const BOARDS: readonly BoardSpec[] = [TESLA_T4, RTX_6000_ADA];

/** The sysfs `name` of a type. */
export function vgpuTypeName(p: VgpuProfile): string {
  return `NVIDIA ${p.profile}`;
}

/**
 * The sysfs `description`: the driver's comma-separated key=value list (num_heads, frl_config,
 * framebuffer, max_resolution, max_instance); keys with no published value are left out.
 */
export function vgpuTypeDescription(p: VgpuProfile): string {
  const parts: string[] = [];
  if (p.numHeads !== undefined) parts.push(`num_heads=${p.numHeads}`);
  if (p.frlConfig !== undefined) parts.push(`frl_config=${p.frlConfig}`);
  parts.push(`framebuffer=${p.framebufferMiB}M`);
  if (p.maxResolution) parts.push(`max_resolution=${p.maxResolution.width}x${p.maxResolution.height}`);
  parts.push(`max_instance=${p.maxInstances}`);
  return parts.join(', ');
}

/** Placement slots a profile occupies on its board. */
export function placementSize(board: BoardSpec, p: VgpuProfile): number {
  return Math.ceil(p.framebufferMiB / board.slotMiB);
}
