/**
 * The generic PCI probe, as Linux's PCI core does it at boot (drivers/pci/probe.c and
 * setup-bus.c, arch/x86 MSI setup), acting only through the GuestView: enumerate bus 0, size
 * every BAR, assign addresses from the host bridge's windows, enable decode and bus mastering,
 * walk the capability list, and set up MSI-X, else MSI, else INTx.
 */
import {
  CapabilityWalk,
  type ConfigReader,
  formatPciAddress,
  type GuestInterrupts,
  type GuestView,
  type PciAddress,
  type ProbedBar,
  type ProbedDevice,
  TWO_32,
  VfioError,
} from '@vfiokit/core';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CLASS_REVISION,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_MASK,
  PCI_HEADER_TYPE_MFD,
  PCI_HEADER_TYPE_NORMAL,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_LOWER_ADDR,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_UPPER_ADDR,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_TABLE,
  PCI_MSIX_TABLE_BIR,
  PCI_MSIX_TABLE_OFFSET,
  PCI_STD_NUM_BARS,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
} from '@vfiokit/core/abi';
import { msiLayout } from '@vfiokit/core/host';
import { type AddressWindow, PCI_WINDOWS, type PciWindows } from '../machine/layout.js';

export interface ProbeOptions {
  /** Where BARs may go (the host bridge's _CRS); the reference machine's windows by default. */
  readonly windows?: PciWindows;
  /**
   * The previous probe's result: a function found again at the same address with the same
   * IDs keeps its interrupt vectors (a re-probe after hot-add does not leak vectors).
   */
  readonly previous?: readonly ProbedDevice[];
}

/** An interrupt controller that can hand out an aligned block (what multi-message MSI needs). */
export interface VectorBlockAllocator {
  allocateVectors(count: number, align: number): number;
}

const DEVICES = 32;
const FUNCTIONS = 8;
const NO_DEVICE = 0xffff;

interface Found {
  address: PciAddress;
  vendorId: number;
  deviceId: number;
  subsystemVendorId: number;
  subsystemId: number;
  classCode: number;
  revision: number;
  interruptPin: number;
  headerType: number;
  bars: FoundBar[];
}

/** A BAR as sized and placed by the probe; the same record becomes the ProbedBar it reports. */
interface FoundBar {
  index: number;
  kind: 'mem32' | 'mem64' | 'io';
  prefetchable: boolean;
  size: number;
  address: number;
}

/** Probe bus 0 and set every function up; returns what was found, in address order. */
export function probePciBus(guest: GuestView, options: ProbeOptions = {}): ProbedDevice[] {
  const windows = options.windows ?? PCI_WINDOWS;
  const found = enumerate(guest);
  assignBars(guest, found, windows);
  const out: ProbedDevice[] = [];
  for (const f of found) {
    programBars(guest, f);
    enableDevice(guest, f);
    const capabilities = readCapabilities(guest, f.address);
    const previous = findPrevious(options.previous, f);
    const interrupts = setupInterrupts(guest, f, capabilities, previous);
    // The probe is done with its BAR records: they are the ProbedBars (same fields, no copy).
    const bars: ProbedBar[] = f.bars;
    out.push({
      address: f.address,
      vendorId: f.vendorId,
      deviceId: f.deviceId,
      subsystemVendorId: f.subsystemVendorId,
      subsystemId: f.subsystemId,
      classCode: f.classCode,
      revision: f.revision,
      interruptPin: f.interruptPin,
      bars,
      capabilities,
      interrupts,
    });
  }
  return out;
}

/** The same function (address and IDs) in the previous probe's result. */
function findPrevious(previous: readonly ProbedDevice[] | undefined, f: Found): ProbedDevice | undefined {
  if (previous === undefined) return undefined;
  for (const p of previous)
    if (sameAddress(p.address, f.address) && p.vendorId === f.vendorId && p.deviceId === f.deviceId) return p;
  return undefined;
}

// ---- capabilities (pci_find_capability) -----------------------------------------------------------

/** Guest config cycles to one function, as the capability walk reads them (one reader per probe). */
class FunctionConfig implements ConfigReader {
  guest: GuestView | undefined;
  address: PciAddress = { bus: 0, device: 0, function: 0 };
  configRead(offset: number, size: 1 | 2 | 4): number {
    return (this.guest as GuestView).configRead(this.address, offset, size);
  }
}

const capabilityReader = new FunctionConfig();
const capabilityWalk = new CapabilityWalk();

/**
 * The standard capability list, by core's capability walk: a misaligned, out-of-range or
 * repeated pointer ends it, and the guest logs it, keeping what came before.
 */
function readCapabilities(guest: GuestView, a: PciAddress): { id: number; offset: number }[] {
  const capabilities: { id: number; offset: number }[] = [];
  capabilityReader.guest = guest;
  capabilityReader.address = a;
  const w = capabilityWalk.begin(capabilityReader);
  while (w.next()) capabilities.push({ id: w.id, offset: w.offset });
  capabilityReader.guest = undefined;
  if (w.problem !== undefined) {
    guest.log(
      `${formatPciAddress(a)}: capability list is broken (${w.problem} at 0x${w.at.toString(16)}); using what came before it.`,
    );
  }
  return capabilities;
}

// ---- enumeration (pci_scan_slot) -----------------------------------------------------------------

/** The address the scan reads each slot's IDs through; an empty slot allocates nothing. */
const SCAN_ADDRESS = { bus: 0, device: 0, function: 0 };

function enumerate(guest: GuestView): Found[] {
  const found: Found[] = [];
  for (let device = 0; device < DEVICES; device++) {
    // Functions 1-7 exist only when function 0 says the device is multi-function.
    let functions = 1;
    for (let fn = 0; fn < functions; fn++) {
      // A fresh address only for a function that exists (it is kept in the result).
      const scan = SCAN_ADDRESS;
      scan.device = device;
      scan.function = fn;
      // pci_bus_read_dev_vendor_id: vendor and device ID (PCI_DEVICE_ID, the upper half) in one
      // dword; an empty slot reads all-ones.
      const ids = guest.configRead(scan, PCI_VENDOR_ID, 4);
      const vendorId = ids & 0xffff;
      if (vendorId === NO_DEVICE) continue;
      const address: PciAddress = { bus: 0, device, function: fn };
      const headerType = guest.configRead(address, PCI_HEADER_TYPE, 1);
      if (fn === 0 && headerType & PCI_HEADER_TYPE_MFD) functions = FUNCTIONS;
      const classRev = guest.configRead(address, PCI_CLASS_REVISION, 4);
      const f: Found = {
        address,
        vendorId,
        deviceId: ids >>> 16,
        subsystemVendorId: guest.configRead(address, PCI_SUBSYSTEM_VENDOR_ID, 2),
        subsystemId: guest.configRead(address, PCI_SUBSYSTEM_ID, 2),
        classCode: classRev >>> 8,
        revision: classRev & 0xff,
        interruptPin: guest.configRead(address, PCI_INTERRUPT_PIN, 1),
        headerType,
        bars: [],
      };
      // pci_setup_device sizes the BARs while it scans the function (pci_read_bases).
      if ((headerType & PCI_HEADER_TYPE_MASK) === PCI_HEADER_TYPE_NORMAL) sizeBars(guest, f);
      found.push(f);
    }
  }
  return found;
}

// ---- BAR sizing (__pci_read_base) ----------------------------------------------------------------

/** The lowest set bit of a mask: the size a BAR decodes. */
function lowestBit(mask: number): number {
  return (mask & -mask) >>> 0;
}

function sizeBars(guest: GuestView, f: Found): void {
  const a = f.address;
  const command = guest.configRead(a, PCI_COMMAND, 2);
  // Linux (pci_read_bases) turns decode off while sizing, when it is on, so the all-ones probe
  // value never decodes; with decode off already COMMAND is left alone.
  const decode = command & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
  if (decode) guest.configWrite(a, PCI_COMMAND, 2, command & ~decode);
  for (let i = 0; i < PCI_STD_NUM_BARS; i++) {
    const off = PCI_BASE_ADDRESS_0 + 4 * i;
    const orig = guest.configRead(a, off, 4);
    guest.configWrite(a, off, 4, 0xffffffff);
    const probe = guest.configRead(a, off, 4);
    guest.configWrite(a, off, 4, orig);
    if (probe === 0 || probe === 0xffffffff) continue;
    if (probe & PCI_BASE_ADDRESS_SPACE_IO) {
      // The upper 16 bits of an I/O BAR may read as 0 (Linux masks with 0xffff too).
      const size = lowestBit(probe & PCI_BASE_ADDRESS_IO_MASK & 0xffff);
      if (size) f.bars.push({ index: i, kind: 'io', prefetchable: false, size, address: 0 });
      continue;
    }
    const prefetchable = (probe & PCI_BASE_ADDRESS_MEM_PREFETCH) !== 0;
    if (
      (probe & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64 &&
      i + 1 < PCI_STD_NUM_BARS
    ) {
      const origHi = guest.configRead(a, off + 4, 4);
      guest.configWrite(a, off + 4, 4, 0xffffffff);
      const probeHi = guest.configRead(a, off + 4, 4);
      guest.configWrite(a, off + 4, 4, origHi);
      const low = (probe & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
      const size = low ? lowestBit(low) : lowestBit(probeHi) * TWO_32;
      if (size) f.bars.push({ index: i, kind: 'mem64', prefetchable, size, address: 0 });
      i++;
      continue;
    }
    const size = lowestBit((probe & PCI_BASE_ADDRESS_MEM_MASK) >>> 0);
    if (size) f.bars.push({ index: i, kind: 'mem32', prefetchable, size, address: 0 });
  }
  if (decode) guest.configWrite(a, PCI_COMMAND, 2, command);
}

// ---- assignment (pbus_assign_resources: largest first, natural alignment) -------------------------

function assignBars(guest: GuestView, found: readonly Found[], windows: PciWindows): void {
  const cursors = { mmio32: windows.mmio32.base, mmio64: windows.mmio64.base, io: windows.io.base };
  const all: FoundBar[] = [];
  for (const f of found) for (const bar of f.bars) all.push(bar);
  // Stable sort: equal sizes keep bus order.
  all.sort(largestFirst);
  for (const bar of all) {
    const space = bar.kind === 'io' ? 'io' : bar.kind === 'mem64' ? 'mmio64' : 'mmio32';
    const window: AddressWindow = windows[space];
    const at = Math.ceil(cursors[space] / bar.size) * bar.size;
    if (at + bar.size - 1 > window.limit) {
      guest.log(
        `${formatPciAddress(ownerOf(found, bar))}: no room for BAR${bar.index} (${bar.size} bytes) in the ${space} window; left unassigned.`,
      );
      continue;
    }
    bar.address = at;
    cursors[space] = at + bar.size;
  }
}

function largestFirst(x: FoundBar, y: FoundBar): number {
  return y.size - x.size;
}

/** The function a BAR belongs to (only for the rare log line, so a scan is fine). */
function ownerOf(found: readonly Found[], bar: FoundBar): PciAddress {
  for (const f of found) if (f.bars.includes(bar)) return f.address;
  return { bus: 0, device: 0, function: 0 };
}

function capabilityOffset(caps: readonly { id: number; offset: number }[], id: number): number {
  for (let i = 0; i < caps.length; i++) if (caps[i].id === id) return caps[i].offset;
  return -1;
}

function barWithIndex(bars: readonly FoundBar[], index: number): FoundBar | undefined {
  for (let i = 0; i < bars.length; i++) if (bars[i].index === index) return bars[i];
  return undefined;
}

function programBars(guest: GuestView, f: Found): void {
  for (const bar of f.bars) {
    const off = PCI_BASE_ADDRESS_0 + 4 * bar.index;
    guest.configWrite(f.address, off, 4, bar.address % TWO_32);
    if (bar.kind === 'mem64') guest.configWrite(f.address, off + 4, 4, Math.floor(bar.address / TWO_32));
  }
}

/** pci_enable_device + pci_set_master: decode for the kinds of BAR that got an address, and bus mastering. */
function enableDevice(guest: GuestView, f: Found): void {
  if ((f.headerType & PCI_HEADER_TYPE_MASK) !== PCI_HEADER_TYPE_NORMAL) return;
  let command = guest.configRead(f.address, PCI_COMMAND, 2);
  for (const bar of f.bars) {
    if (bar.address === 0) continue;
    command |= bar.kind === 'io' ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
  }
  command |= PCI_COMMAND_MASTER;
  guest.configWrite(f.address, PCI_COMMAND, 2, command);
}

// ---- interrupts (pci_alloc_irq_vectors: MSI-X, then MSI, then INTx) -------------------------------

type Interrupts = ProbedDevice['interrupts'];

function setupInterrupts(
  guest: GuestView,
  f: Found,
  caps: readonly { id: number; offset: number }[],
  previous: ProbedDevice | undefined,
): Interrupts {
  const msix = capabilityOffset(caps, PCI_CAP_ID_MSIX);
  if (msix >= 0) {
    const r = setupMsix(guest, f, msix, previous);
    if (r) return r;
  }
  const msi = capabilityOffset(caps, PCI_CAP_ID_MSI);
  if (msi >= 0) {
    const r = setupMsi(guest, f, msi, previous);
    if (r) return r;
  }
  if (f.interruptPin !== 0) {
    const vector = guest.interrupts.intxVector(f.address);
    // The interrupt line register tells drivers where INTx goes; here it holds the vector.
    guest.configWrite(f.address, PCI_INTERRUPT_LINE, 1, vector & 0xff);
    setIntxDisable(guest, f.address, false);
    return { kind: 'intx', vectors: [vector] };
  }
  return { kind: 'none', vectors: [] };
}

function setIntxDisable(guest: GuestView, a: PciAddress, disable: boolean): void {
  const command = guest.configRead(a, PCI_COMMAND, 2);
  const next = disable ? command | PCI_COMMAND_INTX_DISABLE : command & ~PCI_COMMAND_INTX_DISABLE;
  if (next !== command) guest.configWrite(a, PCI_COMMAND, 2, next);
}

function reuse(
  previous: ProbedDevice | undefined,
  kind: 'msix' | 'msi',
  count: number,
): number[] | undefined {
  if (previous?.interrupts.kind !== kind || previous.interrupts.vectors.length !== count) return undefined;
  return [...previous.interrupts.vectors];
}

function setupMsix(
  guest: GuestView,
  f: Found,
  cap: number,
  previous: ProbedDevice | undefined,
): Interrupts | undefined {
  const a = f.address;
  const flags = guest.configRead(a, cap + PCI_MSIX_FLAGS, 2);
  const tableSize = (flags & PCI_MSIX_FLAGS_QSIZE) + 1;
  const table = guest.configRead(a, cap + PCI_MSIX_TABLE, 4);
  const bar = barWithIndex(f.bars, table & PCI_MSIX_TABLE_BIR);
  if (!bar || bar.address === 0 || bar.kind === 'io') {
    guest.log(`${formatPciAddress(a)}: the MSI-X table's BAR has no memory address; trying MSI.`);
    return undefined;
  }
  const tableAddress = bar.address + ((table & PCI_MSIX_TABLE_OFFSET) >>> 0);
  const vectors = reuse(previous, 'msix', tableSize) ?? allocateEach(guest.interrupts, tableSize);
  if (vectors.length === 0) return undefined;
  // Enable with the function masked, fill the table, then unmask (msix_capability_init).
  guest.configWrite(a, cap + PCI_MSIX_FLAGS, 2, flags | PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
  for (let i = 0; i < vectors.length; i++) {
    const entry = tableAddress + i * PCI_MSIX_ENTRY_SIZE;
    guest.mmioWrite(entry + PCI_MSIX_ENTRY_LOWER_ADDR, 4, MSI_ADDRESS);
    guest.mmioWrite(entry + PCI_MSIX_ENTRY_UPPER_ADDR, 4, 0);
    guest.mmioWrite(entry + PCI_MSIX_ENTRY_DATA, 4, messageData(vectors[i]));
    guest.mmioWrite(entry + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0);
  }
  setIntxDisable(guest, a, true);
  guest.configWrite(a, cap + PCI_MSIX_FLAGS, 2, (flags | PCI_MSIX_FLAGS_ENABLE) & ~PCI_MSIX_FLAGS_MASKALL);
  return { kind: 'msix', vectors };
}

function setupMsi(
  guest: GuestView,
  f: Found,
  cap: number,
  previous: ProbedDevice | undefined,
): Interrupts | undefined {
  const a = f.address;
  const flags = guest.configRead(a, cap + PCI_MSI_FLAGS, 2);
  const capable = 1 << ((flags & PCI_MSI_FLAGS_QMASK) >>> 1);
  let vectors = reuse(previous, 'msi', capable) ?? reuse(previous, 'msi', 1);
  if (!vectors) {
    const first = allocateBlock(guest.interrupts, capable);
    if (first !== undefined) vectors = Array.from({ length: capable }, (_, i) => first + i);
    else vectors = allocateEach(guest.interrupts, 1);
  }
  if (vectors.length === 0) return undefined;
  const layout = msiLayout(flags);
  guest.configWrite(a, cap + PCI_MSI_ADDRESS_LO, 4, MSI_ADDRESS);
  if (layout.addr64) guest.configWrite(a, cap + PCI_MSI_ADDRESS_HI, 4, 0);
  guest.configWrite(a, cap + layout.data, 2, messageData(vectors[0]));
  if (layout.perVectorMask) guest.configWrite(a, cap + layout.mask, 4, 0);
  setIntxDisable(guest, a, true);
  const mme = Math.log2(vectors.length) << 4;
  guest.configWrite(
    a,
    cap + PCI_MSI_FLAGS,
    2,
    ((flags & ~PCI_MSI_FLAGS_QSIZE) | mme | PCI_MSI_FLAGS_ENABLE) & 0xffff,
  );
  return { kind: 'msi', vectors };
}

// Intel SDM vol. 3 §11.11: address 0xFEE00000 targets the local APIC, data bits 7:0 are the vector
/** x86 MSI message address (the one GuestInterrupts gives for every vector). */
const MSI_ADDRESS = 0xfee0_0000;

/** x86 MSI message data for `vector`. */
function messageData(vector: number): number {
  return vector;
}

function allocateEach(interrupts: GuestInterrupts, count: number): number[] {
  const vectors: number[] = [];
  for (let i = 0; i < count; i++) {
    try {
      vectors.push(interrupts.allocateVector().vector);
    } catch (err) {
      if (err instanceof VfioError && err.code === 'ENOSPC') break;
      throw err;
    }
  }
  return vectors;
}

function hasBlocks(interrupts: GuestInterrupts): interrupts is GuestInterrupts & VectorBlockAllocator {
  return typeof (interrupts as Partial<VectorBlockAllocator>).allocateVectors === 'function';
}

/** An aligned block for multi-message MSI; undefined for one vector or when no block is to be had. */
function allocateBlock(interrupts: GuestInterrupts, count: number): number | undefined {
  if (count <= 1 || !hasBlocks(interrupts)) return undefined;
  try {
    return interrupts.allocateVectors(count, count);
  } catch (err) {
    if (err instanceof VfioError && err.code === 'ENOSPC') return undefined;
    throw err;
  }
}

function sameAddress(x: PciAddress, y: PciAddress): boolean {
  return x.bus === y.bus && x.device === y.device && x.function === y.function;
}
