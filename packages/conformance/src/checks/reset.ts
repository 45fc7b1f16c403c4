/** VFIO_DEVICE_RESET puts config space back to its state right after open. */
import { VFIO_PCI_CONFIG_REGION_INDEX } from '@vfiokit/core';
import {
  PCI_BASE_ADDRESS_0,
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_INTERRUPT_LINE,
  PCI_STD_NUM_BARS,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_RESET,
} from '@vfiokit/core/abi';
import type { ConformanceCheck } from '../types.js';
import { openConfig } from './config.js';
import { describeRet, firstDifference, getDeviceInfo, hex, ioctl } from './util.js';

/** Vendor and device ID, revision and class, header type, subsystem IDs and the interrupt pin: what a reset never changes. */
const IDENTITY: readonly [number, number][] = [
  [0x00, 0x04],
  [0x08, 0x0c],
  [0x0e, 0x0f],
  [0x2c, 0x30],
  [0x3d, 0x3e],
];

export const resetChecks: readonly ConformanceCheck[] = [
  {
    id: 'reset.config-restore',
    title:
      'VFIO_DEVICE_RESET restores config space to its state after open (for a vfio-pci device: keeps its identity, as the PCI core saves and restores the rest)',
    run(ctx) {
      const { info } = getDeviceInfo(ctx.file);
      if (!info) return ctx.skip('DEVICE_GET_INFO failed (reported by device.info).');
      if (!(info.flags & VFIO_DEVICE_FLAGS_RESET))
        return ctx.skip('the device does not offer reset (no VFIO_DEVICE_FLAGS_RESET).');
      const cfg = openConfig(ctx);
      const initial = cfg.snapshot();
      // What a guest driver changes first: decode enables, BAR addresses, the interrupt line.
      cfg.writeU16(
        PCI_COMMAND,
        cfg.readU16(PCI_COMMAND) | PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER,
      );
      for (let i = 0; i < PCI_STD_NUM_BARS; i++)
        cfg.writeU32(PCI_BASE_ADDRESS_0 + 4 * i, 0xfebf0000 + i * 0x1000);
      cfg.write(PCI_INTERRUPT_LINE, new Uint8Array([0x0b]));
      const changed = cfg.snapshot();
      if (firstDifference(initial, changed) < 0)
        ctx.note('no config byte changed before the reset (every byte written is read-only)');
      const r = ioctl(ctx.file, VFIO_DEVICE_RESET, new Uint8Array(0));
      if (r.ret !== 0) {
        ctx.fail({
          problem: 'VFIO_DEVICE_RESET failed',
          expected: '0',
          actual: `${describeRet(r.ret)}${r.error ? `: ${r.error.message}` : ''}`,
        });
        return;
      }
      const after = cfg.snapshot();
      if (ctx.subject === 'kernel-pci') {
        // vfio-pci resets through pci_try_reset_function, which saves config space and restores
        // it around the reset: what the user wrote stays, the identity must too.
        const kept: string[] = [];
        for (let i = 0; i < initial.length; i++) {
          if (initial[i] === after[i]) continue;
          if (IDENTITY.some(([from, to]) => i >= from && i < to)) {
            ctx.fail({
              region: VFIO_PCI_CONFIG_REGION_INDEX,
              offset: i,
              problem: `an identity byte of config space changed across the reset`,
              expected: `byte ${hex(initial[i])}`,
              actual: `byte ${hex(after[i])}`,
            });
          } else kept.push(hex(i));
        }
        if (kept.length)
          ctx.note(
            `vfio-pci restores the config space it saved before the reset (pci_try_reset_function): bytes ${kept.join(', ')} kept what was written`,
          );
        return;
      }
      const at = firstDifference(initial, after);
      if (at >= 0) {
        let diffs = 0;
        for (let i = 0; i < initial.length; i++) if (initial[i] !== after[i]) diffs++;
        ctx.fail({
          region: VFIO_PCI_CONFIG_REGION_INDEX,
          offset: at,
          problem: `config space after reset differs from the state after open in ${diffs} byte(s), first at ${hex(at)}`,
          expected: `byte ${hex(initial[at])}`,
          actual: `byte ${hex(after[at])}`,
        });
      }
    },
  },
];
