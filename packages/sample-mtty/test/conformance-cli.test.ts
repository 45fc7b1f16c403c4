/**
 * `vfiokit-conformance --plugin @vfiokit/sample-mtty` as a user runs it: the built CLI, by package
 * name, from the repository root, from another package's folder, and from a project that merely
 * has the package installed (issue 14 item 5: from the root it used to fail "Cannot find package").
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkgDir = path.resolve(here, '..');
const repo = path.resolve(pkgDir, '../..');
const cli = path.join(repo, 'packages/conformance/dist/cli.js');
const built = existsSync(cli) && existsSync(path.join(pkgDir, 'dist/index.js'));

function run(cwd: string, command = [cli]): Promise<{ code: number; out: string; err: string }> {
  const [file, ...args] = command[0] === cli ? [process.execPath, cli] : command;
  return new Promise((resolve) => {
    execFile(
      file,
      [...args, '--plugin', '@vfiokit/sample-mtty', '--check', 'device', '--seed', '1'],
      // Plain node as a user runs it: no --conditions and no NODE_PATH (vitest sets one to pnpm's
      // hoisted store, which would find any package).
      { cwd, env: { ...process.env, NODE_OPTIONS: '', NODE_PATH: '' }, timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, out: stdout, err: stderr }),
    );
  });
}

describe.skipIf(!built)(
  built
    ? 'vfiokit-conformance --plugin @vfiokit/sample-mtty'
    : 'vfiokit-conformance CLI — not built: skipped',
  () => {
    it.each([
      ['the repository root', repo],
      ['another package of the workspace', path.join(repo, 'packages/gvt-d')],
      ['a nested source folder', path.join(repo, 'apps/reference-vmm/src')],
    ])('runs from %s', async (_what, cwd) => {
      const r = await run(cwd);
      expect(r.err).toBe('');
      expect(r.out).toContain('device @vfiokit/sample-mtty/');
      expect(r.out).toMatch(/\d+ passed, 0 failed/);
      expect(r.code).toBe(0);
    });

    it("is on the repository root's bin path, as `pnpm exec vfiokit-conformance` runs it", async () => {
      // The root package depends on @vfiokit/conformance so that pnpm links the command there.
      const r = await run(repo, [path.join(repo, 'node_modules/.bin/vfiokit-conformance')]);
      expect(r.err).toBe('');
      expect(r.out).toMatch(/\d+ passed, 0 failed/);
      expect(r.code).toBe(0);
    });

    it('runs from a project outside the workspace that has the package installed', async () => {
      const proj = mkdtempSync(path.join(tmpdir(), 'vfiokit-mtty-user-'));
      writeFileSync(path.join(proj, 'package.json'), JSON.stringify({ name: 'user', private: true }));
      mkdirSync(path.join(proj, 'node_modules/@vfiokit'), { recursive: true });
      symlinkSync(pkgDir, path.join(proj, 'node_modules/@vfiokit/sample-mtty'));
      const r = await run(proj);
      expect(r.err).toBe('');
      expect(r.out).toMatch(/\d+ passed, 0 failed/);
    });
  },
);
