/** Building and reading IgdHostFacts: identity from config bytes, derived generation and stolen size. */
import { VfioError } from '@vfiokit/core';
import { IGD_ASLS, IGD_GMCH, igdBdsmRegister, igdGeneration, igdStolenMemorySize } from '@vfiokit/hw';
import type { IgdBarSizes, IgdHostFacts, IgdIdentity } from './types.js';

const u16 = (b: Uint8Array, o: number) => (o + 2 <= b.length ? b[o] | (b[o + 1] << 8) : 0);
const u32 = (b: Uint8Array, o: number) =>
  o + 4 <= b.length ? (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0 : 0;

/** The identity in a config image's header. */
export function identityFromConfig(config: Uint8Array): IgdIdentity {
  const classRev = u32(config, 0x08); // linux/pci_regs.h PCI_CLASS_REVISION
  return {
    vendorId: u16(config, 0x00),
    deviceId: u16(config, 0x02),
    subsystemVendorId: u16(config, 0x2c),
    subsystemId: u16(config, 0x2e),
    revision: classRev & 0xff,
    classCode: classRev >>> 8,
    config,
  };
}

/** GGC, BDSM and ASLS as the host's IGD config holds them (BDSM at 0x5c or 0xc0 by generation). */
export function igdRegisters(igd: IgdIdentity): { ggc: number; bdsm: number; asls: number } {
  const bdsm = igdBdsmRegister(igdGeneration(igd.deviceId));
  const lo = u32(igd.config, bdsm.offset);
  const hi = bdsm.size === 8 ? u32(igd.config, bdsm.offset + 4) & 0x1fffff : 0;
  return { ggc: u16(igd.config, IGD_GMCH), bdsm: hi * 2 ** 32 + lo, asls: u32(igd.config, IGD_ASLS) };
}

export function makeFacts(input: {
  source: string;
  igd: IgdIdentity;
  hostBridge: Uint8Array;
  lpcBridge: Uint8Array;
  opRegion: Uint8Array;
  extendedVbt?: Uint8Array;
  bars: IgdBarSizes;
}): IgdHostFacts {
  const { config } = input.igd;
  if (config.length !== 256 && config.length !== 4096) {
    throw new VfioError(
      'EINVAL',
      `the IGD config of ${input.source} is ${config.length} bytes, not 256 or 4096.`,
      {
        hint: 'Read the whole config space (as root, sysfs gives all of it).',
      },
    );
  }
  const generation = igdGeneration(input.igd.deviceId);
  const { ggc } = igdRegisters(input.igd);
  return {
    ...input,
    generation,
    stolenBytes: igdStolenMemorySize(generation, ggc),
  };
}
