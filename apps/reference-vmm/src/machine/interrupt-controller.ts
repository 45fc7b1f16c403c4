/**
 * A virtual interrupt controller (an x86 local APIC plus an IOAPIC routing the four PCI INTx
 * lines) that counts what it receives: per vector and per device. Delivery allocates nothing.
 */
import { type GuestInterrupts, type PciAddress, VfioError } from '@vfiokit/core';
import {
  FIRST_MSI_VECTOR,
  FIRST_VECTOR,
  INTX_LINES,
  INTX_VECTOR_BASE,
  LAST_VECTOR,
  MSI_WINDOW_BASE,
} from './layout.js';

const VECTORS = 256;

/** Deliveries attributed to one device. */
export class InterruptSource {
  #counts: Uint32Array | undefined;
  total = 0;
  constructor(readonly name: string) {}

  /** Deliveries per vector; the table is made at the first delivery (or look), not per attach. */
  get counts(): Uint32Array {
    let c = this.#counts;
    if (c === undefined) {
      c = new Uint32Array(VECTORS);
      this.#counts = c;
    }
    return c;
  }
}

interface Waiter {
  vector: number;
  count: number;
  done: (ok: boolean) => void;
}

export interface InterruptControllerOptions {
  /** The INTx pin (1..4) of a function, 0 when it has none. */
  pinOf(address: PciAddress): number;
  /** End of interrupt on `vector` (level-triggered lines are unmasked here). */
  onEoi(vector: number): void;
}

export class InterruptController implements GuestInterrupts {
  readonly #counts = new Uint32Array(VECTORS);
  readonly #waiters: Waiter[] = [];
  #nextVector = FIRST_MSI_VECTOR;
  /** Deliveries of a vector outside 0x20-0xfe (dropped). */
  spurious = 0;
  eois = 0;

  constructor(private readonly opts: InterruptControllerOptions) {}

  allocateVector(): { readonly vector: number; readonly address: number; readonly data: number } {
    const vector = this.allocateVectors(1, 1);
    return { vector, address: MSI_WINDOW_BASE, data: vector };
  }

  /**
   * A block of `count` vectors whose first is a multiple of `align` (multi-message MSI changes
   * the low bits of the data, so its block must be aligned to its size). ENOSPC when none is left.
   */
  allocateVectors(count: number, align: number): number {
    const first = Math.ceil(this.#nextVector / align) * align;
    if (!Number.isInteger(count) || count < 1 || first + count - 1 > LAST_VECTOR) {
      throw new VfioError(
        'ENOSPC',
        `no block of ${String(count)} free interrupt vectors is left (next free 0x${this.#nextVector.toString(16)}).`,
        {
          hint: 'Use fewer MSI/MSI-X vectors per device, or fall back to INTx.',
        },
      );
    }
    this.#nextVector = first + count;
    return first;
  }

  /** Free vectors left for allocation. */
  get freeVectors(): number {
    return LAST_VECTOR + 1 - this.#nextVector;
  }

  intxVector(address: PciAddress): number {
    const pin = this.opts.pinOf(address);
    return intxVectorFor(address.device, pin === 0 ? 1 : pin);
  }

  count(vector: number): number {
    return this.#counts[vector & 0xff] ?? 0;
  }

  eoi(vector: number): void {
    this.eois++;
    this.opts.onEoi(vector);
  }

  waitFor(vector: number, count: number, timeoutMs: number): Promise<boolean> {
    if (this.count(vector) >= count) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        vector,
        count,
        done: (ok) => {
          clearTimeout(timer);
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          resolve(ok);
        },
      };
      const timer = setTimeout(() => waiter.done(false), Math.max(0, timeoutMs));
      this.#waiters.push(waiter);
    });
  }

  /** A message (MSI/MSI-X) or an INTx line arriving on `vector` from `source`. */
  deliver(vector: number, source?: InterruptSource): void {
    if (vector < FIRST_VECTOR || vector > LAST_VECTOR) {
      this.spurious++;
      return;
    }
    this.#counts[vector]++;
    if (source !== undefined) {
      source.counts[vector]++;
      source.total++;
    }
    if (this.#waiters.length > 0) this.#wake(vector);
  }

  /** Vectors delivered at least once, with their counts. */
  delivered(): { vector: number; count: number }[] {
    const out: { vector: number; count: number }[] = [];
    for (let v = 0; v < VECTORS; v++)
      if (this.#counts[v] > 0) out.push({ vector: v, count: this.#counts[v] });
    return out;
  }

  /** The guest rebooted: vector allocation starts over (counts stay for the report). */
  resetAllocation(): void {
    this.#nextVector = FIRST_MSI_VECTOR;
  }

  #wake(vector: number): void {
    for (const w of this.#waiters.slice()) {
      if (w.vector === vector && this.#counts[vector] >= w.count) w.done(true);
    }
  }
}

/** The vector of a PCI INTx line: the usual swizzle (device + pin - 1) mod 4 onto PIRQA-D. */
export function intxVectorFor(device: number, pin: number): number {
  return INTX_VECTOR_BASE + ((device + pin - 1) % INTX_LINES);
}
