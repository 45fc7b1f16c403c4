import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.join(here, '..');
// The suite's CLI as a pipeline runs it: built, from a project that has this backend installed.
const cli = path.join(pkg, 'node_modules', '@vfiokit', 'conformance', 'dist', 'cli.js');

function conformance(args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { cwd: pkg, encoding: 'utf8', timeout: 30_000 });
}

describe('vfiokit-conformance --vfio on this host', () => {
  it('loads the backend and exits 2 with its reason for a PCI address that is not there', () => {
    const r = conformance(['--vfio', '0000:7f:1f.7']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('there is no PCI device 0000:7f:1f.7');
    expect(r.stderr).toContain('lspci -D');
  });

  it('says what an mdev UUID needs when no such mediated device exists', () => {
    const r = conformance(['--vfio', '83b8f4f2-509f-382f-3c1e-e6bfe0fa1fff']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('there is no mediated device 83b8f4f2-509f-382f-3c1e-e6bfe0fa1fff');
  });
});
