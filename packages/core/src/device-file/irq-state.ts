/**
 * Interrupt state kept by the core for every device, as vfio-pci keeps it for a physical one:
 * per-vector triggers (eventfds), INTx masking with AUTOMASKED, the one-of-INTx/MSI/MSI-X rule,
 * and counters. SET_IRQS never reaches a plugin; the plugin only raises vectors.
 */

import {
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
} from '../abi/constants.js';
import type { IrqInfo } from '../contract/device.js';
import { VfioError } from '../errors.js';

/** Where a raised vector goes: an eventfd in the kernel, a callback in process. */
export interface IrqTrigger {
  signal(): void;
  /** Called when the trigger is replaced or released. */
  release?(): void;
}

export type IrqAction = 'mask' | 'unmask' | 'trigger';

/** A SET_IRQS request after decoding and the kernel's validation. */
export type IrqSetRequest =
  | {
      readonly action: IrqAction;
      readonly index: number;
      readonly start: number;
      readonly count: number;
      readonly data: 'none';
    }
  | {
      readonly action: IrqAction;
      readonly index: number;
      readonly start: number;
      readonly count: number;
      readonly data: 'bool';
      readonly values: Uint8Array;
    }
  | {
      readonly action: 'trigger';
      readonly index: number;
      readonly start: number;
      readonly count: number;
      readonly data: 'eventfd';
      /** One per vector; null de-assigns (the kernel's fd -1). */
      readonly triggers: readonly (IrqTrigger | null)[];
    };

export interface IrqCounters {
  /** Interrupts delivered to a trigger, per vector. */
  readonly delivered: number[];
  /** Interrupts raised while the index had no trigger for the vector. */
  dropped: number;
  /** Interrupts held back by a mask (delivered on unmask). */
  held: number;
}

interface IndexState {
  info: IrqInfo;
  triggers: (IrqTrigger | null)[];
  masked: boolean[];
  pending: boolean[];
  enabled: number;
  /** Vectors allocated when the index was enabled (vfio-pci's num_ctx); 0 while disabled. */
  allocated: number;
  counters: IrqCounters;
}

/** The indexes of which one at a time may be enabled (a plain array: walked without an iterator). */
const EXCLUSIVE: readonly number[] = [
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
];

/**
 * A packed array of `n` copies of `value`, with room for exactly `n`: an index's arrays are made
 * when it is first used (most indexes have one or two vectors), and an array grown by push from
 * empty would reserve 17 slots.
 */
function filled<T>(n: number, value: T): T[] {
  if (n === 1) return [value];
  if (n === 2) return [value, value];
  const out: T[] = [];
  for (let v = 0; v < n; v++) out.push(value);
  return out;
}

export class IrqState {
  /**
   * Per-index state, made on the first use that needs it (SET_IRQS, a raised vector, a look at
   * the counters): most indexes of a device are never used, and a device file is opened for
   * every attach. An index without state has no trigger, no mask and zero counters.
   */
  private readonly indexes: (IndexState | undefined)[];
  private onChange: ((index: number, count: number) => void) | undefined;

  constructor(
    private readonly device: string,
    private readonly infos: readonly (IrqInfo | undefined)[],
  ) {
    this.indexes = new Array(infos.length);
  }

  /** The state of `index`, made on first use; undefined for an index the device lacks. */
  private stateOf(index: number): IndexState | undefined {
    const s = this.indexes[index];
    if (s !== undefined) return s;
    const info = Number.isInteger(index) && index >= 0 ? this.infos[index] : undefined;
    if (!info) return undefined;
    const n = info.count;
    const made: IndexState = {
      info,
      triggers: filled<IrqTrigger | null>(n, null),
      masked: filled(n, false),
      pending: filled(n, false),
      enabled: 0,
      allocated: 0,
      counters: { delivered: filled(n, 0), dropped: 0, held: 0 },
    };
    this.indexes[index] = made;
    return made;
  }

  /** Called with (index, number of vectors with a trigger) after every change. */
  setChangeListener(fn: (index: number, count: number) => void): void {
    this.onChange = fn;
  }

  enabled(index: number): boolean {
    return (this.indexes[index]?.enabled ?? 0) > 0;
  }

  counters(index: number): IrqCounters | undefined {
    return this.stateOf(index)?.counters;
  }

  masked(index: number, vector = 0): boolean {
    return this.indexes[index]?.masked[vector] ?? false;
  }

  /** A vector raised by the device. */
  trigger(index: number, vector = 0): void {
    const s = this.stateOf(index);
    if (!s || vector < 0 || vector >= s.triggers.length) {
      if (s) s.counters.dropped++;
      return;
    }
    const t = s.triggers[vector];
    if (!t) {
      s.counters.dropped++;
      return;
    }
    if (s.masked[vector]) {
      if (!s.pending[vector]) s.counters.held++;
      s.pending[vector] = true;
      return;
    }
    if (s.info.automasked) s.masked[vector] = true;
    s.counters.delivered[vector]++;
    t.signal();
  }

  /** The level-triggered line of `vector` went low: forget an interrupt held by the mask. */
  lower(index: number, vector = 0): void {
    const s = this.indexes[index];
    if (s && vector >= 0 && vector < s.pending.length) s.pending[vector] = false;
  }

  /**
   * Apply a validated request as vfio_pci_set_irqs_ioctl does: INTx takes mask, unmask and
   * trigger; MSI, MSI-X, ERR and REQ take trigger only (anything else is ENOTTY).
   */
  set(req: IrqSetRequest): void {
    const s = this.stateOf(req.index);
    if (!s) {
      throw new VfioError(
        'EINVAL',
        `SET_IRQS names IRQ index ${req.index}, which the device does not have.`,
        {
          device: this.device,
          irq: req.index,
          hint: 'Ask GET_IRQ_INFO which indexes have vectors.',
        },
      );
    }
    if (req.action !== 'trigger' && !s.info.maskable) {
      throw new VfioError(
        'ENOTTY',
        `IRQ index ${req.index} is not maskable, so ${req.action} is not supported.`,
        {
          device: this.device,
          irq: req.index,
          hint: 'Only indexes whose GET_IRQ_INFO has VFIO_IRQ_INFO_MASKABLE (INTx) take MASK and UNMASK.',
        },
      );
    }
    if (req.action === 'trigger') this.setTrigger(s, req);
    else this.setMask(s, req);
  }

  private setMask(s: IndexState, req: IrqSetRequest): void {
    if (s.enabled === 0) {
      throw new VfioError(
        'EINVAL',
        `IRQ index ${req.index} has no trigger, so it cannot be masked or unmasked.`,
        {
          device: this.device,
          irq: req.index,
          hint: 'Set an eventfd with ACTION_TRIGGER first.',
        },
      );
    }
    for (let i = 0; i < req.count; i++) {
      const v = req.start + i;
      if (req.data === 'bool' && !req.values[i]) continue;
      if (req.action === 'mask') {
        s.masked[v] = true;
      } else {
        s.masked[v] = false;
        if (s.pending[v]) {
          s.pending[v] = false;
          this.trigger(req.index, v);
        }
      }
    }
  }

  private setTrigger(s: IndexState, req: IrqSetRequest): void {
    const index = req.index;
    if (req.data === 'none' && req.count === 0) {
      this.disable(index);
      return;
    }
    if (req.data === 'eventfd') {
      if (EXCLUSIVE.includes(index)) {
        for (let e = 0; e < EXCLUSIVE.length; e++) {
          const other = EXCLUSIVE[e];
          if (other !== index && this.enabled(other)) {
            throw new VfioError(
              'EINVAL',
              `IRQ index ${index} cannot be enabled while index ${other} is enabled.`,
              {
                device: this.device,
                irq: index,
                hint: 'INTx, MSI and MSI-X are exclusive: disable the other one first (DATA_NONE | ACTION_TRIGGER, count 0).',
              },
            );
          }
        }
      }
      // vfio_pci_set_msi_trigger: once an index is enabled, vfio_msi_set_block may update any
      // vectors inside the block allocated at enable time; NORESIZE forbids growing it.
      if (s.allocated > 0 && s.info.noresize && req.start + req.count > s.allocated) {
        throw new VfioError(
          'EINVAL',
          `IRQ index ${index} is NORESIZE and was enabled with ${s.allocated} vectors; vectors ${req.start}..${req.start + req.count - 1} go beyond them.`,
          {
            device: this.device,
            irq: index,
            hint: 'Disable the index (DATA_NONE | ACTION_TRIGGER, count 0), then enable it with all the vectors at once.',
          },
        );
      }
      if (s.allocated === 0) s.allocated = req.start + req.count;
      for (let i = 0; i < req.count; i++) {
        const v = req.start + i;
        const old = s.triggers[v];
        const next = req.triggers[i];
        if (old && old !== next) old.release?.();
        s.triggers[v] = next;
        if (!next) {
          s.masked[v] = false;
          s.pending[v] = false;
        }
      }
      let enabled = 0;
      for (let v = 0; v < s.triggers.length; v++) if (s.triggers[v]) enabled++;
      s.enabled = enabled;
      this.onChange?.(index, s.enabled);
      return;
    }
    // DATA_NONE or DATA_BOOL with TRIGGER: fire the vectors as a loopback test, which needs the
    // index enabled (vfio_pci_set_intx_trigger, vfio_pci_set_msi_trigger and
    // vfio_pci_set_ctx_trigger_single all answer EINVAL for an index without a trigger).
    if (s.enabled === 0) {
      throw new VfioError('EINVAL', `IRQ index ${index} has no trigger, so a loopback cannot fire it.`, {
        device: this.device,
        irq: index,
        hint: 'Give the index an eventfd (DATA_EVENTFD | ACTION_TRIGGER) before a DATA_NONE or DATA_BOOL trigger.',
      });
    }
    for (let i = 0; i < req.count; i++) {
      if (req.data === 'bool' && !req.values[i]) continue;
      this.trigger(index, req.start + i);
    }
  }

  disable(index: number): void {
    const s = this.indexes[index];
    if (!s) return;
    for (let v = 0; v < s.triggers.length; v++) {
      s.triggers[v]?.release?.();
      s.triggers[v] = null;
      s.masked[v] = false;
      s.pending[v] = false;
    }
    const was = s.enabled;
    s.enabled = 0;
    s.allocated = 0;
    if (was) this.onChange?.(index, 0);
  }

  disableAll(): void {
    for (let i = 0; i < this.indexes.length; i++) this.disable(i);
  }
}
