/**
 * What a VMM does with an assigned IGD, as QEMU's hw/vfio/igd.c (vfio_pci_igd_config_quirk,
 * vfio_probe_igd_bar0_quirk) and its firmware do it, as data: the config registers the VMM
 * emulates in front of the device, the BAR0 mirrors it traps, and the fw_cfg files it publishes.
 * The device (IgdPassthroughDevice) is the kernel's half; this plan is QEMU's half.
 */

import {
  IGD_ASLS,
  IGD_BDSM_MMIO_OFFSET,
  IGD_GGC_MMIO_OFFSET,
  IGD_GMCH,
  IGD_GMCH_SIZE,
  IGD_GMCH_VGA_DISABLE,
  igdBdsmRegister,
  igdOverrideGms,
  igdStolenMemorySize,
} from '@vfiokit/hw';
import { igdRegisters } from '../host/facts.js';
import type { IgdHostFacts } from '../host/types.js';
import { PCI_CLASS_DISPLAY_VGA } from '../igd/constants.js';

export interface EmulatedRegister {
  readonly name: 'ASLS' | 'BDSM' | 'GGC';
  readonly offset: number;
  readonly size: 2 | 4 | 8;
  /** The value the guest reads before its firmware writes (bigint for the 8-byte BDSM). */
  readonly initial: bigint;
  readonly writable: boolean;
}

export interface IgdAssignmentPlan {
  readonly generation: number;
  /** Config registers the VMM emulates (QEMU: emulated_config_bits ~0). */
  readonly emulate: readonly EmulatedRegister[];
  /** BAR0 windows that read (and write) the emulated config register instead of the device. */
  readonly mmioMirrors: readonly {
    readonly bar: 0;
    readonly offset: number;
    readonly size: number;
    readonly config: number;
  }[];
  /** fw_cfg files: etc/igd-opregion (the OpRegion region's bytes) and etc/igd-bdsm-size (u64 LE). */
  readonly fwCfg: { readonly 'etc/igd-bdsm-size': Uint8Array; readonly opRegionFile: 'etc/igd-opregion' };
  readonly stolenBytes: number;
  /** Whether QEMU's legacy (VGA) mode applies, and which condition failed when it does not. */
  readonly legacyMode: { readonly eligible: boolean; readonly reason: string };
}

export interface IgdPlanOptions {
  /** QEMU's x-igd-gms: replace GMS in the guest's GGC. */
  readonly gms?: number;
  /** The guest machine family ('pc_piix' for i440fx, 'q35'). Default 'pc_piix'. */
  readonly machine?: string;
  /** The IGD's guest address as "bus:dev.fn". Default '00:02.0'. */
  readonly guestAddress?: string;
}

export function igdAssignmentPlan(facts: IgdHostFacts, options: IgdPlanOptions = {}): IgdAssignmentPlan {
  const gen = facts.generation;
  let ggc = igdRegisters(facts.igd).ggc;
  const emulate: EmulatedRegister[] = [
    { name: 'ASLS', offset: IGD_ASLS, size: 4, initial: 0n, writable: true },
  ];
  const mmioMirrors: { bar: 0; offset: number; size: number; config: number }[] = [];
  if (options.gms !== undefined) {
    ggc = igdOverrideGms(gen, options.gms, ggc);
    emulate.push({ name: 'GGC', offset: IGD_GMCH, size: 4, initial: BigInt(ggc), writable: false });
    mmioMirrors.push({ bar: 0, offset: IGD_GGC_MMIO_OFFSET, size: IGD_GMCH_SIZE, config: IGD_GMCH });
  }
  const bdsm = igdBdsmRegister(gen);
  if (gen > 0)
    emulate.push({ name: 'BDSM', offset: bdsm.offset, size: bdsm.size, initial: 0n, writable: true });
  if (gen >= 6)
    mmioMirrors.push({ bar: 0, offset: IGD_BDSM_MMIO_OFFSET, size: bdsm.size, config: bdsm.offset });
  const stolenBytes = gen > 0 ? igdStolenMemorySize(gen, ggc) : 0;
  const size = new Uint8Array(8);
  new DataView(size.buffer).setBigUint64(0, BigInt(stolenBytes), true);

  const machine = options.machine ?? 'pc_piix';
  const address = options.guestAddress ?? '00:02.0';
  let reason =
    "all of QEMU's conditions hold (VGA class, gen 6-9, VGA not disabled in GGC, i440fx, guest 00:02.0)";
  if (facts.igd.classCode !== PCI_CLASS_DISPLAY_VGA)
    reason = `the IGD's class is 0x${facts.igd.classCode.toString(16).padStart(6, '0')}, not VGA (0x030000)`;
  else if (gen < 6 || gen > 9) reason = `the IGD's generation is ${gen}; legacy mode needs 6 to 9`;
  else if (ggc & IGD_GMCH_VGA_DISABLE) reason = 'GGC bit 1 (VGA disable) is set';
  else if (machine !== 'pc_piix') reason = `the machine is ${machine}; legacy mode needs i440fx (pc_piix)`;
  else if (address !== '00:02.0') reason = `the IGD sits at guest ${address}; legacy mode needs 00:02.0`;
  const eligible = reason.startsWith('all');
  return {
    generation: gen,
    emulate,
    mmioMirrors,
    fwCfg: { 'etc/igd-bdsm-size': size, opRegionFile: 'etc/igd-opregion' },
    stolenBytes,
    legacyMode: { eligible, reason },
  };
}
