/**
 * The virtual DP sink's DPCD (gvt/display.h, display.c): DPCD 1.2, HBR2 (5.4 Gbps), four lanes
 * with enhanced framing, one sink; link training answered the way GVT-g answers it — pattern 1
 * reports clock recovery done on every lane, pattern 2 channel equalisation, symbol lock and
 * interlane alignment, training off puts the sink in sync.
 */

/** DPCD_SIZE: addresses from 0x700 up are read as zeros and written with a NACK. */
export const DPCD_SIZE = 0x700;
/** dpcd_fix_data: revision, max link rate, max lane count | enhanced framing. */
export const DPCD_HEADER = Uint8Array.of(0x12, 0x14, 0x84);
export const DPCD_SINK_COUNT = 0x200;
export const DPCD_TRAINING_PATTERN_SET = 0x102;
export const DPCD_LANE0_1_STATUS = 0x202;
export const DPCD_LANE2_3_STATUS = 0x203;
export const DPCD_LANE_ALIGN_STATUS_UPDATED = 0x204;
export const DPCD_SINK_STATUS = 0x205;
const DPCD_LANES_CR_DONE = 0x11;
const DPCD_LANES_EQ_DONE = 0x22;
const DPCD_SYMBOL_LOCKED = 0x44;
const DPCD_INTERLANE_ALIGN_DONE = 0x01;
const DPCD_SINK_IN_SYNC = 0x03;

export class VirtualDpcd {
  readonly data = new Uint8Array(DPCD_SIZE);

  constructor() {
    this.reset();
  }

  reset(): void {
    this.data.fill(0);
    this.data.set(DPCD_HEADER, 0);
    this.data[DPCD_SINK_COUNT] = 1;
  }

  read(addr: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    if (addr + length <= DPCD_SIZE) out.set(this.data.subarray(addr, addr + length));
    return out;
  }

  /** A native write; false when it reaches past the DPCD (the sink NACKs it). */
  write(addr: number, bytes: Uint8Array): boolean {
    if (addr + bytes.length >= DPCD_SIZE) return false;
    for (let k = 0; k < bytes.length; k++) {
      this.data[addr + k] = bytes[k];
      if (addr + k === DPCD_TRAINING_PATTERN_SET) this.linkTraining(bytes[k]);
    }
    return true;
  }

  /** dp_aux_ch_ctl_link_training. */
  private linkTraining(value: number): void {
    const d = this.data;
    switch (value & 0x3) {
      case 1:
        d[DPCD_LANE0_1_STATUS] |= DPCD_LANES_CR_DONE;
        d[DPCD_LANE2_3_STATUS] |= DPCD_LANES_CR_DONE;
        break;
      case 2:
        d[DPCD_LANE0_1_STATUS] |= DPCD_LANES_EQ_DONE | DPCD_SYMBOL_LOCKED;
        d[DPCD_LANE2_3_STATUS] |= DPCD_LANES_EQ_DONE | DPCD_SYMBOL_LOCKED;
        d[DPCD_LANE_ALIGN_STATUS_UPDATED] |= DPCD_INTERLANE_ALIGN_DONE;
        break;
      case 0:
        d[DPCD_SINK_STATUS] = DPCD_SINK_IN_SYNC;
        break;
    }
  }
}
