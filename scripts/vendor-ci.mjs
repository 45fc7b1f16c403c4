#!/usr/bin/env node
// A per-vendor pipeline in one command: build, test and conformance of one plugin package and
// everything it depends on, with one JUnit file as output.
//   pnpm run vendor-ci <package> [--junit <file>]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const pkg = args.find((a) => !a.startsWith('--'));
const junitAt = args.indexOf('--junit');
if (!pkg || args.includes('--help')) {
  console.log(
    'usage: pnpm run vendor-ci <plugin package> [--junit <file>]\n\nBuilds, tests and runs the conformance suite on one plugin package and its dependencies.\nexample: pnpm run vendor-ci @vfiokit/sample-mtty --junit reports/mtty.xml',
  );
  process.exit(pkg ? 0 : 2);
}

// Where each workspace package lives.
const dirs = new Map();
for (const group of ['packages', 'apps']) {
  for (const name of existsSync(join(root, group)) ? readdirSync(join(root, group)) : []) {
    const file = join(root, group, name, 'package.json');
    if (existsSync(file)) dirs.set(JSON.parse(readFileSync(file, 'utf8')).name, join(root, group, name));
  }
}
if (!dirs.has(pkg)) {
  console.error(
    `vendor-ci: "${pkg}" is not a package of this workspace; known: ${[...dirs.keys()].join(', ')}.`,
  );
  process.exit(2);
}

const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1' };
const run = spawnSync(
  'npx',
  ['turbo', 'run', 'build', 'test', 'conformance', `--filter=${pkg}...`, '--concurrency=2'],
  {
    cwd: root,
    stdio: 'inherit',
    env,
  },
);

// One JUnit file: every test suite of the filtered packages, the plugin's conformance run included.
const suites = [];
const listed = spawnSync('npx', ['turbo', 'ls', `--filter=${pkg}...`, '--output=json'], {
  cwd: root,
  env,
  encoding: 'utf8',
});
let names = [pkg];
try {
  names = JSON.parse(listed.stdout).packages.items.map((p) => p.name);
} catch {
  // turbo ls output not available: the plugin alone
}
for (const name of names) {
  const dir = dirs.get(name);
  if (!dir) continue;
  for (const report of ['junit.xml', 'conformance.xml']) {
    const file = join(dir, 'reports', report);
    if (!existsSync(file)) continue;
    const xml = readFileSync(file, 'utf8');
    for (const m of xml.matchAll(/<testsuite\b[\s\S]*?<\/testsuite>/g)) suites.push(m[0]);
  }
}
const out = resolve(
  junitAt >= 0 ? args[junitAt + 1] : join(root, 'reports', `vendor-ci-${pkg.replace(/[@/]/g, '_')}.xml`),
);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="vendor-ci ${pkg}">\n${suites.join('\n')}\n</testsuites>\n`,
);
console.log(`vendor-ci: JUnit written to ${out}`);
process.exit(run.status ?? 1);
