/** The guest's view of a vGPU's BARs: registers in BAR0, the RPC mailbox, the framebuffer in BAR1. */
import type { GuestView } from '@vfiokit/core';
import { INTR_ALL, MAILBOX_OFFSET, MAILBOX_RESPONSE, REG_INTR_STATUS, REG_RPC_DOORBELL } from './abi.js';

export class Bars {
  constructor(
    private readonly guest: GuestView,
    private readonly bar0: number,
    private readonly bar1: number,
  ) {}
  reg(offset: number): number {
    return this.guest.mmioRead(this.bar0 + offset, 4) >>> 0;
  }
  setReg(offset: number, value: number): void {
    this.guest.mmioWrite(this.bar0 + offset, 4, value >>> 0);
  }
  fb(offset: number): number {
    return this.guest.mmioRead(this.bar1 + offset, 4) >>> 0;
  }
  setFb(offset: number, value: number): void {
    this.guest.mmioWrite(this.bar1 + offset, 4, value >>> 0);
  }

  /** One RPC: request words into the mailbox, doorbell, then result and the returned words. */
  rpc(
    fn: number,
    params: number[],
    sequence: number,
    resultWords: number,
  ): { result: number; words: number[] } {
    const words = [fn, 12 + params.length * 4, sequence, ...params];
    for (const [i, w] of words.entries()) this.setReg(MAILBOX_OFFSET + i * 4, w);
    this.setReg(REG_RPC_DOORBELL, words[1]);
    const result = this.reg(MAILBOX_OFFSET + MAILBOX_RESPONSE);
    const out: number[] = [];
    for (let i = 0; i < resultWords; i++) out.push(this.reg(MAILBOX_OFFSET + MAILBOX_RESPONSE + 12 + i * 4));
    this.setReg(REG_INTR_STATUS, INTR_ALL);
    return { result, words: out };
  }
}
