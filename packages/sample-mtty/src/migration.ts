/**
 * VFIO migration v2 for mtty, with the arcs and stream of samples/vfio-mdev/mtty.c: the stream
 * starts with mtty's header (magic, version 1.0, number of ports, flags); PRE_COPY offers just
 * the header, and STOP_COPY appends the device state. The state here is the config space
 * snapshot followed by each port's UART state (mtty.c saves its ports only).
 *
 *   0  u64 magic 0x7e9d09898c3e2c4e   8 u32 major 1   12 u32 minor 0   16 u32 nr_ports   20 u32 flags 0
 *   24 config space (256 bytes)       280 port 0 (UART_STATE_SIZE bytes)   then port 1
 */
import {
  type ConfigSpace,
  type MigrationCaps,
  type MigrationOps,
  type MigrationStream,
  type MigState,
  type PrecopyInfo,
  type ResumingStream,
  type SavingStream,
  StreamArcs,
  StreamQueue,
  StreamRefusal,
  VfioError,
} from '@vfiokit/core';
import { UART_STATE_SIZE, Uart16550 } from './uart16550.js';

// samples/vfio-mdev/mtty.c struct mtty_data
export const MTTY_MAGIC = 0x7e9d09898c3e2c4en;
export const MTTY_MAJOR_VER = 1;
export const MTTY_MINOR_VER = 0;
export const MTTY_HEADER_SIZE = 24;

/** What migration reads and writes of a device. */
export interface MttyState {
  readonly name: string;
  readonly config: ConfigSpace;
  readonly ports: readonly Uart16550[];
  /** Called after a successful load. */
  syncInterruptLine(): void;
}

export class MttyMigration implements MigrationOps {
  /** mtty.c: VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY. */
  readonly caps: MigrationCaps = { stopCopy: true, p2p: true, preCopy: true };
  /**
   * mtty_step_state: RUNNING⇄RUNNING_P2P, RUNNING_P2P→STOP, STOP→RUNNING_P2P and
   * PRE_COPY⇄PRE_COPY_P2P do nothing (mtty does no DMA); the others open, fill or close a stream.
   */
  private readonly arcs: StreamArcs<SaveStream, ResumeStream, Uint8Array>;

  constructor(private readonly device: MttyState) {
    this.arcs = new StreamArcs(device.name, {
      save: (precopy) => new SaveStream(this.header(), () => this.deviceState(), precopy),
      resume: () => new ResumeStream(device.name, this.stopCopySize(), device.ports.length),
      load: (stream) => this.load(stream),
    });
  }

  /** mtty_data_size: the full stream length. */
  stopCopySize(): number {
    return MTTY_HEADER_SIZE + this.device.config.size + this.device.ports.length * UART_STATE_SIZE;
  }

  /** Drop any stream (device reset). */
  reset(): void {
    this.arcs.reset();
  }

  step(from: MigState, to: MigState): MigrationStream | undefined {
    return this.arcs.step(from, to);
  }

  private header(): Uint8Array {
    const bytes = new Uint8Array(MTTY_HEADER_SIZE);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(0, MTTY_MAGIC, true);
    view.setUint32(8, MTTY_MAJOR_VER, true);
    view.setUint32(12, MTTY_MINOR_VER, true);
    view.setUint32(16, this.device.ports.length, true);
    view.setUint32(20, 0, true);
    return bytes;
  }

  private deviceState(): Uint8Array {
    const { config, ports } = this.device;
    const bytes = new Uint8Array(config.size + ports.length * UART_STATE_SIZE);
    bytes.set(config.snapshot());
    for (let i = 0; i < ports.length; i++)
      ports[i].saveState(bytes.subarray(config.size + i * UART_STATE_SIZE));
    return bytes;
  }

  /** Check everything first, then load: a refused stream leaves the device as it was. */
  private load(stream: Uint8Array): void {
    const { config, ports, name } = this.device;
    const at = (i: number) => stream.subarray(MTTY_HEADER_SIZE + config.size + i * UART_STATE_SIZE);
    for (let i = 0; i < ports.length; i++) {
      const problem = Uart16550.checkState(at(i));
      if (problem !== undefined) {
        throw new VfioError(
          'EINVAL',
          `the migration stream holds an impossible state for port ${i}: ${problem}.`,
          {
            device: name,
            hint: 'The stream is corrupted or was saved by another device model; migrate again from the source.',
          },
        );
      }
    }
    config.restore(stream.subarray(MTTY_HEADER_SIZE, MTTY_HEADER_SIZE + config.size));
    for (let i = 0; i < ports.length; i++) ports[i].loadState(at(i));
    this.device.syncInterruptLine();
  }
}

/**
 * The saving side: the header, then (at once in STOP_COPY, at PRE_COPY_P2P → STOP_COPY after a
 * pre-copy) the device state.
 */
class SaveStream implements SavingStream {
  private readonly out = new StreamQueue();

  constructor(
    header: Uint8Array,
    private readonly state: () => Uint8Array,
    precopy: boolean,
  ) {
    this.out.push(header);
    if (!precopy) this.out.push(state());
  }

  finalize(): void {
    this.out.push(this.state());
  }

  read(max: number): Uint8Array {
    return this.out.read(max);
  }

  /** mtty_precopy_ioctl: initial_bytes is what is left to read, dirty_bytes is always 0. */
  precopyInfo(): PrecopyInfo {
    return { initialBytes: this.out.queued, dirtyBytes: 0 };
  }
}

/** The resuming side: checks the header as soon as it is complete, and the length at the end. */
class ResumeStream implements ResumingStream<Uint8Array> {
  private readonly bytes: Uint8Array;
  private received = 0;
  private readonly refusal: StreamRefusal;

  constructor(
    device: string,
    size: number,
    private readonly ports: number,
  ) {
    this.bytes = new Uint8Array(size);
    this.refusal = new StreamRefusal(
      device,
      'Send the complete, unmodified stream saved from an mtty device of the same type.',
    );
  }

  write(chunk: Uint8Array): void {
    this.refusal.check();
    if (this.received + chunk.length > this.bytes.length) {
      throw this.refusal.error(
        `the stream is longer than the ${this.bytes.length} bytes of an mtty state with ${this.ports} port(s) (${this.received} received, ${chunk.length} more offered)`,
      );
    }
    const before = this.received;
    this.bytes.set(chunk, before);
    this.received += chunk.length;
    if (before < MTTY_HEADER_SIZE && this.received >= MTTY_HEADER_SIZE) {
      const problem = this.checkHeader();
      if (problem !== undefined) this.refusal.refuse(problem);
    }
  }

  /** The whole stream, or EINVAL when it was refused or ended early. */
  complete(): Uint8Array {
    this.refusal.check();
    if (this.received < this.bytes.length) {
      throw this.refusal.error(`the stream ended after ${this.received} of ${this.bytes.length} bytes`);
    }
    return this.bytes;
  }

  /** mtty_resume_write: magic, version, flags and the number of ports must match this device. */
  private checkHeader(): string | undefined {
    const view = new DataView(this.bytes.buffer, 0, MTTY_HEADER_SIZE);
    const magic = view.getBigUint64(0, true);
    if (magic !== MTTY_MAGIC) return `the magic is 0x${magic.toString(16)}, not 0x${MTTY_MAGIC.toString(16)}`;
    const major = view.getUint32(8, true);
    const minor = view.getUint32(12, true);
    if (major !== MTTY_MAJOR_VER || minor !== MTTY_MINOR_VER) {
      return `the stream is version ${major}.${minor}; this device reads ${MTTY_MAJOR_VER}.${MTTY_MINOR_VER}`;
    }
    const ports = view.getUint32(16, true);
    if (ports !== this.ports) return `the stream holds ${ports} port(s) but this device has ${this.ports}`;
    const flags = view.getUint32(20, true);
    if (flags !== 0) return `the header flags are 0x${flags.toString(16)}, not 0`;
    return undefined;
  }
}
