/**
 * Linux's own i915 on a GVT-g vGPU: Debian's i915 module (and its dependencies) loads in the
 * guest, binds the served i915-GVTg_V5_4, initialises the GT through execlists and lights the
 * virtual DP monitor, and fbcon draws on it. Proven from both sides: the guest's devices and
 * dmesg, and the primary plane `vfiokit serve --save-frames` saved — the console text and a
 * known image the guest wrote to /dev/fb0, pixel for pixel. Then real requests on every engine:
 * `vfk i915-exec` (guest/helper/i915.c) stores distinct values through execbuf on each engine
 * i915 reports, from two contexts with their own PPGTTs, and the values, the kernel's messages and the server's per-engine workload
 * counts must all say the requests completed with no hang and no reset.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { checkScript, defineSuite, type HostCheckContext } from '../suite.js';

/** The image: WIDTH x ROWS pixels of XRGB8888, written at row ROW of the framebuffer. */
const WIDTH = 1920;
const ROWS = 48;
const ROW = 400;
const TEXT = 'VFIOKIT GVT-G I915 CONSOLE';
/** Requests per engine of the execbuf check (each one execbuf with one store). */
const REQUESTS = 100;
/** The engines the vGPU emulates (packages/gvt-g ENGINES), as i915 names them. */
const VGPU_ENGINES = ['rcs0', 'bcs0', 'vcs0', 'vecs0'];
const pixel = (x: number, y: number) =>
  (((x * 7 + y * 13) & 0xff) | (((x ^ y) & 0xff) << 8) | (((x + 3 * y) & 0xff) << 16)) >>> 0;

function pattern(): Uint8Array {
  const out = new Uint8Array(WIDTH * ROWS * 4);
  const dv = new DataView(out.buffer);
  for (let y = 0; y < ROWS; y++)
    for (let x = 0; x < WIDTH; x++) dv.setUint32(4 * (y * WIDTH + x), pixel(x, y), true);
  return out;
}

/** An 8-bit RGB PNG with filter None rows, as the core's encoder writes it. */
export function decodePng(png: Uint8Array): { width: number; height: number; rgb: Uint8Array } {
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let at = 8;
  let width = 0;
  let height = 0;
  const idat: Uint8Array[] = [];
  while (at < png.length) {
    const len = dv.getUint32(at);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    const data = png.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') {
      width = new DataView(data.buffer, data.byteOffset).getUint32(0);
      height = new DataView(data.buffer, data.byteOffset).getUint32(4);
      if (data[8] !== 8 || data[9] !== 2) throw new Error('the frame is not an 8-bit RGB PNG');
    } else if (type === 'IDAT') idat.push(data);
    at += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    if (raw[y * (1 + 3 * width)] !== 0)
      throw new Error(`row ${y} uses PNG filter ${raw[y * (1 + 3 * width)]}`);
    rgb.set(raw.subarray(y * (1 + 3 * width) + 1, (y + 1) * (1 + 3 * width)), y * width * 3);
  }
  return { width, height, rgb };
}

/** The guest's marker before its requests: the probe's messages are the ones before it. */
const EXEC_MARK = 'vfk: i915-exec start';

/** i915's messages in dmesg: errors, WARNING traces, and the lines the probe must print. */
function probeDmesg(ctx: HostCheckContext) {
  const all = ctx.dmesg.split('\n');
  const mark = all.findIndex((l) => l.includes(EXEC_MARK));
  const lines = mark < 0 ? all : all.slice(0, mark);
  const errors = lines.filter((l) => l.includes('*ERROR*'));
  const warnings = lines.filter((l) => /WARNING: CPU: \d+ PID: \d+ at drivers\/gpu\/drm/.test(l));
  const i915 = lines.filter((l) => /i915|\[drm\]|fbcon|WARNING:/.test(l));
  writeFileSync(join(ctx.artifacts, 'i915-dmesg.txt'), `${i915.join('\n')}\n`);
  const problems: string[] = [];
  if (errors.length > 0) problems.push(`${errors.length} *ERROR* lines, first: ${errors[0].trim()}`);
  if (warnings.length > 0) problems.push(`${warnings.length} WARNING traces, first: ${warnings[0].trim()}`);
  const probe = lines.join('\n');
  for (const want of ['Virtual GPU for Intel GVT-g detected', 'fb0: i915drmfb frame buffer device']) {
    if (!probe.includes(want)) problems.push(`dmesg lacks "${want}"`);
  }
  if (probe.includes('Failed to find VBIOS tables')) problems.push('i915 found no VBT');
  if (/wedged|GPU HANG|reset request timed out/i.test(probe)) problems.push('the GT hung or was wedged');
  return problems.length > 0
    ? { fail: problems.join('; ') }
    : { note: `${i915.length} i915 lines, 0 errors, 0 warnings (i915-dmesg.txt)` };
}

/** Every register the guest touched that the vGPU's MMIO table does not track. */
function unknownRegisters(ctx: HostCheckContext) {
  const found = [...ctx.serverLog('vgpu').matchAll(/untracked register (0x[0-9a-f]+) ([^;]*);/g)].map(
    (m) => `${m[1]} ${m[2]}`,
  );
  writeFileSync(join(ctx.artifacts, 'unknown-registers.txt'), found.length ? `${found.join('\n')}\n` : '');
  return found.length > 0
    ? { fail: `${found.length} untracked registers (unknown-registers.txt), first: ${found[0]}` }
    : { note: 'every register i915 touched is tracked (unknown-registers.txt is empty)' };
}

/** The saved primary plane holds the console text's cells and the image, pixel for pixel. */
function frameMatches(ctx: HostCheckContext) {
  const probe = ctx.output('i915 binds the vGPU; /dev/dri/card0 and /dev/fb0 exist')?.facts ?? {};
  const [fbw] = (probe.fb_size ?? '').split(',').map(Number);
  const log = ctx.serverLog('vgpu');
  const uuid = /serving ([0-9a-f-]{36}) on/.exec(log)?.[1];
  if (uuid === undefined) return { fail: 'the server log names no device' };
  let frame: ReturnType<typeof decodePng>;
  try {
    frame = decodePng(readFileSync(join(ctx.artifacts, 'frames', `${uuid}.png`)));
  } catch (err) {
    return { fail: `no frame was saved: ${(err as Error).message}` };
  }
  if (frame.width !== fbw) return { fail: `the plane is ${frame.width} wide, fb0 ${fbw}` };
  let wrong = 0;
  let first = '';
  for (let y = 0; y < ROWS; y++) {
    for (let x = 0; x < WIDTH; x++) {
      const p = pixel(x, y);
      const o = ((ROW + y) * frame.width + x) * 3;
      const got = (frame.rgb[o] << 16) | (frame.rgb[o + 1] << 8) | frame.rgb[o + 2];
      if (got !== (p & 0xffffff)) {
        wrong++;
        if (first === '')
          first = `(${x},${ROW + y}) is #${got.toString(16)}, not #${(p & 0xffffff).toString(16)}`;
      }
    }
  }
  if (wrong > 0) return { fail: `${wrong} pixels of the image differ; ${first}` };
  // The text: every character cell (8x16, fbcon's VGA font) of a letter has lit pixels; the
  // cells after it on the line are background.
  const lit = (cx: number) => {
    let n = 0;
    for (let y = 0; y < 16; y++)
      for (let x = cx * 8; x < cx * 8 + 8; x++) {
        const o = (y * frame.width + x) * 3;
        if (frame.rgb[o] | frame.rgb[o + 1] | frame.rgb[o + 2]) n++;
      }
    return n;
  };
  const dark = [...TEXT].flatMap((c, i) => (c !== ' ' && lit(i) === 0 ? [i] : []));
  if (dark.length > 0) return { fail: `text cells ${dark.join(', ')} are blank in the frame` };
  const after = Array.from({ length: 8 }, (_, k) => lit(TEXT.length + 2 + k)).reduce((a, b) => a + b, 0);
  if (after > 0) return { fail: 'the cells after the text are not background' };
  return {
    note: `${frame.width}x${frame.height}: ${WIDTH * ROWS} image pixels exact at row ${ROW}; "${TEXT}" drawn in its cells`,
  };
}

/** What a hang, a reset or an error of the GT looks like in dmesg. */
const TROUBLE = /GPU HANG|reset|\*ERROR\*|WARNING|wedged|hangcheck/i;

/**
 * Every engine the vGPU emulates ran all requests with the right values; the kernel said
 * nothing about hangs, resets or errors meanwhile; the server counted completed workloads, and
 * no refused one, on each engine.
 */
async function requestsComplete(ctx: HostCheckContext) {
  const lines = ctx.guest?.lines ?? [];
  const engines = lines.flatMap((l) => {
    const m =
      /^engine=\d+ .*name=(\S+) requests=(\d+) chained=(\d+) correct=(\d+) wait_ms=\S+ contexts=(\d+) stray=(\d+)/.exec(
        l,
      );
    return m
      ? [
          {
            name: m[1],
            requests: +m[2],
            chained: +m[3],
            correct: +m[4],
            contexts: +m[5],
            stray: +m[6],
            line: l,
          },
        ]
      : [];
  });
  const dmesg = lines.filter((l) => l.startsWith('dmesg: ')).map((l) => l.slice(7));
  // The server's counts are printed when the device closes, just after the session's summary.
  let counts = '';
  for (let tries = 0; tries < 20 && counts === ''; tries++) {
    counts = /workloads by engine: (.*)$/m.exec(ctx.serverLog('vgpu'))?.[1] ?? '';
    if (counts === '') await new Promise((r) => setTimeout(r, 100));
  }
  writeFileSync(
    join(ctx.artifacts, 'engines.txt'),
    `${engines.map((e) => e.line).join('\n')}\nserver: workloads by engine: ${counts}\n`,
  );
  writeFileSync(join(ctx.artifacts, 'exec-dmesg.txt'), `${dmesg.join('\n')}\n`);
  const problems: string[] = [];
  const names = engines.map((e) => e.name);
  for (const want of VGPU_ENGINES)
    if (!names.includes(want))
      problems.push(`i915 reported no ${want} (engines: ${names.join(', ') || 'none'})`);
  for (const e of engines) {
    if (e.requests !== REQUESTS || e.correct !== e.requests)
      problems.push(`${e.name}: ${e.correct} of ${e.requests} values right`);
    if (e.stray !== 0) problems.push(`${e.name}: ${e.stray} values landed in the other context's object`);
    if (e.contexts < 2) problems.push(`${e.name}: ${e.contexts} context(s), 2 expected`);
    // On gen9 i915 parses blitter batches itself and refuses a jump forward (i915_cmd_parser.c
    // check_bbstart: "not a previously executed cmd"); every other engine must chain.
    const refused = e.line.includes('chain_refused=EINVAL') && e.name === 'bcs0';
    if (e.chained === 0 && !refused) problems.push(`${e.name}: no request went through a chained batch`);
  }
  const trouble = dmesg.filter((l) => TROUBLE.test(l));
  if (trouble.length > 0)
    problems.push(`dmesg after the requests: ${trouble.length} lines like "${trouble[0]}"`);
  // The counts cover the whole session: the refusals the next check provokes on rcs0 (and only
  // those) are in them.
  const provoked =
    ctx.serverLog('vgpu').match(/rcs0: scan workload error: MI command opcode 0x3f /g)?.length ?? 0;
  for (const want of VGPU_ENGINES) {
    const m = new RegExp(`${want} (\\d+) completed \\((\\d+) commands\\), (\\d+) refused`).exec(counts);
    const refused = want === 'rcs0' ? provoked : 0;
    if (m === null) problems.push(`the server log has no workload count for ${want}`);
    else if (+m[1] === 0 || +m[2] < REQUESTS || +m[3] !== refused)
      problems.push(
        `the server counted ${want}: ${m[0]} (want > 0 completed, >= ${REQUESTS} commands, ${refused} refused)`,
      );
  }
  return problems.length > 0
    ? { fail: problems.join('; ') }
    : {
        note: `${engines.length} engines × ${REQUESTS} requests, every value right; no hang/reset/error in dmesg; server: ${counts} (engines.txt, exec-dmesg.txt)`,
      };
}

/**
 * The refused request was the guest's error and only the guest's: the vGPU logged the audit's
 * reason for rcs0 and counted one refusal; i915 found the hang, reset the engine, blamed the
 * context and failed its fence, never wedged the GT; the store before the bad command never ran;
 * the next request completed.
 */
function refusedIsGuestError(ctx: HostCheckContext) {
  const lines = ctx.guest?.lines ?? [];
  const f = ctx.guest?.facts ?? {};
  const dmesg = lines.filter((l) => l.startsWith('dmesg: ')).map((l) => l.slice(7));
  writeFileSync(join(ctx.artifacts, 'hang-dmesg.txt'), `${dmesg.join('\n')}\n`);
  const log = ctx.serverLog('vgpu');
  const problems: string[] = [];
  if (!/rcs0: scan workload error: MI command opcode 0x3f is not allowed/.test(log))
    problems.push('the server did not log the refusal of MI opcode 0x3f on rcs0');
  const rcs = /rcs0 \d+ completed \(\d+ commands\), (\d+) refused/.exec(log);
  if (rcs?.[1] !== '1')
    problems.push(`the server counted ${rcs?.[1] ?? 'no'} refused rcs0 workloads, 1 expected`);
  if (!dmesg.some((l) => /GPU HANG: .* in vfk/.test(l))) problems.push('i915 reported no GPU HANG for vfk');
  if (!dmesg.some((l) => /Resetting rcs0 for/.test(l))) problems.push('i915 did not reset rcs0');
  const bad = dmesg.filter((l) => /wedged|\*ERROR\*|WARNING|reset request timed out|Resetting chip/i.test(l));
  if (bad.length > 0) problems.push(`dmesg: ${bad.length} lines like "${bad[0]}"`);
  if (f.hang_fence_status !== '-5')
    problems.push(`the refused request's fence status is ${f.hang_fence_status}, not -EIO`);
  if (f.hang_store !== '0x00000000') problems.push(`the refused batch's store ran (${f.hang_store})`);
  if (!(Number(f.batch_active) >= 1))
    problems.push(`the context was not blamed (batch_active=${f.batch_active})`);
  if (f.after_reset_ok !== '1')
    problems.push(`the request after the reset: ${f.after_reset_value}, fence ${f.after_reset_fence_status}`);
  return problems.length > 0
    ? { fail: problems.join('; ') }
    : {
        note: `refused on the vGPU, GPU HANG + rcs0 reset in the guest, fence -EIO, batch_active=${f.batch_active}, store not run; the next request stored ${f.after_reset_value} (hang-dmesg.txt)`,
      };
}

export default defineSuite({
  name: 'i915',
  boots: [
    {
      name: 'i915-GVTg_V5_4',
      devices: [
        {
          id: 'vgpu',
          device: '@vfiokit/gvt-g:i915-GVTg_V5_4',
          addr: '05.0',
          serveArgs: ['--save-frames', '{artifacts}/frames'],
        },
      ],
      modules: ['i915'],
      append: ['log_buf_len=4M'],
      // Every trapped access, in order: the input of apps/reference-vmm/bench/record-i915-trace.ts.
      qemuTrace: ['vfio_region_read', 'vfio_region_write'],
      files: [{ path: '/vfk/i915/pattern.bin', data: pattern() }],
      env: { ROW: String(ROW), ROWS: String(ROWS), TEXT, REQUESTS: String(REQUESTS) },
      checks: [
        {
          name: 'i915 binds the vGPU; /dev/dri/card0 and /dev/fb0 exist',
          script: checkScript('i915/probe.sh'),
        },
        {
          name: 'i915 probes with 0 *ERROR* lines and 0 WARNING traces, VBT found, GT not wedged',
          host: probeDmesg,
        },
        { name: 'every register i915 touches is in the MMIO table', host: unknownRegisters },
        {
          name: 'the console text and a known image in /dev/fb0 appear pixel-exact in the saved primary plane',
          script: checkScript('i915/frame.sh'),
          host: frameMatches,
        },
        {
          name: 'requests complete on every engine: the stored values are right, no hang, no reset',
          script: checkScript('i915/exec.sh'),
          host: requestsComplete,
        },
        {
          name: "a request the vGPU's audit refuses is the guest's error: i915 resets rcs0, the next request completes",
          script: checkScript('i915/hang.sh'),
          host: refusedIsGuestError,
        },
      ],
    },
  ],
});
