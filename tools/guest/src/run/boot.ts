/**
 * One boot: serve its devices, build its initramfs, run QEMU until the guest powers off (or
 * the deadline), read the results UART back, run the host parts while the servers still
 * serve, stop the servers, and keep everything for review in reports/guest/<suite>/<boot>/:
 * console.log, results.log, dmesg.txt, qemu.log, qemu-trace.log, server-<id>.log.
 *
 * A boot with companions starts their QEMUs with its own (each attached to its devices) and a
 * rendezvous socket for all of them (run/rendezvous.ts); devices that share a `server` are
 * served by one `vfiokit serve`.
 *
 * Besides the suite's checks every boot has two of its own: QEMU attached the devices and the
 * guest reached /init (first), and every server outlived the guest and stopped cleanly (last).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GuestKernel } from '../assets/kernel.js';
import type { Userland } from '../assets/userland.js';
import { buildInitramfs } from '../initramfs/build.js';
import type { CaseResult } from '../report/junit.js';
import {
  type ExtraGuest,
  type GuestBoot,
  type GuestCheck,
  type GuestCheckOutput,
  type GuestSuite,
  guestAddress,
  type HostCheckContext,
  type ServedDevice,
} from '../suite.js';
import { BASE_APPEND, type QemuRun, readOutput, startQemu } from './qemu.js';
import { type Rendezvous, startRendezvous } from './rendezvous.js';
import { type CheckRecord, factsOf, parseResults } from './results.js';
import { type ServerProcess, startServer } from './serve.js';

export interface BootContext {
  readonly root: string;
  readonly cacheDir: string;
  readonly qemu: string;
  readonly kernel: GuestKernel;
  readonly userland: Userland;
  readonly guestDir: string;
  readonly reportsDir: string;
  readonly log: (line: string) => void;
}

export const ATTACH_CHECK = 'QEMU attaches the served devices and the guest reaches /init';
export const SERVER_CHECK = 'every server outlives the guest and stops cleanly';
const DEFAULT_CHECK_TIMEOUT = 60;

const tail = (text: string, n: number) => text.trimEnd().split('\n').slice(-n).join('\n');

export async function runBoot(suite: GuestSuite, boot: GuestBoot, ctx: BootContext): Promise<CaseResult[]> {
  const started = Date.now();
  const missing = boot.unavailable?.(ctx.root);
  if (missing !== undefined)
    return [ATTACH_CHECK, ...boot.checks.map((c) => c.name), SERVER_CHECK].map((name) => ({
      suite: suite.name,
      boot: boot.name,
      name,
      status: 'skipped' as const,
      message: missing,
      output: '',
      ms: 0,
    }));
  const art = join(ctx.reportsDir, suite.name, boot.name);
  mkdirSync(art, { recursive: true });
  // Socket paths must fit sun_path (108 bytes): a short private directory, not the report folder.
  const work = mkdtempSync(join(tmpdir(), 'vfkg-'));
  const results: CaseResult[] = [];
  const record = (
    name: string,
    status: CaseResult['status'],
    message: string | undefined,
    output: string,
    ms = 0,
  ) => results.push({ suite: suite.name, boot: boot.name, name, status, message, output, ms });
  const guestChecks = boot.checks.filter((c) => c.script !== undefined);
  const servers: ServerProcess[] = [];
  /** QEMUs host checks started (startGuest) and companions: killed and waited for before the servers stop. */
  const extras: QemuRun[] = [];
  let rendezvous: Rendezvous | undefined;
  try {
    const env: Record<string, string> = { ...boot.env, VFK_SUITE: suite.name, VFK_BOOT: boot.name };
    for (const d of boot.devices) {
      env[`VFK_DEV_${d.id}`] = guestAddress(d.addr);
      env[`VFK_SPEC_${d.id}`] = d.device;
    }
    const initrd = join(work, 'initramfs.cpio');
    const prepared = boot.prepare
      ? await boot.prepare({
          cacheDir: ctx.cacheDir,
          workDir: work,
          root: ctx.root,
          kernelRelease: ctx.kernel.release,
          log: ctx.log,
        })
      : [];
    const [image] = await Promise.all([
      buildInitramfs({
        kernel: ctx.kernel,
        userland: ctx.userland,
        guestDir: ctx.guestDir,
        env,
        checks: guestChecks.map((c) => ({
          script: c.script!,
          timeoutSec: c.timeoutSec ?? DEFAULT_CHECK_TIMEOUT,
        })),
        modules: boot.modules ?? [],
        files: [...(boot.files ?? []), ...prepared],
      }),
      ...serverGroups(boot).map(async ({ name, devices }) => {
        servers.push(
          await startServer({
            root: ctx.root,
            devices: devices.map((device) => ({ device, socket: join(work, `${device.id}.sock`) })),
            logFile: join(art, `server-${name}.log`),
            artifacts: art,
          }),
        );
      }),
    ]);
    if (boot.companions?.length) rendezvous = await startRendezvous(join(work, 'sync.sock'));
    writeFileSync(initrd, image as Buffer);
    const serverOf = (id: string) => {
      const s = servers.find((x) => x.devices.some((d) => d.device.id === id));
      if (!s) throw new Error(`boot ${boot.name} has no device "${id}"`);
      return s;
    };
    const socketOf = (id: string) => serverOf(id).devices.find((d) => d.device.id === id)!.socket;

    const files = {
      console: join(art, 'console.log'),
      results: join(art, 'results.log'),
      trace: join(art, 'qemu-trace.log'),
    };
    const timeoutSec =
      boot.timeoutSec ?? guestChecks.reduce((t, c) => t + (c.timeoutSec ?? DEFAULT_CHECK_TIMEOUT), 0) + 90;
    const qemuStart = Date.now();
    const qemuOptions = (out: typeof files, attach = boot.attach ?? boot.devices.map((d) => d.id)) => ({
      qemu: ctx.qemu,
      kernel: ctx.kernel.vmlinuz,
      initrd,
      append: [...BASE_APPEND, ...(boot.append ?? [])],
      memoryMiB: boot.memoryMiB ?? 512,
      smp: boot.smp ?? 1,
      devices: boot.devices
        .filter((d) => attach.includes(d.id))
        .map((d) => ({
          socket: socketOf(d.id),
          addr: d.addr,
          ...(d.qemuProperties ? { properties: d.qemuProperties } : {}),
        })),
      consoleFile: out.console,
      resultsFile: out.results,
      traceEvents: boot.qemuTrace ?? [],
      traceFile: out.trace,
      extra: boot.qemuArgs ?? [],
      ...(rendezvous ? { syncSocket: rendezvous.socketPath } : {}),
    });
    /** Start another QEMU of this boot; it is killed (if still up) when the boot ends. */
    const startExtra = (name: string, timeout: number, attach?: readonly string[]): ExtraGuest => {
      const out = {
        console: join(art, `${name}-console.log`),
        results: join(art, `${name}-results.log`),
        trace: join(art, `${name}-qemu-trace.log`),
      };
      const extra = startQemu(qemuOptions(out, attach), timeout * 1000);
      extras.push(extra);
      rendezvous?.guestStarted();
      void extra.done.then((e) => {
        rendezvous?.guestExited();
        writeFileSync(join(art, `${name}-qemu.log`), e.stderr);
      });
      return {
        pid: extra.pid,
        done: extra.done,
        kill: extra.kill,
        results: () => readOutput(out.results),
        console: () => readOutput(out.console),
      };
    };
    const run = startQemu(qemuOptions(files), timeoutSec * 1000);
    rendezvous?.guestStarted();
    void run.done.then(() => rendezvous?.guestExited());
    const companions = new Map(
      (boot.companions ?? []).map((c) => [c.name, startExtra(c.name, timeoutSec, c.attach)] as const),
    );
    const exit = await run.done;
    const qemuMs = Date.now() - qemuStart;
    // The server prints its session's summary (trapped accesses by region) once QEMU's socket closed.
    await Promise.all(
      servers.map((s) => s.waitForLog(/^vfiokit serve: (?:[0-9a-f-]{36}: )?session ended/m, 5000)),
    );
    writeFileSync(join(art, 'qemu.log'), exit.stderr);
    const consoleText = readOutput(files.console);
    const parsed = parseResults(readOutput(files.results));
    const dmesg = parsed.dmesg.join('\n');
    writeFileSync(
      join(art, 'dmesg.txt'),
      dmesg === '' ? '(the guest did not reach its dmesg dump)\n' : `${dmesg}\n`,
    );
    const how = exit.timedOut
      ? `QEMU was killed after ${timeoutSec} s`
      : `QEMU exited with ${exit.signal ?? exit.code}`;

    // The boot itself.
    if (parsed.booted !== undefined) {
      const mods = [...parsed.modules].map(([m, ok]) => `${m}: ${ok ? 'loaded' : 'FAILED'}`);
      const failedMods = [...parsed.modules].filter(([, ok]) => !ok).map(([m]) => m);
      record(
        ATTACH_CHECK,
        failedMods.length > 0 ? 'failed' : 'passed',
        failedMods.length > 0 ? `modprobe failed for ${failedMods.join(', ')}` : undefined,
        [`kernel ${parsed.booted}`, ...mods, exit.stderr.trim()].filter((l) => l !== '').join('\n'),
      );
    } else {
      record(
        ATTACH_CHECK,
        'failed',
        `the guest never reached /init (${how}).\nQEMU said:\n${tail(exit.stderr, 20) || '(nothing)'}\nconsole:\n${tail(consoleText, 30)}`,
        '',
        qemuMs,
      );
    }

    const outputs = new Map<GuestCheck, GuestCheckOutput>();
    guestChecks.forEach((c, i) => {
      const rec: CheckRecord | undefined = parsed.checks.get(String(i + 1).padStart(2, '0'));
      outputs.set(c, {
        lines: rec?.lines ?? [],
        status: rec?.status,
        ms: rec?.ms,
        facts: factsOf(rec?.lines ?? []),
      });
    });
    const qemuLog = exit.stderr;
    const qemuTrace = readOutput(files.trace);
    for (const check of boot.checks) {
      const g = outputs.get(check);
      const text = g ? g.lines.join('\n') : '';
      if (g) {
        if (g.status === undefined) {
          const never = parsed.checks.size === 0 && parsed.booted === undefined;
          record(
            check.name,
            'failed',
            never
              ? 'the guest never ran it: it did not boot'
              : `the guest did not finish it (${how}); console:\n${tail(consoleText, 20)}`,
            text,
          );
          continue;
        }
        if (g.status === 77) {
          record(check.name, 'skipped', g.lines.at(-1)?.replace(/^SKIP: /, '') ?? 'skipped', text, g.ms);
          continue;
        }
        if (g.status !== 0) {
          const limit = check.timeoutSec ?? DEFAULT_CHECK_TIMEOUT;
          const why =
            g.status === 137 && (g.ms ?? 0) >= limit * 1000
              ? `timed out after ${limit} s`
              : (g.lines.findLast((l) => l.startsWith('FAIL: '))?.slice(6) ?? `exit status ${g.status}`);
          record(check.name, 'failed', why, text, g.ms);
          continue;
        }
      }
      if (!check.host) {
        record(check.name, 'passed', undefined, text, g?.ms ?? 0);
        continue;
      }
      const hostCtx: HostCheckContext = {
        boot,
        guest: g,
        output: (name) => {
          const c = boot.checks.find((x) => x.name === name);
          return c ? outputs.get(c) : undefined;
        },
        serverLog: (id) => serverOf(id).log(),
        socket: socketOf,
        companion: (name) => {
          const c = companions.get(name);
          if (!c) throw new Error(`boot ${boot.name} has no companion "${name}"`);
          return c;
        },
        release: (name) => {
          if (!rendezvous) throw new Error(`boot ${boot.name} has no companions to release "${name}" to`);
          rendezvous.release(name);
        },
        qemuLog,
        qemuTrace,
        console: consoleText,
        dmesg,
        root: ctx.root,
        artifacts: art,
        reportsDir: ctx.reportsDir,
        startGuest: (name, opts) => startExtra(name, opts?.timeoutSec ?? timeoutSec),
      };
      const t0 = Date.now();
      try {
        const r = await check.host(hostCtx);
        const out = [text, r?.note ?? ''].filter((s) => s !== '').join('\n');
        if (r?.fail !== undefined) record(check.name, 'failed', r.fail, out, (g?.ms ?? 0) + Date.now() - t0);
        else if (r?.skip !== undefined)
          record(check.name, 'skipped', r.skip, out, (g?.ms ?? 0) + Date.now() - t0);
        else record(check.name, 'passed', undefined, out, (g?.ms ?? 0) + Date.now() - t0);
      } catch (err) {
        record(check.name, 'failed', (err as Error).message, text, (g?.ms ?? 0) + Date.now() - t0);
      }
    }

    for (const q of extras) q.kill();
    await Promise.all(extras.splice(0).map((q) => q.done));
    // The servers: none may have died, each stops on SIGTERM with status 0.
    const early = servers.filter((s) => s.exited() !== undefined);
    const stops = await Promise.all(servers.splice(0).map(async (s) => ({ s, exit: await s.stop() })));
    const bad = stops.filter(({ s, exit: e }) => early.includes(s) || e.code !== 0);
    record(
      SERVER_CHECK,
      bad.length === 0 ? 'passed' : 'failed',
      bad.length === 0
        ? undefined
        : bad
            .map(
              ({ s, exit: e }) =>
                `${s.devices.map((d) => `${d.device.id} (${d.device.device})`).join(', ')} ${early.includes(s) ? 'died during the boot' : `stopped with ${e.signal ?? e.code}`}:\n${tail(s.log(), 15)}`,
            )
            .join('\n'),
      stops.map(({ s }) => `${s.devices.map((d) => d.device.id).join(', ')}: ${tail(s.log(), 3)}`).join('\n'),
    );
    ctx.log(
      `${suite.name}/${boot.name}: ${results.filter((r) => r.status === 'passed').length}/${results.length} passed, QEMU ran ${(qemuMs / 1000).toFixed(1)} s`,
    );
  } catch (err) {
    const names = [ATTACH_CHECK, ...boot.checks.map((c) => c.name), SERVER_CHECK];
    for (const n of names)
      if (!results.some((r) => r.name === n))
        record(n, 'failed', `the boot could not run: ${(err as Error).message}`, '');
  } finally {
    for (const q of extras) q.kill();
    await Promise.all(extras.map((q) => q.done));
    await Promise.all(servers.map((s) => s.stop()));
    await rendezvous?.close();
    rmSync(work, { recursive: true, force: true });
  }
  const total = Date.now() - started;
  return results.map((r, i) => (i === 0 && r.ms === 0 ? { ...r, ms: total } : r));
}

/** The boot's `vfiokit serve` processes: one per `server` name, one per device without one. */
export function serverGroups(boot: GuestBoot): { name: string; devices: ServedDevice[] }[] {
  const groups = new Map<string, ServedDevice[]>();
  for (const d of boot.devices) {
    const key = d.server ?? d.id;
    groups.set(key, [...(groups.get(key) ?? []), d]);
  }
  return [...groups].map(([name, devices]) => ({ name, devices }));
}
