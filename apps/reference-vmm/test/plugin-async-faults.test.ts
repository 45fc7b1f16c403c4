/**
 * A plugin that fails asynchronously, run by the real executable: an async BAR handler and a
 * guest driver that leaves a rejected Promise behind. Both used to end the VMM with a raw Node
 * stack (the second before any report); each is now isolated and reported like a throw.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const plugin = fileURLToPath(new URL('./fixtures/plugins/async-faults.ts', import.meta.url));

describe('a plugin whose code fails asynchronously', () => {
  it('gets its async BAR handler refused and its guest driver failed, in the report, with no stack', () => {
    const r = spawnSync(
      process.execPath,
      ['--import', tsx, '--conditions=@vfiokit/source', cli, 'run', '--device', `${plugin}:async-1@00:03.0`],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.status).toBe(1);
    // The read that returned a rejected Promise is refused, naming device, region and offset.
    expect(r.stdout).toMatch(
      /region 0, offset 0x0: read: EIO: device [0-9a-f-]+, region 0, offset 0x0: the read handler returned a Promise, so the access had not finished when it returned; the access was refused/,
    );
    expect(r.stdout).toMatch(/trapped accesses: region 0: 0 reads, 0 writes, 1 errors/);
    // The driver's stray rejection is that driver's failure.
    expect(r.stdout).toMatch(
      /FAIL 00:03\.0 async-faults-guest: .*run\(\) left a Promise rejected that it never awaited \(the status poll was never awaited\)/,
    );
    expect(r.stdout).toMatch(/Result: FAILED: 0 driver runs ok, 1 failed, 1 device error\./);
    // The handler's late rejection is caught and logged in one line.
    expect(r.stderr).toMatch(
      /the Promise the read handler returned rejected after the access was refused: the register file went away/,
    );
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/\n\s+at |Unhandled|\.ts:\d+:\d+/);
  }, 60_000);
});
