/**
 * Two GVT-g vGPUs of one host GPU, in two QEMUs at once: one `vfiokit serve` creates both
 * i915-GVTg_V5_4 vGPUs on its one parent (each on its own socket), guest a's QEMU attaches one
 * and guest b's the other, and Debian's i915 drives each. Each guest writes its own pattern
 * into its framebuffer and the tail of its aperture slice and its own values into a fence
 * register and a plane register; once both have written (they meet through the host), each
 * reads back only its own. The host checks the other side: PVINFO gives the two disjoint
 * shares of the GPU, and the frames the server saved from each vGPU's memory hold that guest's
 * pattern and not the other's. Then guest a powers off, the server resets its vGPU, and guest
 * b finds all of its state intact.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CheckRecord, factsOf, parseResults } from '../run/results.js';
import {
  checkScript,
  defineSuite,
  type ExtraGuest,
  type HostCheckContext,
  type ServedDevice,
} from '../suite.js';
import { decodePng } from './i915.js';

/** The image each guest writes: WIDTH x ROWS pixels of XRGB8888 at row ROW of its framebuffer. */
const WIDTH = 1920;
const ROWS = 32;
const ROW = 200;
/** Bytes at the end of each mappable slice the guest fills through BAR2. */
const APERTURE_BYTES = 64 * 1024;
/** FENCE_REG_GEN6_LO(3) and PLANE_KEYVAL of plane 3, pipe C (i915 uses neither for a linear fbcon). */
const FENCE_LO = 0x100000 + 8 * 3;
const KEYVAL_REG = 0x70180 + 0x2000 + 0x200 + 0x14;
const ROLES = {
  a: { xor: 0, fence: 0xa0a0a001, keyval: 0x00a1a2a3, seed: 0xa },
  b: { xor: 0x5a5a5a, fence: 0xb0b0b001, keyval: 0x00b1b2b3, seed: 0xb },
} as const;
type Role = keyof typeof ROLES;

const pixel = (role: Role, x: number, y: number) =>
  ((((x * 5 + y * 11) & 0xff) | (((x ^ (y * 3)) & 0xff) << 8) | (((x + 7 * y) & 0xff) << 16)) ^
    ROLES[role].xor) >>>
  0;

function pattern(role: Role): Uint8Array {
  const out = new Uint8Array(WIDTH * ROWS * 4);
  const dv = new DataView(out.buffer);
  for (let y = 0; y < ROWS; y++)
    for (let x = 0; x < WIDTH; x++) dv.setUint32(4 * (y * WIDTH + x), pixel(role, x, y), true);
  return out;
}

const vgpus: ServedDevice[] = (['a', 'b'] as const).map((id, i) => ({
  id,
  device: '@vfiokit/gvt-g:i915-GVTg_V5_4',
  addr: `0${5 + i}.0`,
  server: 'gpu',
  serveArgs: ['--save-frames', '{artifacts}/frames'],
}));

const CHECKS = {
  probe: 'i915 drives each guest’s vGPU; neither guest has the other’s',
  write:
    'each guest writes its pattern into its framebuffer and aperture, its values into a fence and a plane register',
  verify: 'each reads back only its own framebuffer, aperture, fence and plane values, none of the other’s',
  reset:
    'a reset of one vGPU (its QEMU leaves) leaves the other’s framebuffer, aperture and registers intact',
} as const;
const ORDER = [CHECKS.probe, CHECKS.write, CHECKS.verify, CHECKS.reset];

async function until<T>(what: string, get: () => T | undefined, timeoutSec: number): Promise<T> {
  const end = Date.now() + timeoutSec * 1000;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutSec} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Guest b's record of a check, once b finished it. */
function companionCheck(b: ExtraGuest, name: string, timeoutSec = 300): Promise<CheckRecord> {
  const key = String(ORDER.indexOf(name as (typeof ORDER)[number]) + 1).padStart(2, '0');
  return until(
    `guest b finishes "${name}"`,
    () => {
      const rec = parseResults(b.results()).checks.get(key);
      return rec?.status !== undefined ? rec : undefined;
    },
    timeoutSec,
  );
}

/** Guest b's part of a check passed; its facts. */
async function bPassed(ctx: HostCheckContext, name: string): Promise<Record<string, string>> {
  const rec = await companionCheck(ctx.companion('b'), name);
  if (rec.status !== 0)
    throw new Error(
      `guest b: ${rec.lines.findLast((l) => l.startsWith('FAIL: '))?.slice(6) ?? `exit status ${rec.status}`}\n${rec.lines.join('\n')}`,
    );
  return factsOf(rec.lines);
}

/** PVINFO: the two vGPUs' ballooning ranges (mappable and hidden GM) do not overlap. */
async function disjointShares(ctx: HostCheckContext) {
  const a = ctx.guest?.facts ?? {};
  const b = await bPassed(ctx, CHECKS.probe);
  const range = (f: Record<string, string>, k: string) => [Number(f[`${k}_base`]), Number(f[`${k}_size`])];
  const overlap = ([b1, s1]: number[], [b2, s2]: number[]) => b1 < b2 + s2 && b2 < b1 + s1;
  const problems: string[] = [];
  for (const k of ['mappable', 'nonmappable']) {
    const [ra, rb] = [range(a, k), range(b, k)];
    if (!(ra[1] > 0 && rb[1] > 0)) problems.push(`${k}: a PVINFO range is empty`);
    else if (overlap(ra, rb))
      problems.push(
        `${k}: a's 0x${ra[0].toString(16)}+0x${ra[1].toString(16)} overlaps b's 0x${rb[0].toString(16)}+0x${rb[1].toString(16)}`,
      );
  }
  if (a.vgt_id === b.vgt_id) problems.push(`both vGPUs have vgt_id ${a.vgt_id}`);
  if (a.me !== 'a' || b.me !== 'b') problems.push(`the guests are ${a.me} and ${b.me}, not a and b`);
  const note = `a: mappable ${a.mappable_base}+${a.mappable_size}, hidden ${a.nonmappable_base}+${a.nonmappable_size}, vgt_id ${a.vgt_id}; b: mappable ${b.mappable_base}+${b.mappable_size}, hidden ${b.nonmappable_base}+${b.nonmappable_size}, vgt_id ${b.vgt_id}`;
  return problems.length > 0 ? { fail: problems.join('; '), note } : { note };
}

/** The UUID `vfiokit serve` created for a device, from its "serving" line. */
function uuidOf(ctx: HostCheckContext, id: string): string {
  const socket = ctx.socket(id);
  const line = ctx
    .serverLog(id)
    .split('\n')
    .find((l) => l.endsWith(` on ${socket}`));
  const uuid = /serving ([0-9a-f-]{36}) on /.exec(line ?? '')?.[1];
  if (!uuid) throw new Error(`the server log names no device on ${socket}`);
  return uuid;
}

/**
 * The frame the server saved from a vGPU's memory: the rows hold this guest's pattern, and not
 * one pixel of the other's.
 */
function frameHolds(ctx: HostCheckContext, role: Role): string {
  const other: Role = role === 'a' ? 'b' : 'a';
  const file = join(ctx.artifacts, 'frames', `${uuidOf(ctx, role)}.png`);
  const frame = decodePng(readFileSync(file));
  if (frame.width !== WIDTH) throw new Error(`${role}'s saved plane is ${frame.width} wide, not ${WIDTH}`);
  let own = 0;
  let theirs = 0;
  for (let y = 0; y < ROWS; y++)
    for (let x = 0; x < WIDTH; x++) {
      const o = ((ROW + y) * frame.width + x) * 3;
      const got = (frame.rgb[o] << 16) | (frame.rgb[o + 1] << 8) | frame.rgb[o + 2];
      if (got === (pixel(role, x, y) & 0xffffff)) own++;
      else if (got === (pixel(other, x, y) & 0xffffff)) theirs++;
    }
  if (theirs > 0)
    throw new Error(`${role}'s frame on the server holds ${theirs} pixels of ${other}'s pattern`);
  if (own !== WIDTH * ROWS)
    throw new Error(`${role}'s frame on the server holds ${own} of ${WIDTH * ROWS} pixels of its pattern`);
  return `${role}: the server's frame of its vGPU holds its ${own} pattern pixels, none of ${other}'s`;
}

/** Session ends of device `id` in the server log (its lines start with its UUID). */
function resets(ctx: HostCheckContext, id: string): number {
  const uuid = uuidOf(ctx, id);
  return ctx
    .serverLog(id)
    .split('\n')
    .filter((l) => l.startsWith(`vfiokit serve: ${uuid}: session ended, device reset`)).length;
}

/**
 * Neither vGPU's server lines hold an error, an untracked register or a refused workload (the
 * vGPU beside another runs i915's requests as one alone does); neither guest's i915 complained.
 */
function cleanRun(ctx: HostCheckContext, bDmesg: string) {
  const problems: string[] = [];
  const notes: string[] = [];
  for (const l of ctx.serverLog('a').split('\n')) {
    if (/: error: |untracked register|scan workload error/.test(l)) problems.push(`server: ${l.trim()}`);
    const counts = /workloads by engine: (.*)$/.exec(l)?.[1];
    if (counts === undefined) continue;
    notes.push(l.replace(/^vfiokit serve: /, '').trim());
    if (/[1-9]\d* refused/.test(counts)) problems.push(`server: ${l.trim()}`);
  }
  if (notes.length !== 2)
    problems.push(`the server printed workload counts for ${notes.length} vGPUs, not 2`);
  for (const [who, dmesg] of [
    ['a', ctx.dmesg],
    ['b', bDmesg],
  ] as const) {
    if (dmesg === '') problems.push(`${who}: no dmesg`);
    const errors = dmesg.split('\n').filter((l) => l.includes('*ERROR*') || /WARNING: CPU: \d+ PID/.test(l));
    if (errors.length > 0)
      problems.push(`${who}: ${errors.length} i915 errors or warnings, first: ${errors[0].trim()}`);
    if (/wedged|GPU HANG|reset request timed out/i.test(dmesg))
      problems.push(`${who}: the GT hung or was wedged`);
  }
  return { problems: problems.slice(0, 10), notes };
}

export default defineSuite({
  name: 'gvt-g-isolation',
  boots: [
    {
      name: 'two-vgpus',
      devices: vgpus,
      attach: ['a'],
      companions: [{ name: 'b', attach: ['b'] }],
      modules: ['i915'],
      append: ['log_buf_len=4M'],
      files: [
        { path: '/vfk/iso/pattern-a.bin', data: pattern('a') },
        { path: '/vfk/iso/pattern-b.bin', data: pattern('b') },
        { path: '/vfk/iso/common.sh', data: checkScript('gvt-g-isolation/common.sh') },
      ],
      env: {
        ROW: String(ROW),
        ROWS: String(ROWS),
        APERTURE_BYTES: String(APERTURE_BYTES),
        FENCE_LO: `0x${FENCE_LO.toString(16)}`,
        KEYVAL_REG: `0x${KEYVAL_REG.toString(16)}`,
        ...Object.fromEntries(
          (Object.keys(ROLES) as Role[]).flatMap((r) => [
            [`FENCE_${r}`, `0x${ROLES[r].fence.toString(16)}`],
            [`KEYVAL_${r}`, `0x${ROLES[r].keyval.toString(16)}`],
            [`SEED_${r}`, String(ROLES[r].seed)],
          ]),
        ),
      },
      checks: [
        { name: CHECKS.probe, script: checkScript('gvt-g-isolation/probe.sh'), host: disjointShares },
        {
          name: CHECKS.write,
          script: checkScript('gvt-g-isolation/write.sh'),
          timeoutSec: 120,
          host: async (ctx) => {
            const b = await bPassed(ctx, CHECKS.write);
            return {
              note: `a: fence ${ctx.guest?.facts.fence}, key ${ctx.guest?.facts.keyval}; b: fence ${b.fence}, key ${b.keyval}`,
            };
          },
        },
        {
          name: CHECKS.verify,
          script: checkScript('gvt-g-isolation/verify.sh'),
          timeoutSec: 120,
          host: async (ctx) => {
            await bPassed(ctx, CHECKS.verify);
            return { note: [frameHolds(ctx, 'a'), frameHolds(ctx, 'b')].join('\n') };
          },
        },
        {
          name: CHECKS.reset,
          script: checkScript('gvt-g-isolation/after-reset.sh'),
          timeoutSec: 180,
          host: async (ctx) => {
            // Guest a has powered off; its session's end resets vGPU a on the server.
            await until('the server resets vGPU a', () => (resets(ctx, 'a') >= 1 ? true : undefined), 30);
            if (resets(ctx, 'b') !== 0) return { fail: 'vGPU b was reset too: its session ended with a’s' };
            ctx.release('a-reset');
            await bPassed(ctx, CHECKS.reset);
            return { note: frameHolds(ctx, 'b') };
          },
        },
        {
          name: 'both vGPUs run i915’s requests: no workload refused, no server error, no untracked register, no i915 error',
          host: async (ctx) => {
            const b = ctx.companion('b');
            const exit = await b.done;
            // The server prints b's session summary (and its workload counts) once b's QEMU left.
            await until('the server ends b’s session', () => (resets(ctx, 'b') >= 1 ? true : undefined), 30);
            const parsed = parseResults(b.results());
            const { problems, notes } = cleanRun(ctx, parsed.dmesg.join('\n'));
            if (!parsed.done) problems.push(`guest b did not finish (QEMU ${exit.signal ?? exit.code})`);
            const note = notes.join('\n');
            return problems.length > 0 ? { fail: problems.join('\n'), note } : { note };
          },
        },
      ],
    },
  ],
});
