/**
 * The trapped-MMIO cost of i915's init sequence on a GVT-g vGPU: every BAR0 access Debian's
 * i915 makes while it binds an i915-GVTg_V5_4 vGPU in QEMU 10.2 (bench/fixtures/i915-bar0.trace,
 * recorded by the guest suite `i915` from QEMU's vfio_region_read/write trace events, see
 * bench/record-i915-trace.ts), replayed through the reference VMM's guest MMIO path against
 *   (1) the vGPU in process (VMM → core DeviceFile → plugin), the baseline, and
 *   (2) the vGPU served by `vfiokit serve` in another process (VMM → vfio-user client → socket →
 *       server → core → plugin), as QEMU reaches it.
 * One sample is one boot: VFIO_DEVICE_RESET, then the whole sequence in order. Figures: time per
 * boot, accesses per second, and (2) / (1); target: an access of the sequence over vfio-user
 * costs at most 1.5× one plain register read over vfio-user measured in the same run (the
 * vGPU's own work stays small beside the transport). The boots and the reads take turns, one
 * sample of each per round, so both see the same load. Each of the sequence's 8-byte accesses
 * (PTE writes) is replayed as one 8-byte guest access (GuestView.mmioWrite64), which the vGPU
 * gets as one 8-byte region access, one request over vfio-user, as QEMU makes it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger, SharedMemory, VfioDevice } from '@vfiokit/core';
import gvtg from '@vfiokit/gvt-g';
import { allocateMemfdMemory, connectVfioUser, createPluginHostForServer } from '@vfiokit/vfio-user';
import { type BenchFigure, report, target } from '../../../scripts/bench-report.js';
import { Machine } from '../src/machine/index.js';

const APP_DIR = fileURLToPath(new URL('..', import.meta.url));
const TYPE = 'i915-GVTg_V5_4';
const UUID = '96d72cb5-21cc-5ad7-953a-685f2114e7ac';
/** The guest suite's QEMU guest has 512 MiB: the GGTT entries i915 writes point inside it. */
const RAM = 512 * 1024 * 1024;
const SLOT = { bus: 0, device: 5, function: 0 };
/** Boots measured per figure, after WARMUP rounds. */
const BOOTS = 15;
const WARMUP = 2;

interface Access {
  readonly write: boolean;
  readonly offset: number;
  readonly size: 1 | 2 | 4 | 8;
  readonly value: bigint;
}

/** `r <offset> <size>` / `w <offset> <size> <value>` (hex offset and value), `#` comments. */
function loadTrace(path: string): Access[] {
  const out: Access[] = [];
  for (const [n, line] of readFileSync(path, 'utf8').split('\n').entries()) {
    if (line === '' || line.startsWith('#')) continue;
    const [op, off, size, value] = line.split(' ');
    if ((op !== 'r' && op !== 'w') || !['1', '2', '4', '8'].includes(size))
      throw new Error(`${path}:${n + 1}: not an access: ${line}`);
    out.push({
      write: op === 'w',
      offset: Number.parseInt(off, 16),
      size: Number(size) as Access['size'],
      value: op === 'w' ? BigInt(`0x${value}`) : 0n,
    });
  }
  return out;
}

/** A figure from its samples (ns each), as scripts/bench-report.ts reports tinybench's. */
function figureOf(name: string, ns: readonly number[]): BenchFigure {
  const sorted = [...ns].sort((a, b) => a - b);
  const mean = ns.reduce((a, b) => a + b, 0) / ns.length;
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    name,
    opsPerSec: Math.round(1e9 / mean),
    meanNs: round(mean),
    p50Ns: round(at(0.5)),
    p99Ns: round(at(0.99)),
    worstNs: sorted[sorted.length - 1],
    samples: ns.length,
  };
}

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A machine with `device` at 00:05.0, probed: the BAR0 address and a reset of the device. */
async function machineWith(device: VfioDevice, allocateRam?: (size: number) => SharedMemory) {
  const m = new Machine({ ramSize: RAM, log: quiet, ...(allocateRam ? { allocateRam } : {}) });
  m.attach({ device, slot: SLOT, label: 'vgpu' });
  const found = await m.probe();
  const bar0 = found.find((d) => d.address.device === SLOT.device)?.bars.find((b) => b.index === 0)?.address;
  if (bar0 === undefined) throw new Error('the probe found no BAR0 on the vGPU');
  const fn = m.functionAt(SLOT);
  if (!fn) throw new Error('the vGPU is not attached');
  // A reboot: the device is reset, then the firmware puts the BARs back and enables decoding.
  const header = [0x10, 0x14, 0x18, 0x1c, 0x20, 0x24].map((at) => ({
    at,
    value: m.guest.configRead(SLOT, at, 4),
  }));
  const command = m.guest.configRead(SLOT, 0x04, 2);
  const reset = () => {
    fn.file.reset();
    for (const { at, value } of header) m.guest.configWrite(SLOT, at, 4, value);
    m.guest.configWrite(SLOT, 0x04, 2, command);
  };
  return { machine: m, bar0, reset };
}

function replay(machine: Machine, bar0: number, trace: readonly Access[]): number {
  const g = machine.guest;
  let sink = 0;
  for (const a of trace) {
    if (a.write) {
      if (a.size === 8) g.mmioWrite64(bar0 + a.offset, a.value);
      else g.mmioWrite(bar0 + a.offset, a.size, Number(a.value));
    } else if (a.size === 8) sink ^= Number(g.mmioRead64(bar0 + a.offset) & 0xffffffffn);
    else sink ^= g.mmioRead(bar0 + a.offset, a.size);
  }
  return sink;
}

/** `vfiokit serve` of the vGPU in another process, as the guest suite runs it for QEMU. */
async function startServer(dir: string): Promise<{ socket: string; stop(): Promise<void> }> {
  const socket = join(dir, 'vgpu.sock');
  const tsx = createRequire(join(APP_DIR, 'package.json')).resolve('tsx');
  const child = spawn(
    process.execPath,
    [
      '--conditions=@vfiokit/source',
      '--import',
      tsx,
      join(APP_DIR, 'src', 'cli.ts'),
      'serve',
      '--socket',
      socket,
      '--device',
      `@vfiokit/gvt-g:${TYPE}:${UUID}`,
    ],
    { cwd: APP_DIR, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const started = Date.now();
  while (!out.includes('serving ')) {
    if (child.exitCode !== null) throw new Error(`vfiokit serve exited: ${out}`);
    if (Date.now() - started > 60_000) {
      child.kill('SIGKILL');
      throw new Error(`vfiokit serve did not start within 60 s: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    socket,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const trace = loadTrace(join(APP_DIR, 'bench', 'fixtures', 'i915-bar0.trace'));
const reads = trace.filter((a) => !a.write).length;
/** Region accesses (vfio-user requests) per boot: one per guest access, 8-byte ones too. */
const requests = trace.length;

// (1) in process: the plugin probed with the server's own host (memfd device memory).
const [parent] = gvtg.probe(createPluginHostForServer({ log: quiet }));
const local = await machineWith(parent.create(TYPE, UUID).device);

// (2) served: guest RAM in a memfd, DMA_MAPped to the server when the device opens.
const dir = mkdtempSync(join(tmpdir(), 'vfiokit-bench-i915-'));
const server = await startServer(dir);
const ram = allocateMemfdMemory('vfiokit-guest-ram', RAM);
const client = await connectVfioUser(server.socket, { guestMemory: ram, log: quiet });
const remote = await machineWith(client, () => ram);

let sink = 0;
const LOCAL = `i915 init BAR0 sequence (${trace.length} accesses), in process: VMM → core → plugin`;
const REMOTE = `i915 init BAR0 sequence (${trace.length} accesses), over vfio-user: VMM → client → socket → server → plugin`;
// The transport's floor: one register read (PVINFO's magic, a plain vreg read) repeated.
const PVINFO_MAGIC = 0x78000;
const SINGLE = 1000;
const LOCAL_READ = `BAR0 register read ×${SINGLE}, in process`;
const REMOTE_READ = `BAR0 register read ×${SINGLE}, over vfio-user`;
const runs: [string, () => void][] = [
  [
    LOCAL,
    () => {
      local.reset();
      sink ^= replay(local.machine, local.bar0, trace);
    },
  ],
  [
    LOCAL_READ,
    () => {
      for (let i = 0; i < SINGLE; i++) sink ^= local.machine.guest.mmioRead(local.bar0 + PVINFO_MAGIC, 4);
    },
  ],
  [
    REMOTE,
    () => {
      remote.reset();
      sink ^= replay(remote.machine, remote.bar0, trace);
    },
  ],
  [
    REMOTE_READ,
    () => {
      for (let i = 0; i < SINGLE; i++) sink ^= remote.machine.guest.mmioRead(remote.bar0 + PVINFO_MAGIC, 4);
    },
  ],
];
// A sample is a whole boot (~0.01 s in process, ~0.15 s over the socket), a fixed number of them.
// The four runs take turns, a sample of each per round, so that a figure and its baseline are
// measured under the same load of the machine (which moves within seconds on a shared host).
const samples = new Map<string, number[]>(runs.map(([name]) => [name, []]));
for (let round = -WARMUP; round < BOOTS; round++) {
  for (const [name, run] of runs) {
    const start = process.hrtime.bigint();
    run();
    const ns = Number(process.hrtime.bigint() - start);
    if (round >= 0) samples.get(name)?.push(ns);
  }
}
const figures = new Map<string, BenchFigure>();
for (const [name, ns] of samples) figures.set(name, figureOf(name, ns));
local.machine.close();
remote.machine.close();
client.disconnect();
await server.stop();
rmSync(dir, { recursive: true, force: true });

const mean = (name: string) => {
  const f = figures.get(name);
  if (!f) throw new Error(`missing figure ${name}`);
  return f.meanNs;
};
const perBoot = (name: string) => ({
  msPerBoot: Math.round(mean(name) / 1e4) / 100,
  accessesPerSecond: Math.round(trace.length / (mean(name) / 1e9)),
  nsPerAccess: Math.round(mean(name) / trace.length),
});
const perRead = (name: string) => Math.round(mean(name) / SINGLE);
if (sink === 0.5) process.stdout.write('');
report(
  APP_DIR,
  'i915-mmio',
  figures,
  [
    target(
      "an access of i915's init sequence over vfio-user / one plain register read over vfio-user (the vGPU's own work beside the transport), at most 1.5",
      mean(REMOTE) / trace.length / (mean(REMOTE_READ) / SINGLE),
      { max: 1.5 },
      // per access: the boot's mean over its accesses, the batch's mean over its reads
      {
        figure: REMOTE,
        baseline: REMOTE_READ,
        field: 'meanNs',
        figureNs: mean(REMOTE) / trace.length,
        baselineNs: mean(REMOTE_READ) / SINGLE,
      },
    ),
  ],
  {
    trace: { accesses: trace.length, reads, writes: trace.length - reads, requestsPerBoot: requests },
    inProcess: { ...perBoot(LOCAL), nsPerRegisterRead: perRead(LOCAL_READ) },
    vfioUser: { ...perBoot(REMOTE), nsPerRegisterRead: perRead(REMOTE_READ) },
    /** The price of serving the vGPU out of process for one boot, same run. */
    vfioUserOverInProcess: Math.round((mean(REMOTE) / mean(LOCAL)) * 10) / 10,
  },
);
