#!/usr/bin/env node
/**
 * `pnpm run test:guest`: every guest suite, or those named.
 *
 *   node dist/cli.js [--suite <name>]... [--boot <name>]... [--jobs <n>] [--list] [--help]
 *
 * Writes reports/guest/junit.xml (and each boot's logs beside it) and ends with
 * "guest suite: ok — checks passed N, failed N, skipped N"; exits 1 when a check failed.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { guestKernel } from './assets/kernel.js';
import { guestUserland } from './assets/userland.js';
import { parseGuestCli, USAGE } from './cli-args.js';
import { cacheDir, chooseQemu, jobs, PACKAGE_DIR, repoRoot } from './env.js';
import { type CaseResult, junitXml } from './report/junit.js';
import { ATTACH_CHECK, runBoot, SERVER_CHECK } from './run/boot.js';
import { stopChildrenOnExit } from './run/children.js';
import type { GuestBoot, GuestSuite } from './suite.js';
import { SUITES } from './suites/index.js';

const parsed = parseGuestCli(process.argv.slice(2));
if (!parsed.ok) {
  console.error(`guest: ${parsed.error}`);
  process.exit(2);
}
const options = parsed.options;
if (options.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const root = repoRoot();
const log = (line: string) => console.log(`guest: ${line}`);
const wantSuites = options.suites;
const wantBoots = options.boots;
for (const s of wantSuites)
  if (!SUITES.some((x) => x.name === s)) {
    console.error(`guest: no suite "${s}"; the suites are ${SUITES.map((x) => x.name).join(', ')}.`);
    process.exit(2);
  }
const selected: { suite: GuestSuite; boot: GuestBoot }[] = SUITES.filter(
  (s) => wantSuites.length === 0 || wantSuites.includes(s.name),
).flatMap((suite) =>
  suite.boots
    .filter((b) => wantBoots.length === 0 || wantBoots.includes(b.name))
    .map((boot) => ({ suite, boot })),
);

if (options.list) {
  for (const { suite, boot } of selected) {
    console.log(`${suite.name}/${boot.name}: ${boot.devices.map((d) => `${d.device}@${d.addr}`).join(', ')}`);
    for (const c of boot.checks) console.log(`  ${c.name}`);
  }
  process.exit(0);
}

const reportsDir = join(root, 'reports', 'guest');
rmSync(reportsDir, { recursive: true, force: true });
mkdirSync(reportsDir, { recursive: true });

function everyCase(status: CaseResult['status'], message: string): CaseResult[] {
  return selected.flatMap(({ suite, boot }) =>
    [ATTACH_CHECK, ...boot.checks.map((c) => c.name), SERVER_CHECK].map((name) => ({
      suite: suite.name,
      boot: boot.name,
      name,
      status,
      message,
      output: '',
      ms: 0,
    })),
  );
}

function finish(cases: readonly CaseResult[], started: number): never {
  writeFileSync(join(reportsDir, 'junit.xml'), junitXml(cases));
  const n = (s: CaseResult['status']) => cases.filter((c) => c.status === s).length;
  console.log(
    // Not the whole suite's "N passed, N failed, N skipped" form, so no one mistakes this for it.
    `guest suite: ${n('failed') > 0 ? 'FAILED' : 'ok'} — checks passed ${n('passed')}, failed ${n('failed')}, skipped ${n('skipped')}; ${((Date.now() - started) / 1000).toFixed(1)} s (reports/guest/junit.xml)`,
  );
  process.exit(n('failed') > 0 ? 1 : 0);
}

const started = Date.now();
stopChildrenOnExit((line) => console.error(`guest: ${line}`));
const choice = chooseQemu(process.env, root);
if (choice.kind === 'skip') {
  console.log(`guest: ${choice.why}`);
  finish(everyCase('skipped', choice.why), started);
}
if (choice.kind === 'error') {
  console.error(`guest: ${choice.why}`);
  finish(everyCase('failed', choice.why), started);
}

const qemu = choice.kind === 'run' ? choice.qemu : '';
const cache = cacheDir(process.env);
let cases: CaseResult[] = [];
try {
  const userland = await guestUserland({
    cacheDir: cache,
    helperDir: join(PACKAGE_DIR, 'guest', 'helper'),
    log,
  });
  const kernel = await guestKernel({ cacheDir: cache, userland, log });
  const parallel = options.jobs ?? jobs(process.env);
  log(
    `${selected.length} boots, ${parallel} at a time: ${qemu}, Debian kernel ${kernel.release} (${kernel.packageVersion}), cache ${cache}`,
  );
  // The longest boots first, so the short ones fill in beside them.
  const weight = (b: GuestBoot) => b.timeoutSec ?? b.checks.reduce((t, c) => t + (c.timeoutSec ?? 60), 0);
  const queue = [...selected].sort((a, b) => weight(b.boot) - weight(a.boot));
  const done = new Map<GuestBoot, CaseResult[]>();
  await Promise.all(
    Array.from({ length: Math.min(parallel, queue.length) }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const r = await runBoot(next.suite, next.boot, {
          root,
          cacheDir: cache,
          qemu,
          kernel,
          userland,
          guestDir: join(PACKAGE_DIR, 'guest'),
          reportsDir,
          log,
        });
        for (const c of r)
          if (c.status !== 'passed')
            console.log(
              `guest:   ${c.status === 'failed' ? 'FAIL' : 'skip'} ${c.suite}/${c.boot}: ${c.name}: ${c.message ?? ''}`,
            );
        done.set(next.boot, r);
      }
    }),
  );
  cases = selected.flatMap(({ boot }) => done.get(boot) ?? []);
} catch (err) {
  console.error(`guest: ${(err as Error).message}`);
  cases = everyCase('failed', (err as Error).message);
}
finish(cases, started);
