/**
 * The vGPU's display engine timing and its monitor (gvt/display.c): one virtual DP monitor on
 * port D (Skylake and later), its DPCD and EDID reached over AUX channel D, empty ports A-C,
 * and the pipes' vertical blanks — while a pipe is enabled, a vblank every frame (60 Hz, as
 * GVT's vblank timer) counts in PIPE_FRMCOUNT and raises GEN8_PIPE_VBLANK, and PIPEDSL reads
 * the scanline the frame has reached.
 */
import type { Clock } from '@vfiokit/core';
import { AuxChannel, DP_AUX_CH_CTL_INTERRUPT } from './aux.js';
import { VirtualDpcd } from './dpcd.js';
import type { VgpuInterrupts } from './interrupt.js';
import { DP_AUX_CH_CTL, PIPE_FRMCOUNT, PIPES, TRANSCODER_BASE } from './mmio/display-handlers.js';
import type { Vreg } from './mmio/vreg.js';

/** GVT's vblank period: 1 s / 60 (VBLANK_TIMER_PERIOD 16 ms ≈ 60 Hz refresh). */
export const VBLANK_PERIOD_NS = Math.round(1e9 / 60);
/** GEN8_PIPE_VBLANK in the DE pipe IIR. */
export const GEN8_PIPE_VBLANK = 1 << 0;
/** The DE port IIR bits of the AUX channels on gen9: A, B, C, D. */
export const AUX_CHANNEL_DONE = [1 << 0, 1 << 25, 1 << 26, 1 << 27] as const;
/** PORT_D: where GVT-g plugs the virtual monitor on Skylake and later (kvmgt.c). */
export const MONITOR_PORT = 3;

export class DisplayPipes {
  readonly dpcd = new VirtualDpcd();
  readonly aux: AuxChannel[];
  private clock: Clock | undefined;
  private readonly started: (number | undefined)[] = [undefined, undefined, undefined];
  private readonly cancel: ((() => void) | undefined)[] = [undefined, undefined, undefined];
  vblanks = 0;

  constructor(
    private readonly regs: Vreg,
    private readonly irq: VgpuInterrupts,
    edid: () => Uint8Array,
  ) {
    this.aux = [0, 1, 2, 3].map(
      (ch) => new AuxChannel(DP_AUX_CH_CTL(ch), ch === MONITOR_PORT ? { dpcd: this.dpcd, edid } : undefined),
    );
  }

  attach(clock: Clock | undefined): void {
    this.clock = clock;
  }

  detach(): void {
    for (let p = 0; p < PIPES; p++) this.pipeEnabled(p, false);
    this.clock = undefined;
  }

  reset(): void {
    for (let p = 0; p < PIPES; p++) this.pipeEnabled(p, false);
    this.dpcd.reset();
    for (const a of this.aux) a.reset();
  }

  auxWritten(ch: number, value: number): void {
    const a = this.aux[ch];
    if (a === undefined) return;
    const now = a.write(this.regs, value);
    if (value & DP_AUX_CH_CTL_INTERRUPT && now !== 0) this.irq.portEvent(AUX_CHANNEL_DONE[ch]);
  }

  pipeEnabled(pipe: number, on: boolean): void {
    this.cancel[pipe]?.();
    this.cancel[pipe] = undefined;
    if (!on || this.clock === undefined) {
      this.started[pipe] = undefined;
      return;
    }
    const clock = this.clock;
    this.started[pipe] = clock.now();
    const tick = () => {
      this.cancel[pipe] = clock.schedule(VBLANK_PERIOD_NS, () => {
        this.vblank(pipe);
        tick();
      });
    };
    tick();
  }

  /** One vertical blank of `pipe`. */
  vblank(pipe: number): void {
    this.vblanks++;
    const counter = PIPE_FRMCOUNT(pipe);
    this.regs.set(counter, (this.regs.get(counter) + 1) >>> 0);
    this.irq.pipeEvent(pipe, GEN8_PIPE_VBLANK);
  }

  /** The scanline of an enabled pipe: the frame's elapsed share of TRANS_VTOTAL's lines. */
  scanline(pipe: number): number {
    const start = this.started[pipe];
    if (start === undefined || this.clock === undefined) return 0;
    const vtotal = ((this.regs.get(TRANSCODER_BASE[pipe] + 0x0c) >>> 16) & 0x1fff) + 1;
    const into = (this.clock.now() - start) % VBLANK_PERIOD_NS;
    return Math.floor((into / VBLANK_PERIOD_NS) * vtotal) % vtotal;
  }
}
