/** IRQ info against the config-space capabilities, and the kernel's SET_IRQS rules. */
import {
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  walkCapabilities,
} from '@vfiokit/core';
import {
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_INTERRUPT_PIN,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_QSIZE,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  vfio_irq_info,
  vfio_irq_set,
} from '@vfiokit/core/abi';
import type { CheckContext, ConformanceCheck } from '../types.js';
import { openConfig } from './config.js';
import { describeRet, EINVAL, eventfdData, getDeviceInfo, getIrqInfo, setIrqs } from './util.js';

const IRQ_NAMES = ['INTx', 'MSI', 'MSI-X', 'ERR', 'REQ'];

function irqName(index: number): string {
  return IRQ_NAMES[index] ?? `IRQ index ${index}`;
}

/** count, or 0 when the device answers EINVAL (GVT-g does for indexes it lacks); undefined on other errors. */
function irqCount(ctx: CheckContext, index: number): number | undefined {
  const { ret, info } = getIrqInfo(ctx.file, index);
  if (info) return info.count;
  if (ret === EINVAL) return 0;
  ctx.fail({
    problem: `GET_IRQ_INFO of ${irqName(index)} failed`,
    expected: '0 or EINVAL',
    actual: describeRet(ret),
  });
  return undefined;
}

function numIrqs(ctx: CheckContext): number {
  const { info } = getDeviceInfo(ctx.file);
  if (!info) return ctx.skip('DEVICE_GET_INFO failed (reported by device.info).');
  return info.numIrqs;
}

export const irqChecks: readonly ConformanceCheck[] = [
  {
    id: 'irq.info',
    title: 'IRQ counts match the interrupt pin and the MSI and MSI-X capabilities',
    run(ctx) {
      const n = numIrqs(ctx);
      const cfg = openConfig(ctx);
      const bytes = cfg.snapshot();
      const walk = walkCapabilities((o) => bytes[o] ?? 0, bytes.length);
      const cap = (id: number) => walk.capabilities.find((c) => c.id === id)?.offset;
      const u16 = (o: number) => (bytes[o] ?? 0) | ((bytes[o + 1] ?? 0) << 8);

      const pin = bytes[PCI_INTERRUPT_PIN];
      const expected: [number, number, string][] = [
        [VFIO_PCI_INTX_IRQ_INDEX, pin !== 0 ? 1 : 0, `interrupt pin ${pin}`],
      ];
      const msi = cap(PCI_CAP_ID_MSI);
      // Multiple Message Capable: 2^((flags & QMASK) >> 1) vectors (vfio_pci_get_irq_count).
      const msiVectors = msi === undefined ? 0 : 1 << ((u16(msi + PCI_MSI_FLAGS) & PCI_MSI_FLAGS_QMASK) >> 1);
      expected.push([
        VFIO_PCI_MSI_IRQ_INDEX,
        msiVectors,
        msi === undefined
          ? 'no MSI capability'
          : `an MSI capability at 0x${msi.toString(16)} with ${msiVectors} vectors`,
      ]);
      const msix = cap(PCI_CAP_ID_MSIX);
      const msixVectors = msix === undefined ? 0 : (u16(msix + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE) + 1;
      expected.push([
        VFIO_PCI_MSIX_IRQ_INDEX,
        msixVectors,
        msix === undefined
          ? 'no MSI-X capability'
          : `an MSI-X capability at 0x${msix.toString(16)} with table size ${msixVectors}`,
      ]);

      for (const [index, want, why] of expected) {
        if (index >= n) continue;
        const count = irqCount(ctx, index);
        if (count !== undefined && count !== want) {
          ctx.fail({
            region: VFIO_PCI_CONFIG_REGION_INDEX,
            problem: `the ${irqName(index)} count does not match config space (${why})`,
            expected: `count ${want}`,
            actual: `count ${count}`,
          });
        }
      }
      for (let index = 0; index < n; index++) {
        const { info } = getIrqInfo(ctx.file, index);
        if (info && info.count > 0 && !(info.flags & VFIO_IRQ_INFO_EVENTFD)) {
          ctx.fail({
            problem: `${irqName(index)} has vectors but no EVENTFD flag`,
            expected: 'VFIO_IRQ_INFO_EVENTFD',
            actual: `flags 0x${info.flags.toString(16)}`,
          });
        }
      }
      const short = getIrqInfo(ctx.file, 0, vfio_irq_info.size - 1);
      if (short.ret !== EINVAL) {
        ctx.fail({
          problem: 'GET_IRQ_INFO with argsz 15 was not refused',
          expected: describeRet(EINVAL),
          actual: describeRet(short.ret),
        });
      }
      const past = getIrqInfo(ctx.file, n);
      if (past.ret !== EINVAL) {
        ctx.fail({
          problem: `GET_IRQ_INFO of index ${n} (num_irqs ${n}) was not refused`,
          expected: describeRet(EINVAL),
          actual: describeRet(past.ret),
        });
      }
    },
  },
  {
    id: 'irq.set-irqs-rules',
    title: 'SET_IRQS refuses short argsz, bad index, start + count overflow, two data types and no action',
    run(ctx) {
      const n = numIrqs(ctx);
      let index = 0;
      for (let i = 0; i < n; i++) {
        if ((irqCount(ctx, i) ?? 0) > 0) {
          index = i;
          break;
        }
      }
      const trigger = VFIO_IRQ_SET_ACTION_TRIGGER;
      const cases: [string, Parameters<typeof setIrqs>[1], 'einval' | 'error'][] = [
        [
          'argsz 19',
          {
            argsz: vfio_irq_set.size - 1,
            flags: VFIO_IRQ_SET_DATA_NONE | trigger,
            index,
            start: 0,
            count: 1,
          },
          'einval',
        ],
        [
          `index ${n} (num_irqs ${n})`,
          { flags: VFIO_IRQ_SET_DATA_NONE | trigger, index: n, start: 0, count: 1 },
          'einval',
        ],
        [
          'start 1 + count 0xffffffff (overflow)',
          { flags: VFIO_IRQ_SET_DATA_NONE | trigger, index, start: 1, count: 0xffffffff },
          'einval',
        ],
        [
          'two data types (NONE | BOOL)',
          {
            flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | trigger,
            index,
            start: 0,
            count: 1,
            data: new Uint8Array([1]),
          },
          'einval',
        ],
        [
          'BOOL data with argsz too small for count 1',
          {
            argsz: vfio_irq_set.size,
            flags: VFIO_IRQ_SET_DATA_BOOL | trigger,
            index,
            start: 0,
            count: 1,
            data: new Uint8Array([1]),
          },
          'einval',
        ],
        [
          'EVENTFD data with argsz too small for count 1',
          {
            argsz: vfio_irq_set.size + 3,
            flags: VFIO_IRQ_SET_DATA_EVENTFD | trigger,
            index,
            start: 0,
            count: 1,
            data: eventfdData([-1]),
          },
          'einval',
        ],
        ['no action', { flags: VFIO_IRQ_SET_DATA_NONE, index, start: 0, count: 1 }, 'error'],
        ['no data type', { flags: trigger, index, start: 0, count: 1 }, 'einval'],
      ];
      for (const [what, args, want] of cases) {
        const r = setIrqs(ctx.file, args);
        const ok = want === 'einval' ? r.ret === EINVAL : r.ret < 0;
        if (!ok) {
          ctx.fail({
            problem: `SET_IRQS with ${what} on ${irqName(args.index)} was not refused`,
            expected: want === 'einval' ? describeRet(EINVAL) : 'a negative errno',
            actual: describeRet(r.ret),
          });
        }
      }
    },
  },
  {
    id: 'irq.trigger',
    title: 'an eventfd trigger receives a loopback interrupt, and DATA_NONE with count 0 disables it',
    run(ctx) {
      const n = numIrqs(ctx);
      const candidates = [VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX].filter(
        (i) => i < n,
      );
      const index = candidates.find((i) => (irqCount(ctx, i) ?? 0) > 0);
      if (index === undefined) return ctx.skip('the device has no INTx, MSI or MSI-X vectors.');
      const fd = ctx.host.createEventfd();
      const efd = ctx.host.eventfd(fd)!;
      const set = setIrqs(ctx.file, {
        flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
        index,
        start: 0,
        count: 1,
        data: eventfdData([fd]),
      });
      if (set.ret !== 0) {
        ctx.fail({
          problem: `SET_IRQS EVENTFD | TRIGGER on ${irqName(index)} vector 0 failed`,
          expected: '0',
          actual: `${describeRet(set.ret)}${set.error ? `: ${set.error.message}` : ''}`,
        });
        return;
      }
      const fire = () =>
        setIrqs(ctx.file, {
          flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
          index,
          start: 0,
          count: 1,
        });
      const before = efd.count;
      const loop = fire();
      if (loop.ret !== 0 || efd.count !== before + 1) {
        ctx.fail({
          problem: `a DATA_NONE | TRIGGER loopback on ${irqName(index)} vector 0 did not signal the eventfd once`,
          expected: `ret 0 and ${before + 1} signals`,
          actual: `ret ${describeRet(loop.ret)} and ${efd.count} signals`,
        });
      }
      const off = setIrqs(ctx.file, {
        flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
        index,
        start: 0,
        count: 0,
      });
      if (off.ret !== 0) {
        ctx.fail({
          problem: `DATA_NONE | TRIGGER with count 0 on ${irqName(index)} (disable) failed`,
          expected: '0',
          actual: describeRet(off.ret),
        });
        return;
      }
      if (efd.released === undefined)
        ctx.note('whether the kernel let go of the eventfd is not visible from here');
      else if (!efd.released) {
        ctx.fail({
          problem: `disabling ${irqName(index)} did not release its eventfd`,
          expected: 'the trigger released',
          actual: 'still held',
        });
      }
      const after = efd.count;
      fire();
      if (efd.count !== after) {
        ctx.fail({
          problem: `${irqName(index)} still signals its eventfd after it was disabled`,
          expected: `${after} signals`,
          actual: `${efd.count} signals`,
        });
      }
    },
  },
];
