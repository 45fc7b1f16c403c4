/**
 * The client against a server that misbehaves (fixtures/hostile-server.ts, in a process of its
 * own because the client waits on its thread): every bad reply is a clear VfioError within the
 * request timeout, never a hang or a crash, and the server's commands are answered meanwhile.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VfioError } from '@vfiokit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectVfioUser, type VfioUserClientDevice } from '../src/client/client-device.js';
import { openFdCount } from '../src/native/memory.js';

const here = dirname(fileURLToPath(import.meta.url));
let child: ChildProcess;
let dir: string;
let path: string;
const asked = new Map<number, (v: number) => void>();
let nextAsk = 1;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vfio-user-hostile-'));
  path = join(dir, 'dev.sock');
  child = fork(join(here, 'fixtures', 'hostile-server.ts'), [path], {
    execArgv: ['--import', 'tsx', '--conditions=@vfiokit/source'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.on('message', (m: { id: number; value: number }) => {
    asked.get(m.id)?.(m.value);
    asked.delete(m.id);
  });
  await new Promise<void>((resolve, reject) => {
    asked.set(0, () => resolve());
    child.once('exit', (code) => reject(new Error(`the hostile server exited with ${code}`)));
  });
}, 30_000);

afterAll(() => {
  child?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const dmaReplies = () =>
  new Promise<number>((resolve) => {
    const id = nextAsk++;
    asked.set(id, resolve);
    child.send({ type: 'dma', id });
  });

/** A read of 4 bytes at `offset` of BAR0: what it gave, or the error it threw. */
function readAt(dev: VfioUserClientDevice, offset: number): { bytes?: number[]; error?: VfioError } {
  const dst = new Uint8Array(4);
  try {
    dev.read(0, offset, dst);
    return { bytes: Array.from(dst) };
  } catch (err) {
    if (!(err instanceof VfioError)) throw err;
    return { error: err };
  }
}

async function attached(timeoutMs = 2000): Promise<VfioUserClientDevice> {
  return connectVfioUser(path, { timeoutMs });
}

describe('the client against a hostile server', () => {
  it('reads correctly from it while it behaves', async () => {
    const dev = await attached();
    expect(readAt(dev, 0).bytes).toEqual([0x5a, 0x5a, 0x5a, 0x5a]);
    dev.disconnect();
  });

  it('gives ETIMEDOUT within the request timeout when no reply comes, and the device stays failed', async () => {
    const dev = await attached(300);
    const t0 = performance.now();
    const r = readAt(dev, 0x10);
    const took = performance.now() - t0;
    expect(r.error?.code).toBe('ETIMEDOUT');
    expect(r.error?.message).toMatch(/did not answer within 300 ms/);
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(3000);
    expect(dev.connected).toBe(false);
    expect(readAt(dev, 0).error?.code).toBe('ETIMEDOUT');
    dev.disconnect();
  });

  it('times out within the request timeout although stray replies keep waking it', async () => {
    const dev = await attached(300);
    const t0 = performance.now();
    const r = readAt(dev, 0x80);
    const took = performance.now() - t0;
    expect(r.error?.code).toBe('ETIMEDOUT');
    expect(r.error?.message).toMatch(/did not answer within 300 ms/);
    expect(took).toBeGreaterThanOrEqual(290);
    // Each wake-up waits only for what is left of the one deadline: never 300 ms anew.
    expect(took).toBeLessThan(3000);
    expect(dev.connected).toBe(false);
    dev.disconnect();
  });

  it('takes a reply that comes 50 ms late, within the request timeout', async () => {
    const dev = await attached(300);
    const t0 = performance.now();
    expect(readAt(dev, 0x70).bytes).toEqual([0x5a, 0x5a, 0x5a, 0x5a]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45);
    expect(readAt(dev, 0).bytes).toEqual([0x5a, 0x5a, 0x5a, 0x5a]);
    dev.disconnect();
  });

  it('refuses a reply with another count (EPROTO) and stays usable', async () => {
    const dev = await attached();
    const r = readAt(dev, 0x20);
    expect(r.error?.code).toBe('EPROTO');
    expect(r.error?.message).toMatch(/carries 5 bytes; 4 were asked/);
    expect(readAt(dev, 0).bytes).toEqual([0x5a, 0x5a, 0x5a, 0x5a]);
    dev.disconnect();
  });

  it('skips stray replies (another msg_id, another command) and takes its own', async () => {
    const dev = await attached();
    expect(readAt(dev, 0x30).bytes).toEqual([0x5a, 0x5a, 0x5a, 0x5a]);
    expect(readAt(dev, 0).bytes).toEqual([0x5a, 0x5a, 0x5a, 0x5a]);
    dev.disconnect();
  });

  it('answers a flood of DMA_READ while it waits (EFAULT: nothing is mapped), then gets its reply', async () => {
    const before = await dmaReplies();
    const dev = await attached();
    expect(readAt(dev, 0x40).bytes).toEqual([0x5a, 0x5a, 0x5a, 0x5a]);
    const end = Date.now() + 3000;
    while ((await dmaReplies()) < before + 300 && Date.now() < end)
      await new Promise((r) => setTimeout(r, 10));
    expect(await dmaReplies()).toBe(before + 300);
    dev.disconnect();
  });

  it('closes with a reason naming the framing when a reply says msg_size 4 GiB', async () => {
    const dev = await attached();
    const r = readAt(dev, 0x50);
    expect(r.error?.code).toBe('ECONNRESET');
    expect(r.error?.message).toMatch(/EPROTO.*msg_size 4294967295/);
    expect(dev.connected).toBe(false);
    dev.disconnect();
  });

  it('gives ECONNRESET at once when the server hangs up, and leaks no fd over many attaches', async () => {
    const fds = openFdCount();
    for (let i = 0; i < 20; i++) {
      const dev = await attached();
      const t0 = performance.now();
      expect(readAt(dev, 0x60).error?.code).toBe('ECONNRESET');
      expect(performance.now() - t0).toBeLessThan(1000);
      dev.disconnect();
    }
    expect(openFdCount()).toBe(fds);
  });
});
