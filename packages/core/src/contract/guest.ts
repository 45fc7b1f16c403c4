/**
 * Guest driver programs. There is no CPU emulator: guest behaviour is TypeScript that acts only
 * through what a guest sees — config cycles, MMIO and port I/O at guest-physical addresses,
 * guest RAM and interrupts — never through plugin internals. The reference VMM provides the
 * GuestView; a plugin package contributes drivers for its devices through `guestDrivers`.
 */

/** A PCI function address, bus:device.function. */
export interface PciAddress {
  readonly bus: number;
  readonly device: number;
  readonly function: number;
}

export function formatPciAddress(a: PciAddress, domain = 0): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, '0');
  return `${h(domain, 4)}:${h(a.bus, 2)}:${h(a.device, 2)}.${a.function}`;
}

/** A BAR as the guest's probe assigned it. */
export interface ProbedBar {
  readonly index: number;
  readonly kind: 'mem32' | 'mem64' | 'io';
  readonly prefetchable: boolean;
  readonly size: number;
  /** Guest-physical address (memory) or port (I/O). */
  readonly address: number;
}

/** A function found by the guest's PCI probe. */
export interface ProbedDevice {
  readonly address: PciAddress;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  readonly classCode: number;
  readonly revision: number;
  readonly interruptPin: number;
  readonly bars: readonly ProbedBar[];
  readonly capabilities: readonly { readonly id: number; readonly offset: number }[];
  /** How the probe set up interrupts, and the vectors it allocated. */
  readonly interrupts: {
    readonly kind: 'msix' | 'msi' | 'intx' | 'none';
    readonly vectors: readonly number[];
  };
}

export interface GuestInterrupts {
  /** Allocate a vector and the MSI message (x86: address 0xFEE00000, data = vector) that targets it. */
  allocateVector(): { readonly vector: number; readonly address: number; readonly data: number };
  /** The vector a function's INTx pin is routed to. */
  intxVector(address: PciAddress): number;
  /** How many times `vector` has been delivered. */
  count(vector: number): number;
  /** End of interrupt: for a level-triggered INTx this unmasks the line again (QEMU's vfio_intx_eoi). */
  eoi(vector: number): void;
  /** Wait until `vector` has been delivered at least `count` times; false on timeout. */
  waitFor(vector: number, count: number, timeoutMs: number): Promise<boolean>;
}

export interface GuestRam {
  readonly size: number;
  read(gpa: number, dst: Uint8Array): void;
  write(gpa: number, src: Uint8Array): void;
  /** Allocate guest RAM for driver buffers (page aligned by default). */
  alloc(size: number, align?: number): number;
}

/** Everything a guest program may touch. Accesses that hit nothing read all-ones, as on real hardware. */
export interface GuestView {
  configRead(address: PciAddress, offset: number, size: 1 | 2 | 4): number;
  configWrite(address: PciAddress, offset: number, size: 1 | 2 | 4, value: number): void;
  mmioRead(gpa: number, size: 1 | 2 | 4): number;
  mmioWrite(gpa: number, size: 1 | 2 | 4, value: number): void;
  /**
   * An 8-byte MMIO access, little endian, as one access (a 64-bit guest's readq/writeq: a
   * trapped device region sees one 8-byte read or write, as QEMU's vfio regions take 1 to 8
   * bytes). All-ones when it hits nothing.
   */
  mmioRead64(gpa: number): bigint;
  mmioWrite64(gpa: number, value: bigint): void;
  ioRead(port: number, size: 1 | 2 | 4): number;
  ioWrite(port: number, size: 1 | 2 | 4, value: number): void;
  readonly ram: GuestRam;
  readonly interrupts: GuestInterrupts;
  /** Functions found by the probe (empty before it ran). */
  devices(): readonly ProbedDevice[];
  log(message: string): void;
}

/** What a driver program reports: facts for the VMM's report, and whether it worked. */
export interface GuestDriverResult {
  readonly ok: boolean;
  readonly summary: string;
  readonly facts?: Readonly<Record<string, unknown>>;
}

/**
 * What a guest program keeps in its own memory and registers across a live migration, beyond the
 * guest RAM the VMM copies: JSON values only, so it travels with the rest of the guest.
 */
export type GuestProgramState = Record<string, unknown>;

/**
 * A driver's program around a live migration of its device: `start` runs on the source and sets
 * the device to work; `keepRunning` is one burst of the guest running (it dirties the device's
 * memory) and is called again and again while the VMM pre-copies; `leaveInFlight` is the last
 * thing the guest does before its vCPUs stop (it submits work the device has not finished);
 * `verify` runs on the destination (or on the source again after a failed migration) and checks
 * every byte and the in-flight work.
 */
export interface GuestMigrationProgram {
  start(guest: GuestView, device: ProbedDevice): Promise<GuestProgramState>;
  keepRunning(guest: GuestView, device: ProbedDevice, state: GuestProgramState): Promise<void>;
  leaveInFlight(guest: GuestView, device: ProbedDevice, state: GuestProgramState): Promise<void>;
  verify(guest: GuestView, device: ProbedDevice, state: GuestProgramState): Promise<GuestDriverResult>;
}

/** A guest driver a plugin package contributes; the VMM runs it after the probe for each matching function. */
export interface GuestDriver {
  readonly name: string;
  /** Bind to a function the way a Linux driver's id table does. */
  matches(device: ProbedDevice): boolean;
  run(guest: GuestView, device: ProbedDevice): Promise<GuestDriverResult>;
  /** The driver's program around a live migration, for devices that migrate. */
  readonly migration?: GuestMigrationProgram;
}
