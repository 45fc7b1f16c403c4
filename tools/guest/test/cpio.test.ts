import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalisePath, readCpio, writeCpio } from '../src/initramfs/cpio.js';

const hasCpio = spawnSync('cpio', ['--version']).status === 0;

describe('the initramfs archive (cpio newc)', () => {
  it('reads back every file, link and directory it wrote, with their parents made', () => {
    const archive = writeCpio([
      { kind: 'file', path: '/vfk/checks/01.sh', data: new TextEncoder().encode('echo hi\n'), mode: 0o755 },
      { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
      { kind: 'char', path: 'dev/console', major: 5, minor: 1 },
    ]);
    const members = readCpio(archive);
    const byPath = new Map(members.map((m) => [m.path, m]));
    expect([...byPath.keys()].sort()).toEqual([
      'bin',
      'bin/sh',
      'dev',
      'dev/console',
      'vfk',
      'vfk/checks',
      'vfk/checks/01.sh',
    ]);
    expect(byPath.get('vfk/checks/01.sh')!.mode).toBe(0o100755);
    expect(new TextDecoder().decode(byPath.get('vfk/checks/01.sh')!.data)).toBe('echo hi\n');
    expect(new TextDecoder().decode(byPath.get('bin/sh')!.data)).toBe('busybox');
    expect(byPath.get('dev/console')!.mode).toBe(0o020600);
    expect(archive.length % 4).toBe(0);
  });

  it('round-trips any set of files byte for byte', () => {
    const name = fc.stringMatching(/^[a-z0-9_.-]{1,12}$/).filter((s) => s !== '.' && s !== '..');
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.tuple(fc.array(name, { minLength: 1, maxLength: 3 }), fc.uint8Array({ maxLength: 70 })),
          {
            selector: ([p]) => p.join('/'),
            maxLength: 8,
          },
        ),
        (files) => {
          const paths = files.map(([p]) => p.join('/'));
          // A file path that is also another file's directory is refused, as the kernel would clash.
          const clash = paths.some((p) => paths.some((q) => q.startsWith(`${p}/`)));
          const entries = files.map(([p, data]) => ({ kind: 'file' as const, path: p.join('/'), data }));
          if (clash) {
            expect(() => writeCpio(entries)).toThrow(/also a directory/);
            return;
          }
          const back = new Map(readCpio(writeCpio(entries)).map((m) => [m.path, m.data]));
          for (const [p, data] of files)
            expect(Buffer.from(back.get(p.join('/'))!)).toEqual(Buffer.from(data));
        },
      ),
    );
  });

  it('refuses a file that a directory of an earlier entry would have to be', () => {
    const data = new Uint8Array(1);
    expect(() =>
      writeCpio([
        { kind: 'file', path: '-/-', data },
        { kind: 'file', path: '-', data },
      ]),
    ).toThrow(/also a directory/);
  });

  it('refuses paths that leave the archive', () => {
    expect(() => normalisePath('../etc/passwd')).toThrow(/not a path inside/);
    expect(() => normalisePath('/')).toThrow(/not a path inside/);
    expect(normalisePath('/a//b/./c')).toBe('a/b/c');
  });

  it('reports a cut archive plainly', () => {
    const archive = writeCpio([{ kind: 'file', path: 'a', data: new Uint8Array(100) }]);
    expect(() => readCpio(archive.subarray(0, 150))).toThrow(/runs past|ends inside/);
  });

  it.runIf(hasCpio)('is what GNU cpio lists and extracts (where cpio is installed)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfkg-cpio-'));
    try {
      const archive = join(dir, 'a.cpio');
      writeFileSync(
        archive,
        writeCpio([{ kind: 'file', path: 'x/y.txt', data: new TextEncoder().encode('data') }]),
      );
      const list = spawnSync('cpio', ['-it', '--quiet', '-F', archive], { encoding: 'utf8' });
      expect(list.stdout.split('\n').filter(Boolean)).toEqual(['x', 'x/y.txt']);
      spawnSync('cpio', ['-id', '--quiet', '-F', archive], { cwd: dir });
      expect(readFileSync(join(dir, 'x', 'y.txt'), 'utf8')).toBe('data');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
