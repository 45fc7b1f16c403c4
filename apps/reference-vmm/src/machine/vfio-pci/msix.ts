/**
 * MSI-X of an assigned function, as QEMU's vfio_msix_enable / vfio_msix_vector_use and its
 * msix.c: unless the BAR is MSIX_MAPPABLE the VMM keeps the table and the PBA itself (the guest's
 * accesses to them never reach the device), routes every vector the device offers with one
 * SET_IRQS when the guest enables MSI-X, and turns a vector's eventfd into the message of its
 * table entry; a masked vector (or every vector, under the function mask) is held in the PBA
 * until it is unmasked.
 */
import {
  type ConfigReader,
  giveValueBytes,
  readLe,
  TWO_32,
  takeValueBytes,
  VFIO_PCI_MSIX_IRQ_INDEX,
  writeLe,
} from '@vfiokit/core';
import {
  PCI_MSIX_ENTRY_CTRL_MASKBIT,
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_LOWER_ADDR,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_UPPER_ADDR,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_PBA_BIR,
  PCI_MSIX_PBA_OFFSET,
  PCI_MSIX_TABLE,
  PCI_MSIX_TABLE_BIR,
  PCI_MSIX_TABLE_OFFSET,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
} from '@vfiokit/core/abi';
import type { IrqSetRequest, IrqTrigger } from '@vfiokit/core/host';
import type { AccessHandler, AccessSize } from '../address-map.js';
import type { MsixPlacement } from './bar-split.js';
import type { DeviceLink, InterruptModes } from './device-link.js';

const DISABLE_MSIX: IrqSetRequest = Object.freeze({
  action: 'trigger',
  index: VFIO_PCI_MSIX_IRQ_INDEX,
  start: 0,
  count: 0,
  data: 'none',
});

/** The eventfd of MSI-X entry `entry`. */
class MsixTrigger implements IrqTrigger {
  constructor(
    private readonly msix: Msix,
    private readonly entry: number,
  ) {}
  signal(): void {
    this.msix.signal(this.entry);
  }
}

/** The guest's accesses to the table the VMM keeps (offsets inside the table). */
class TableHandler implements AccessHandler {
  constructor(private readonly msix: Msix) {}
  read(offset: number, size: AccessSize): number {
    return readLe(this.msix.table, offset, size);
  }
  write(offset: number, size: AccessSize, value: number): void {
    this.msix.tableWrite(offset, size, value);
  }
}

/** The guest's accesses to the PBA the VMM keeps (offsets inside the PBA). */
class PbaHandler implements AccessHandler {
  constructor(private readonly msix: Msix) {}
  read(offset: number, size: AccessSize): number {
    return readLe(this.msix.pba, offset, size);
  }
  write(): void {
    // PCI Local Bus Specification 3.0 §6.8.2.10: the PBA is read-only; writes are dropped.
  }
}

/** One MSI-X table entry as the report shows it. */
export interface MsixEntrySnapshot {
  address: number;
  data: number;
  masked: boolean;
  pending: boolean;
}

export interface MsixSnapshot {
  enabled: boolean;
  functionMask: boolean;
  emulated: boolean;
  entries: MsixEntrySnapshot[];
}

export class Msix implements MsixPlacement {
  readonly tableSize: number;
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
  /** The VMM keeps the table and PBA (false when the BAR is MSIX_MAPPABLE). */
  readonly emulated: boolean;
  /** The table and PBA as the VMM keeps them, little endian (read with getLe/setLe). */
  readonly table: Uint8Array;
  readonly pba: Uint8Array;
  readonly tableBytes: number;
  readonly pbaBytes: number;
  /** The handlers of the BAR parts that hold the table and the PBA. */
  readonly tableHandler: AccessHandler = new TableHandler(this);
  readonly pbaHandler: AccessHandler = new PbaHandler(this);
  /** SET_IRQS that routes every vector the device offers (made once; the core copies the triggers). */
  private readonly enableRequest: IrqSetRequest;
  enabled = false;
  functionMask = false;
  /** Messages held in the PBA because their vector was masked. */
  pendingSet = 0;
  /** The table and PBA are as reset() leaves them (nothing written or held since): a reset has nothing to do. */
  private atPowerOn = true;

  constructor(
    private readonly link: DeviceLink,
    /** The capability's offset in config space. */
    readonly capOffset: number,
    /** Where the constructor reads the capability (the function's config image). */
    config: ConfigReader = link,
  ) {
    const flags = config.configRead(capOffset + PCI_MSIX_FLAGS, 2);
    const table = config.configRead(capOffset + PCI_MSIX_TABLE, 4);
    const pba = config.configRead(capOffset + PCI_MSIX_PBA, 4);
    this.tableSize = (flags & PCI_MSIX_FLAGS_QSIZE) + 1;
    this.tableBar = table & PCI_MSIX_TABLE_BIR;
    this.tableOffset = (table & PCI_MSIX_TABLE_OFFSET) >>> 0;
    this.pbaBar = pba & PCI_MSIX_PBA_BIR;
    this.pbaOffset = (pba & PCI_MSIX_PBA_OFFSET) >>> 0;
    let emulated = true;
    try {
      const caps = link.file.regionInfo(this.tableBar).caps;
      for (let i = 0; i < caps.length; i++)
        if (caps[i].id === VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) emulated = false;
    } catch {
      emulated = true;
    }
    this.emulated = emulated;
    this.table = new Uint8Array(this.tableSize * PCI_MSIX_ENTRY_SIZE);
    // PCI Local Bus Specification 3.0 §6.8.2.9: the PBA is an array of QWORDs, one bit per entry.
    this.pba = new Uint8Array(Math.ceil(this.tableSize / 64) * 8);
    this.tableBytes = this.table.length;
    this.pbaBytes = this.pba.length;
    const triggers: IrqTrigger[] = new Array(this.tableSize);
    for (let i = 0; i < this.tableSize; i++) triggers[i] = new MsixTrigger(this, i);
    // Every vector gets its trigger; masking is applied when a vector fires (the PBA holds it).
    const count = Math.min(this.tableSize, link.irqCount(VFIO_PCI_MSIX_IRQ_INDEX));
    this.enableRequest = {
      action: 'trigger',
      index: VFIO_PCI_MSIX_IRQ_INDEX,
      start: 0,
      count,
      data: 'eventfd',
      triggers: count === this.tableSize ? triggers : triggers.slice(0, count),
    };
    // The power-on state (see resetTable); the new table and PBA are zero already.
    this.maskEntries();
  }

  /** A guest write to the table the VMM keeps. */
  tableWrite(offset: number, size: AccessSize, value: number): void {
    const entry = Math.floor(offset / PCI_MSIX_ENTRY_SIZE);
    const ctrl = entry * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL;
    const wasMasked = this.masked(entry);
    this.atPowerOn = false;
    const t = this.table;
    writeLe(t, offset, size, value);
    // PCI Local Bus Specification 3.0 §6.8.2.9: only the Mask Bit of Vector Control is defined.
    writeLe(t, ctrl, 4, readLe(t, ctrl, 4) & PCI_MSIX_ENTRY_CTRL_MASKBIT);
    if (wasMasked && !this.masked(entry)) this.releasePending(entry);
  }

  private entryMasked(entry: number): boolean {
    if (!this.emulated)
      return (this.mappableEntry(entry, PCI_MSIX_ENTRY_VECTOR_CTRL) & PCI_MSIX_ENTRY_CTRL_MASKBIT) !== 0;
    return (
      (readLe(this.table, entry * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, 4) &
        PCI_MSIX_ENTRY_CTRL_MASKBIT) !==
      0
    );
  }

  private masked(entry: number): boolean {
    return this.functionMask || this.entryMasked(entry);
  }

  /**
   * An entry of a MSIX_MAPPABLE table: the device keeps it, so read it from the device, through
   * core's value bytes (a vector may fire while a config or trapped access is under way).
   */
  private mappableEntry(entry: number, field: number): number {
    const at = this.tableOffset + entry * PCI_MSIX_ENTRY_SIZE + field;
    const s = takeValueBytes();
    try {
      this.link.file.readRegion(this.tableBar, at, s.of(4));
    } catch (err) {
      giveValueBytes(s);
      this.link.fault(err, 'MSI-X table read', this.tableBar, at);
      return field === PCI_MSIX_ENTRY_VECTOR_CTRL ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0;
    }
    giveValueBytes(s);
    return s.get(4);
  }

  /** MSI-X entry `entry` fired (its trigger's signal). */
  signal(entry: number): void {
    if (!this.enabled) return;
    if (this.masked(entry)) {
      // A masked vector's message is held: its Pending Bit is set until the vector is unmasked.
      const byte = entry >>> 3;
      const bit = 1 << (entry & 7);
      if (!(this.pba[byte] & bit)) this.pendingSet++;
      this.pba[byte] |= bit;
      this.atPowerOn = false;
      return;
    }
    const base = entry * PCI_MSIX_ENTRY_SIZE;
    let address: number;
    let data: number;
    if (this.emulated) {
      const t = this.table;
      address =
        readLe(t, base + PCI_MSIX_ENTRY_LOWER_ADDR, 4) +
        readLe(t, base + PCI_MSIX_ENTRY_UPPER_ADDR, 4) * TWO_32;
      data = readLe(t, base + PCI_MSIX_ENTRY_DATA, 4);
    } else {
      address =
        this.mappableEntry(entry, PCI_MSIX_ENTRY_LOWER_ADDR) +
        this.mappableEntry(entry, PCI_MSIX_ENTRY_UPPER_ADDR) * TWO_32;
      data = this.mappableEntry(entry, PCI_MSIX_ENTRY_DATA);
    }
    this.link.message(address, data, 'MSI-X');
  }

  private releasePending(entry: number): void {
    const byte = entry >>> 3;
    const bit = 1 << (entry & 7);
    if (!this.enabled || !(this.pba[byte] & bit)) return;
    this.pba[byte] &= ~bit;
    this.signal(entry);
  }

  /** vfio_msix_enable / vfio_msix_disable and the function mask, after the guest wrote Message Control. */
  configWritten(modes: InterruptModes): void {
    const flags = this.link.configRead(this.capOffset + PCI_MSIX_FLAGS, 2);
    const enabled = (flags & PCI_MSIX_FLAGS_ENABLE) !== 0;
    const functionMask = (flags & PCI_MSIX_FLAGS_MASKALL) !== 0;
    const unmaskedAll = this.functionMask && !functionMask;
    this.functionMask = functionMask;
    if (enabled && !this.enabled) {
      modes.enter('msix');
      this.enabled = this.link.setIrqs('enable MSI-X', this.enableRequest);
      if (!this.enabled) modes.leave();
    } else if (!enabled && this.enabled) {
      this.disable();
      modes.leave();
      return;
    }
    if (this.enabled && unmaskedAll) for (let i = 0; i < this.tableSize; i++) this.releasePending(i);
  }

  /** Every vector's route off. */
  disable(): void {
    this.enabled = false;
    this.link.setIrqs('disable MSI-X', DISABLE_MSIX);
  }

  /** The power-on state: every entry masked, nothing pending, no function mask. */
  reset(): void {
    if (!this.atPowerOn) this.resetTable();
    this.atPowerOn = true;
    this.functionMask = false;
  }

  /** PCI Local Bus Specification 3.0 §6.8.2.9: after reset every entry's Mask Bit is set. */
  private resetTable(): void {
    this.table.fill(0);
    this.pba.fill(0);
    this.maskEntries();
  }

  /** Every entry's Mask Bit set, the rest of the table left as it is. */
  private maskEntries(): void {
    for (let i = 0; i < this.tableSize; i++) {
      writeLe(
        this.table,
        i * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL,
        4,
        PCI_MSIX_ENTRY_CTRL_MASKBIT,
      );
    }
  }

  /** The table as the VMM keeps it: entry i's address, data and mask; the PBA bits. */
  snapshot(): MsixSnapshot {
    const entries: MsixEntrySnapshot[] = [];
    const t = this.table;
    for (let i = 0; i < this.tableSize; i++) {
      const base = i * PCI_MSIX_ENTRY_SIZE;
      entries.push({
        address:
          readLe(t, base + PCI_MSIX_ENTRY_LOWER_ADDR, 4) +
          readLe(t, base + PCI_MSIX_ENTRY_UPPER_ADDR, 4) * TWO_32,
        data: readLe(t, base + PCI_MSIX_ENTRY_DATA, 4),
        masked: this.entryMasked(i),
        pending: (this.pba[i >>> 3] & (1 << (i & 7))) !== 0,
      });
    }
    return { enabled: this.enabled, functionMask: this.functionMask, emulated: this.emulated, entries };
  }
}
