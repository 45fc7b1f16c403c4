import { describe, expect, it } from 'vitest';
import {
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
} from '../abi/constants.js';
import type { IrqInfo } from '../contract/device.js';
import { VfioError } from '../errors.js';
import { IrqState, type IrqTrigger } from './irq-state.js';

function info(index: number, count: number, maskable = false): IrqInfo {
  return { index, count, eventfd: true, maskable, automasked: maskable, noresize: !maskable };
}

const INFOS = [
  info(VFIO_PCI_INTX_IRQ_INDEX, 1, true),
  info(VFIO_PCI_MSI_IRQ_INDEX, 0),
  info(VFIO_PCI_MSIX_IRQ_INDEX, 3),
  undefined,
];

function counting(): IrqTrigger & { signals: number; released: number } {
  return {
    signals: 0,
    released: 0,
    signal() {
      this.signals++;
    },
    release() {
      this.released++;
    },
  };
}

describe('IrqState before an index is used', () => {
  it('reports zero counters, one per vector, for an index nothing has touched, and the same object later', () => {
    const s = new IrqState('dev', INFOS);
    const c = s.counters(VFIO_PCI_MSIX_IRQ_INDEX);
    expect(c).toEqual({ delivered: [0, 0, 0], dropped: 0, held: 0 });
    s.trigger(VFIO_PCI_MSIX_IRQ_INDEX, 1);
    expect(s.counters(VFIO_PCI_MSIX_IRQ_INDEX)).toBe(c);
    expect(c?.dropped).toBe(1);
  });

  it('answers not enabled, not masked, and no counters for an index the device lacks', () => {
    const s = new IrqState('dev', INFOS);
    expect(s.enabled(VFIO_PCI_INTX_IRQ_INDEX)).toBe(false);
    expect(s.masked(VFIO_PCI_INTX_IRQ_INDEX)).toBe(false);
    expect(s.counters(VFIO_PCI_ERR_IRQ_INDEX)).toBeUndefined();
    expect(s.counters(-1)).toBeUndefined();
    expect(s.counters(1.5)).toBeUndefined();
    s.trigger(VFIO_PCI_ERR_IRQ_INDEX, 0);
    s.lower(VFIO_PCI_INTX_IRQ_INDEX, 0);
    expect(s.counters(VFIO_PCI_ERR_IRQ_INDEX)).toBeUndefined();
  });

  it('calls no change listener when an untouched index is disabled', () => {
    const s = new IrqState('dev', INFOS);
    const changes: number[][] = [];
    s.setChangeListener((i, n) => changes.push([i, n]));
    s.disable(VFIO_PCI_MSIX_IRQ_INDEX);
    s.disableAll();
    expect(changes).toEqual([]);
  });

  it('refuses SET_IRQS on an index the device lacks with EINVAL, and masking an untouched INTx with EINVAL', () => {
    const s = new IrqState('dev', INFOS);
    const err = (fn: () => void) => {
      try {
        fn();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const lacking = err(() => s.set({ action: 'trigger', index: 3, start: 0, count: 0, data: 'none' }));
    expect(lacking).toBeInstanceOf(VfioError);
    expect((lacking as VfioError).code).toBe('EINVAL');
    const mask = err(() =>
      s.set({ action: 'mask', index: VFIO_PCI_INTX_IRQ_INDEX, start: 0, count: 1, data: 'none' }),
    );
    expect((mask as VfioError).code).toBe('EINVAL');
  });

  it('enables an index on first SET_IRQS, delivers, and releases every trigger on disableAll', () => {
    const s = new IrqState('dev', INFOS);
    const changes: number[][] = [];
    s.setChangeListener((i, n) => changes.push([i, n]));
    const a = counting();
    const b = counting();
    s.set({
      action: 'trigger',
      index: VFIO_PCI_MSIX_IRQ_INDEX,
      start: 0,
      count: 2,
      data: 'eventfd',
      triggers: [a, b],
    });
    expect(s.enabled(VFIO_PCI_MSIX_IRQ_INDEX)).toBe(true);
    s.trigger(VFIO_PCI_MSIX_IRQ_INDEX, 1);
    s.trigger(VFIO_PCI_MSIX_IRQ_INDEX, 2);
    expect([a.signals, b.signals]).toEqual([0, 1]);
    expect(s.counters(VFIO_PCI_MSIX_IRQ_INDEX)).toEqual({ delivered: [0, 1, 0], dropped: 1, held: 0 });
    s.disableAll();
    expect([a.released, b.released]).toEqual([1, 1]);
    expect(changes).toEqual([
      [VFIO_PCI_MSIX_IRQ_INDEX, 2],
      [VFIO_PCI_MSIX_IRQ_INDEX, 0],
    ]);
  });
});
