#!/usr/bin/env node
// The whole suite: lint (Biome over the whole tree), types, build and every package's tests through turbo, then the
// real-guest suite (tools/guest: QEMU and Linux guests, on its own so its boots have the cores), then one closing
// line summing the JUnit reports, the guest's included: "N passed, N failed, N skipped".
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', FORCE_COLOR: process.env.FORCE_COLOR ?? '0' };
const extra = process.argv.slice(2);
// Lint and format the whole tree at once (Biome takes well under a second), then the turbo graph.
const lint = spawnSync('npx', ['biome', 'ci', '.', ...(process.stdout.isTTY ? [] : ['--colors=off'])], {
  cwd: root,
  stdio: 'inherit',
  env,
});
const turbo = spawnSync(
  'npx',
  ['turbo', 'run', 'typecheck', 'build', 'test', '--concurrency=2', '--output-logs=new-only', ...extra],
  { cwd: root, stdio: 'inherit', env },
);

// Skips in one line where no QEMU is configured (VFIOKIT_QEMU); .ci/run configures it. The old report goes first:
// the run (or turbo's cache) writes the new one.
rmSync(join(root, 'reports', 'guest'), { recursive: true, force: true });
const guest = spawnSync('npx', ['turbo', 'run', 'test:guest', '--output-logs=new-only', ...extra], {
  cwd: root,
  stdio: 'inherit',
  env,
});

let passed = 0;
let failed = 0;
let skipped = 0;
const failing = [];
const reports = [join(root, 'reports', 'guest', 'junit.xml')];
for (const group of ['packages', 'apps', 'tools']) {
  const dir = join(root, group);
  if (!existsSync(dir)) continue;
  for (const name of readdirSync(dir)) reports.push(join(dir, name, 'reports', 'junit.xml'));
}
for (const file of reports) {
  if (!existsSync(file)) continue;
  const xml = readFileSync(file, 'utf8');
  for (const m of xml.matchAll(/<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const body = m[2] ?? '';
    if (/<failure\b|<error\b/.test(body)) {
      failed++;
      if (!failing.includes(file)) failing.push(file);
    } else if (/<skipped\b/.test(body)) skipped++;
    else passed++;
  }
}
const status =
  lint.status !== 0 ? (lint.status ?? 1) : turbo.status !== 0 ? (turbo.status ?? 1) : (guest.status ?? 1);
if (status !== 0 && failed === 0) failed = 1; // a task failed outside the test runners (lint, types, build)
// The closing line and the exit status must agree: a report that lists failures while every task exited 0 (a
// report another run overwrote meanwhile, a runner that swallowed its failures) fails the run too, and says where.
if (status === 0 && failing.length > 0)
  console.error(
    `\nEvery task exited 0, but these JUnit reports list failures: ${failing.map((f) => f.slice(root.length)).join(', ')}. Run those tests again (nothing else may run tests in this tree meanwhile).`,
  );
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(status !== 0 ? status : failed > 0 ? 1 : 0);
