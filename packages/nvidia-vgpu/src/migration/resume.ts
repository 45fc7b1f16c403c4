/** The resuming side of a vGPU migration stream (format.ts has the layout): every record checked before it lands. */
import { copyWithChecksum, migrationChecksum, type ResumingStream, StreamRefusal } from '@vfiokit/core';
import {
  BAR3_PAGES,
  MAX_RUN_PAGES,
  MAX_STATE_BYTES,
  MIG_FLAG_PAYLOAD_CRC,
  MIG_MAGIC,
  MIG_PAGE_SIZE,
  MIG_VERSION,
  type MigrationHost,
  type ParsedState,
  parseDeviceState,
  RECORD_HEADER_SIZE,
  STREAM_HEADER_SIZE,
  TAG_BAR3,
  TAG_END,
  TAG_FB,
  TAG_STATE,
} from './format.js';

enum Phase {
  Header,
  Record,
  Payload,
  Done,
}

export class ResumeStream implements ResumingStream<ParsedState> {
  private phase = Phase.Header;
  private readonly head = new Uint8Array(STREAM_HEADER_SIZE);
  private headFill = 0;
  /** The device state record's bytes while they arrive in pieces. */
  private payload: Uint8Array | undefined;
  /** Where an FB or BAR3 record's pages go (the device's memory), while one arrives. */
  private memory: Uint8Array | undefined;
  private memoryAt = 0;
  /** Whether the record's payload CRC is checked, and the CRC of its bytes so far. */
  private checked = false;
  private crc = 0;
  private payloadFill = 0;
  private payloadLength = 0;
  private payloadCrc = 0;
  private seq = 0;
  private flags = 0;
  private received = 0;
  private readonly refusal: StreamRefusal;
  private state: ParsedState | undefined;
  private readonly pages: number;

  constructor(private readonly dev: MigrationHost) {
    this.pages = dev.fbSize / MIG_PAGE_SIZE;
    // The stream sends BAR3's non-zero pages only: what this device held before is replaced.
    if (dev.bar3Touched) {
      dev.bar3.fill(0);
      dev.bar3Touched = false;
    }
    this.refusal = new StreamRefusal(
      dev.name,
      `Send the complete, unmodified stream saved from a ${dev.profile.profile} vGPU with the same framebuffer size.`,
    );
  }

  private fail(problem: string): never {
    this.refusal.refuse(`${problem} (at stream byte ${this.received})`);
  }

  write(chunk: Uint8Array): void {
    this.refusal.check();
    let at = 0;
    while (at < chunk.length) {
      if (this.phase === Phase.Done) this.fail('there are bytes after the END record');
      if (this.phase === Phase.Payload) {
        const want = this.payloadLength - this.payloadFill;
        const n = Math.min(want, chunk.length - at);
        const piece = n === chunk.length ? chunk : chunk.subarray(at, at + n);
        at += n;
        this.received += n;
        const memory = this.memory;
        if (memory !== undefined) {
          // Framebuffer and BAR3 pages go straight to where they belong, checked as they pass
          // (a record that fails its check refuses the stream; the device is then never loaded).
          // (one pass over the bytes: the copy and the check are fused)
          if (this.checked)
            this.crc = copyWithChecksum(memory, this.memoryAt + this.payloadFill, piece, this.crc);
          else memory.set(piece, this.memoryAt + this.payloadFill);
          this.payloadFill += n;
          if (this.payloadFill === this.payloadLength) this.finishPages();
          continue;
        }
        if (this.payloadFill === 0 && n === want) {
          this.finishState(piece);
          continue;
        }
        if (this.payload === undefined) this.payload = new Uint8Array(this.payloadLength);
        this.payload.set(piece, this.payloadFill);
        this.payloadFill += n;
        if (this.payloadFill === this.payloadLength) {
          const whole = this.payload;
          this.payload = undefined;
          this.finishState(whole);
        }
        continue;
      }
      const size = this.phase === Phase.Header ? STREAM_HEADER_SIZE : RECORD_HEADER_SIZE;
      const n = Math.min(size - this.headFill, chunk.length - at);
      this.head.set(chunk.subarray(at, at + n), this.headFill);
      this.headFill += n;
      at += n;
      this.received += n;
      if (this.headFill === size) {
        this.headFill = 0;
        if (this.phase === Phase.Header) this.checkStreamHeader();
        else this.checkRecordHeader();
      }
    }
  }

  private checkStreamHeader(): void {
    const v = new DataView(this.head.buffer, 0, STREAM_HEADER_SIZE);
    if (v.getUint32(0, true) !== MIG_MAGIC)
      this.fail(`the magic is 0x${v.getUint32(0, true).toString(16)}, not a vGPU stream`);
    if (v.getUint32(28, true) !== migrationChecksum(this.head.subarray(0, 28)))
      this.fail('the stream header checksum does not match');
    if (v.getUint32(4, true) !== MIG_VERSION)
      this.fail(`the stream is version ${v.getUint32(4, true)}; this device reads ${MIG_VERSION}`);
    const type = v.getUint32(8, true);
    if (type !== this.dev.profile.typeId)
      this.fail(
        `the stream was saved from vGPU type ${type}, this device is type ${this.dev.profile.typeId}`,
      );
    this.flags = v.getUint32(12, true);
    if ((this.flags & ~MIG_FLAG_PAYLOAD_CRC) !== 0)
      this.fail(`the stream flags 0x${this.flags.toString(16)} are unknown`);
    const fb = v.getFloat64(16, true);
    if (fb !== this.dev.fbSize)
      this.fail(`the stream carries a ${fb}-byte framebuffer, this vGPU has ${this.dev.fbSize}`);
    if (v.getUint32(24, true) !== MIG_PAGE_SIZE) this.fail('the stream page size is not 4096');
    this.phase = Phase.Record;
  }

  private checkRecordHeader(): void {
    const v = new DataView(this.head.buffer, 0, RECORD_HEADER_SIZE);
    if (v.getUint32(20, true) !== migrationChecksum(this.head.subarray(0, 20)))
      this.fail(`record ${this.seq} has a bad header checksum`);
    const tag = v.getUint32(0, true);
    const seq = v.getUint32(4, true);
    const a = v.getUint32(8, true);
    const b = v.getUint32(12, true);
    if (seq !== this.seq) this.fail(`record ${seq} arrived where record ${this.seq} was due`);
    this.seq++;
    this.payloadCrc = v.getUint32(16, true);
    if (tag === TAG_FB) {
      if (b < 1 || b > MAX_RUN_PAGES || a + b > this.pages)
        this.fail(`an FB record names pages ${a}..${a + b - 1} of a ${this.pages}-page framebuffer`);
      this.startPages(this.dev.fb, a, b);
    } else if (tag === TAG_BAR3) {
      if (b < 1 || b > MAX_RUN_PAGES || a + b > BAR3_PAGES)
        this.fail(`a BAR3 record names pages ${a}..${a + b - 1} of a ${BAR3_PAGES}-page BAR3`);
      if (this.state) this.fail('a BAR3 record came after the device state');
      this.startPages(this.dev.bar3, a, b);
      this.dev.bar3Touched = true;
    } else if (tag === TAG_STATE) {
      if (a === 0 || a > MAX_STATE_BYTES || b !== 0) this.fail(`the device state record claims ${a} bytes`);
      if (this.state) this.fail('the device state was sent twice');
      this.memory = undefined;
      this.payloadLength = a;
      this.payloadFill = 0;
      this.phase = Phase.Payload;
    } else if (tag === TAG_END) {
      if (a !== seq || b !== 0) this.fail('the END record does not count the records before it');
      if (!this.state) this.fail('the END record came before the device state');
      this.phase = Phase.Done;
    } else {
      this.fail(`record ${seq} has unknown tag ${tag}`);
    }
  }

  /** The payload of an FB or BAR3 record: `count` pages from page `first` of `memory`. */
  private startPages(memory: Uint8Array, first: number, count: number): void {
    this.memory = memory;
    this.memoryAt = first * MIG_PAGE_SIZE;
    this.payloadLength = count * MIG_PAGE_SIZE;
    this.payloadFill = 0;
    this.checked = (this.flags & MIG_FLAG_PAYLOAD_CRC) !== 0;
    this.crc = 0;
    this.phase = Phase.Payload;
  }

  private finishPages(): void {
    this.phase = Phase.Record;
    this.memory = undefined;
    if (this.checked && this.crc !== this.payloadCrc)
      this.fail(`record ${this.seq - 1} has a bad payload checksum`);
  }

  /** The device state record (always checked), whole. */
  private finishState(payload: Uint8Array): void {
    this.phase = Phase.Record;
    if (migrationChecksum(payload) !== this.payloadCrc)
      this.fail(`record ${this.seq - 1} has a bad payload checksum`);
    const parsed = parseDeviceState(this.dev, payload);
    if (typeof parsed === 'string') this.fail(`the device state is wrong: ${parsed}`);
    this.state = parsed;
  }

  /** The state to load, or EINVAL when the stream was refused or ended early. */
  complete(): ParsedState {
    this.refusal.check();
    if (this.phase !== Phase.Done || !this.state) {
      const where = ['in the stream header', 'between records', 'inside a record', ''][this.phase];
      throw this.refusal.error(
        `the stream ended after ${this.received} bytes ${where}, before its END record`,
      );
    }
    return this.state;
  }
}
