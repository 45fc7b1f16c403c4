/**
 * The Linux host source: the IGD's and the bridges' config from sysfs
 * (/sys/bus/pci/devices/<bdf>/config, which gives the whole config space only to root), BAR sizes
 * from .../resource, and the OpRegion from i915's debugfs file i915_opregion (and i915_vbt for an
 * extended VBT), found under /sys/kernel/debug/dri/<bdf>/ or /sys/kernel/debug/dri/<card minor>/.
 * Every missing piece is a VfioError saying what is missing and what to do.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VfioError } from '@vfiokit/core';
import {
  IGD_DEFAULT_APERTURE_SIZE,
  IGD_DEFAULT_IO_SIZE,
  IGD_DEFAULT_MMIO_SIZE,
  PCI_BASE_CLASS_DISPLAY,
  PCI_VENDOR_ID_INTEL,
} from '../igd/constants.js';
import { ASLE_OFF_RVDA, ASLE_OFF_RVDS, OPR_OFF_OVER_MINOR, OPREGION_SIZE } from '../opregion/layout.js';
import { identityFromConfig, makeFacts } from './facts.js';
import type { IgdBarSizes, IgdHostFacts, IgdHostSource } from './types.js';

export interface LinuxSourceOptions {
  /** The IGD's PCI address, domain included. Default 0000:00:02.0. */
  bdf?: string;
  /** The file-system root (tests point it at a fake sysfs/debugfs tree). Default '/'. */
  root?: string;
}

const BDF_RE = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i;
// linux/pci_regs.h PCI_STD_HEADER_SIZEOF: what sysfs gives an unprivileged reader
const UNPRIVILEGED_CONFIG_BYTES = 64;

function errno(cause: unknown): string | undefined {
  return (cause as NodeJS.ErrnoException | undefined)?.code;
}

function readOrThrow(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (cause) {
    if (errno(cause) === 'EACCES' || errno(cause) === 'EPERM') {
      throw new VfioError('EACCES', `reading ${what} (${path}) was refused.`, {
        hint: 'Run as root: sysfs config and debugfs need it.',
        cause,
      });
    }
    throw new VfioError('ENOENT', `${what} (${path}) cannot be read: ${errno(cause) ?? String(cause)}.`, {
      hint: 'Check that the device and the file exist on this host.',
      cause,
    });
  }
}

export function linuxSource(options: LinuxSourceOptions = {}): IgdHostSource {
  const bdf = (options.bdf ?? '0000:00:02.0').toLowerCase();
  const root = options.root ?? '/';
  const m = BDF_RE.exec(bdf);
  if (!m) {
    throw new VfioError('EINVAL', `"${bdf}" is not a PCI address of the form 0000:00:02.0.`, {
      hint: 'Give domain:bus:device.function in hex, as lspci -D prints it.',
    });
  }
  const domain = m[1];
  const devices = join(root, 'sys/bus/pci/devices');
  return {
    describe: () => `linux: IGD ${bdf}${root === '/' ? '' : ` under ${root}`}`,
    load(): IgdHostFacts {
      const dir = join(devices, bdf);
      if (!existsSync(dir)) {
        throw new VfioError('ENOENT', `there is no PCI device at ${bdf} (${dir} does not exist).`, {
          hint: 'Check the address with lspci -D; the IGD is normally 0000:00:02.0.',
        });
      }
      const config = readConfig(join(dir, 'config'), `the config space of ${bdf}`);
      const igd = identityFromConfig(config);
      if (igd.vendorId !== PCI_VENDOR_ID_INTEL || igd.classCode >>> 16 !== PCI_BASE_CLASS_DISPLAY) {
        throw new VfioError(
          'ENODEV',
          `the device at ${bdf} is ${hex4(igd.vendorId)}:${hex4(igd.deviceId)} with class 0x${igd.classCode.toString(16).padStart(6, '0')}, not an Intel display controller (IGD).`,
          { hint: 'Give the address of the Intel integrated graphics device (normally 0000:00:02.0).' },
        );
      }
      const bridge = (devfn: string) => {
        const path = join(devices, `${domain}:00:${devfn}`, 'config');
        return existsSync(path)
          ? readConfig(path, `the config space of ${domain}:00:${devfn}`)
          : new Uint8Array(0);
      };
      const { opRegion, extendedVbt } = readOpRegion(root, dir, bdf);
      return makeFacts({
        source: `linux ${bdf}`,
        igd,
        hostBridge: bridge('00.0'),
        lpcBridge: bridge('1f.0'),
        opRegion,
        ...(extendedVbt ? { extendedVbt } : {}),
        bars: readBars(join(dir, 'resource')),
      });
    },
  };
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

function readConfig(path: string, what: string): Uint8Array {
  const bytes = readOrThrow(path, what);
  if (bytes.length <= UNPRIVILEGED_CONFIG_BYTES) {
    throw new VfioError(
      'EACCES',
      `only ${bytes.length} bytes of ${what} are readable; sysfs gives the whole config space only to root.`,
      { hint: 'Run as root.' },
    );
  }
  if (bytes.length !== 256 && bytes.length !== 4096) {
    throw new VfioError('EIO', `${what} is ${bytes.length} bytes, not 256 or 4096.`, {
      hint: 'The sysfs config file is not what Linux writes; check the path.',
    });
  }
  return bytes;
}

/** BAR sizes from sysfs `resource` ("start end flags" per line); defaults when it is missing. */
function readBars(path: string): IgdBarSizes {
  const bars: IgdBarSizes = {
    mmio: IGD_DEFAULT_MMIO_SIZE,
    aperture: IGD_DEFAULT_APERTURE_SIZE,
    io: IGD_DEFAULT_IO_SIZE,
  };
  if (!existsSync(path)) return bars;
  const lines = new TextDecoder().decode(readOrThrow(path, 'the BAR resources')).split('\n');
  const size = (i: number) => {
    const f = lines[i]?.trim().split(/\s+/);
    if (!f || f.length < 2) return 0;
    try {
      const start = BigInt(f[0]);
      const end = BigInt(f[1]);
      return end > start ? Number(end - start + 1n) : 0;
    } catch {
      return 0;
    }
  };
  return { mmio: size(0) || bars.mmio, aperture: size(2) || bars.aperture, io: size(4) || bars.io };
}

function readOpRegion(
  root: string,
  dir: string,
  bdf: string,
): { opRegion: Uint8Array; extendedVbt?: Uint8Array } {
  const debugfs = join(root, 'sys/kernel/debug');
  const dri = join(debugfs, 'dri');
  if (!existsSync(dri)) {
    let listable = true;
    try {
      if (existsSync(debugfs)) readdirSync(debugfs);
    } catch {
      listable = false;
    }
    if (!listable) {
      throw new VfioError('EACCES', `${debugfs} cannot be read, so i915's OpRegion file is out of reach.`, {
        hint: 'Run as root.',
      });
    }
    throw new VfioError(
      'ENOENT',
      `debugfs is not mounted (${dri} does not exist), so the OpRegion cannot be read.`,
      {
        hint: 'Mount it: mount -t debugfs none /sys/kernel/debug.',
      },
    );
  }
  const candidates = [join(dri, bdf)];
  const drm = join(dir, 'drm');
  if (existsSync(drm)) {
    for (const entry of readdirSync(drm)) {
      const card = /^card(\d+)$/.exec(entry);
      if (card) candidates.push(join(dri, card[1]));
    }
  }
  const found = candidates.find((c) => existsSync(join(c, 'i915_opregion')));
  if (!found) {
    throw new VfioError('ENOENT', `no i915_opregion file for ${bdf} (looked in ${candidates.join(', ')}).`, {
      hint: 'i915 must be bound to the IGD to dump its OpRegion: save it (cat i915_opregion > opregion.bin) before binding vfio-pci and use the fixture source.',
    });
  }
  const opRegion = readOrThrow(join(found, 'i915_opregion'), 'the OpRegion');
  if (opRegion.length < OPREGION_SIZE) {
    throw new VfioError(
      'ENODEV',
      `i915_opregion of ${bdf} has ${opRegion.length} bytes; the IGD has no OpRegion.`,
      {
        hint: 'This host firmware publishes no OpRegion (ASLS is 0); GVT-d needs one.',
      },
    );
  }
  // i915 dumps only the 8 KiB; an extended VBT comes from i915_vbt.
  const dv = new DataView(opRegion.buffer, opRegion.byteOffset, opRegion.byteLength);
  const version = dv.getUint16(OPR_OFF_OVER_MINOR, true);
  const rvda = dv.getBigUint64(ASLE_OFF_RVDA, true);
  const rvds = dv.getUint32(ASLE_OFF_RVDS, true);
  if (version >= 0x0200 && rvda !== 0n && rvds !== 0) {
    const vbt = readOrThrow(join(found, 'i915_vbt'), 'the extended VBT (i915_vbt)');
    const extendedVbt = new Uint8Array(rvds);
    extendedVbt.set(vbt.subarray(0, rvds));
    return { opRegion: opRegion.subarray(0, OPREGION_SIZE), extendedVbt };
  }
  return { opRegion };
}
