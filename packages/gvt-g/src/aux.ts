/**
 * The DP AUX channels (handlers.c dp_aux_ch_ctl_mmio_write, edid.c's I2C-over-AUX): a write of
 * DP_AUX_CH_CTL with SEND_BUSY runs the request in DATA1..5 at once. On the port with the
 * virtual monitor, native reads and writes reach its DPCD and I2C-over-AUX reaches its EDID at
 * DDC address 0x50; on the other ports the transaction ends in a timeout, as with nothing
 * plugged in. Request and reply bytes are big-endian in the data registers.
 */
import type { VirtualDpcd } from './dpcd.js';

/** DP_AUX_CH_CTL bits (intel_dp_aux_regs.h). */
export const DP_AUX_CH_CTL_SEND_BUSY = 1 << 31;
export const DP_AUX_CH_CTL_DONE = 1 << 30;
export const DP_AUX_CH_CTL_INTERRUPT = 1 << 29;
export const DP_AUX_CH_CTL_TIME_OUT_ERROR = 1 << 28;
export const DP_AUX_CH_CTL_RECEIVE_ERROR = 1 << 25;
const MESSAGE_SIZE_SHIFT = 20;
const MESSAGE_SIZE_MASK = 0x1f << MESSAGE_SIZE_SHIFT;
/** drm_dp_helper.h request codes and reply bytes. */
const AUX_NATIVE_WRITE = 0x8;
const AUX_NATIVE_READ = 0x9;
const AUX_I2C_MOT = 0x4;
const AUX_I2C_READ = 0x1;
const AUX_NATIVE_REPLY_NAK = 0x10;
const AUX_I2C_REPLY_NACK = 0x40;
/** The EDID's DDC address (drm_edid.c DDC_ADDR) and the segment pointer. */
export const DDC_ADDR = 0x50;
const DDC_SEGMENT_ADDR = 0x30;

/** The monitor behind one AUX channel. */
export interface AuxSink {
  readonly dpcd: VirtualDpcd;
  /** The EDID it answers on DDC. */
  edid(): Uint8Array;
}

/** What the channel needs of the register file. */
export interface AuxRegisters {
  get(offset: number): number;
  set(offset: number, value: number): void;
}

export class AuxChannel {
  /** The I2C-over-AUX EDID read pointer and segment. */
  private i2cOffset = 0;
  private segment = 0;
  transactions = 0;

  constructor(
    readonly ctl: number,
    private readonly sink: AuxSink | undefined,
  ) {}

  reset(): void {
    this.i2cOffset = 0;
    this.segment = 0;
  }

  private bytesOf(regs: AuxRegisters, count: number): Uint8Array {
    const out = new Uint8Array(20);
    for (let k = 0; k < 5; k++) {
      const w = regs.get(this.ctl + 4 + 4 * k);
      out[4 * k] = w >>> 24;
      out[4 * k + 1] = (w >>> 16) & 0xff;
      out[4 * k + 2] = (w >>> 8) & 0xff;
      out[4 * k + 3] = w & 0xff;
    }
    return out.subarray(0, count);
  }

  private reply(regs: AuxRegisters, bytes: Uint8Array): void {
    for (let k = 0; k < 5; k++) {
      let w = 0;
      for (let b = 0; b < 4; b++) w = (w << 8) | (bytes[4 * k + b] ?? 0);
      regs.set(this.ctl + 4 + 4 * k, w >>> 0);
    }
  }

  /** dp_aux_ch_ctl_trans_done. */
  private done(regs: AuxRegisters, ctl: number, size: number, valid: boolean): number {
    let v = (ctl | DP_AUX_CH_CTL_DONE) & ~DP_AUX_CH_CTL_SEND_BUSY & ~DP_AUX_CH_CTL_RECEIVE_ERROR;
    v = valid ? v & ~DP_AUX_CH_CTL_TIME_OUT_ERROR : v | DP_AUX_CH_CTL_TIME_OUT_ERROR;
    v = (v & ~MESSAGE_SIZE_MASK) | (size << MESSAGE_SIZE_SHIFT);
    regs.set(this.ctl, v >>> 0);
    return v >>> 0;
  }

  /** DP_AUX_CH_CTL was written with `ctl`; returns the value it now holds. */
  write(regs: AuxRegisters, ctl: number): number {
    if ((ctl & DP_AUX_CH_CTL_SEND_BUSY) === 0) {
      // Clearing the sticky bits.
      regs.set(this.ctl, 0);
      return 0;
    }
    this.transactions++;
    const header = this.bytesOf(regs, 4);
    const request = header[0] >>> 4;
    const addr = ((header[0] & 0xf) << 16) | (header[1] << 8) | header[2];
    const len = header[3];
    const sink = this.sink;
    if (sink === undefined) return this.done(regs, ctl, 0, false);
    if (request === AUX_NATIVE_WRITE) {
      const data = this.bytesOf(regs, 4 + len + 1).subarray(4);
      const ok = sink.dpcd.write(addr, data);
      this.reply(regs, Uint8Array.of(ok ? 0 : AUX_NATIVE_REPLY_NAK));
      return this.done(regs, ctl, ok ? 1 : 2, true);
    }
    if (request === AUX_NATIVE_READ) {
      if (len + 2 > 20) return this.done(regs, ctl, 0, false);
      const data = sink.dpcd.read(addr, len + 1);
      const out = new Uint8Array(len + 2);
      out.set(data, 1);
      this.reply(regs, out);
      return this.done(regs, ctl, len + 2, true);
    }
    // I2C over AUX: address-only transactions (3 bytes sent) start or stop; writes set the
    // pointer; reads return EDID bytes.
    const i2c = request & ~AUX_I2C_MOT;
    const sent = (ctl >>> MESSAGE_SIZE_SHIFT) & 0x1f;
    const addressOnly = sent === 3;
    if (addr !== DDC_ADDR && addr !== DDC_SEGMENT_ADDR) {
      this.reply(regs, Uint8Array.of(AUX_I2C_REPLY_NACK));
      return this.done(regs, ctl, 1, true);
    }
    if (addressOnly) {
      if ((request & AUX_I2C_MOT) === 0 && addr === DDC_SEGMENT_ADDR) this.segment = 0;
      this.reply(regs, Uint8Array.of(0));
      return this.done(regs, ctl, 1, true);
    }
    if (i2c === AUX_I2C_READ) {
      if (len + 2 > 20) return this.done(regs, ctl, 0, false);
      const edid = sink.edid();
      const out = new Uint8Array(len + 2);
      const base = this.segment * 256;
      for (let k = 0; k <= len; k++) out[1 + k] = edid[base + this.i2cOffset + k] ?? 0;
      this.i2cOffset = (this.i2cOffset + len + 1) & 0xff;
      this.reply(regs, out);
      return this.done(regs, ctl, len + 2, true);
    }
    // An I2C write: the EDID offset (address 0x50) or the segment (0x30).
    const data = this.bytesOf(regs, 4 + len + 1).subarray(4);
    if (addr === DDC_SEGMENT_ADDR) this.segment = data[0];
    else this.i2cOffset = data[0];
    this.reply(regs, Uint8Array.of(0));
    return this.done(regs, ctl, 1, true);
  }
}
