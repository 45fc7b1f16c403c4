/**
 * The client's posted writes and REGION_WRITE_MULTI (ConnectOptions.postedWrites): against a
 * recording server, what goes on the wire; against our server, that the device sees every
 * write in the order made. The servers run in another process (fixtures/posted-writes-server.ts)
 * because the client blocks its thread while it waits.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connectVfioUser } from '../src/client/client-device.js';
import { silentLogger } from '../src/host.js';
import { UnixConnection } from '../src/native/socket.js';
import {
  VFIO_USER_REGION_READ,
  VFIO_USER_REGION_WRITE,
  VFIO_USER_REGION_WRITE_MULTI,
} from '../src/protocol/constants.js';
import { expectVfioError } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));

interface Seen {
  readonly command: number;
  readonly noReply: boolean;
  readonly writes: number;
}

class Peer {
  private nextId = 1;
  private readonly waiting = new Map<number, (v: unknown) => void>();
  private constructor(
    readonly child: ChildProcess,
    readonly dir: string,
    readonly path: string,
  ) {
    child.on('message', (m: { id: number; value: unknown }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      w?.(m.value);
    });
  }

  static async start(mode: string): Promise<Peer> {
    const dir = mkdtempSync(join(tmpdir(), 'vfio-user-posted-'));
    const path = join(dir, 'dev.sock');
    const child = fork(join(here, 'fixtures', 'posted-writes-server.ts'), [mode, path], {
      execArgv: ['--import', 'tsx', '--conditions=@vfiokit/source'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const p = new Peer(child, dir, path);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('the server process did not start within 20 s')),
        20_000,
      );
      p.waiting.set(0, () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code) => reject(new Error(`the server process exited with ${code}`)));
    });
    return p;
  }

  ask<T>(type: 'seen' | 'log'): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve as (v: unknown) => void);
      this.child.send({ type, id });
    });
  }

  /** The recorded commands, once `count` of them arrived (at most 5 s). */
  async seen(count: number): Promise<{ seen: Seen[]; offered: unknown }> {
    const end = Date.now() + 5000;
    for (;;) {
      const r = await this.ask<{ seen: Seen[]; offered: unknown }>('seen');
      if (r.seen.length >= count || Date.now() > end) return r;
      await new Promise((res) => setTimeout(res, 5));
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGKILL');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

let peer: Peer | undefined;
afterEach(async () => {
  await peer?.stop();
  peer = undefined;
});

describe('posted writes', () => {
  it('offers write_multiple, and sends small posted writes together as No_reply REGION_WRITE_MULTI before the next read', async () => {
    peer = await Peer.start('record-multi');
    const dev = await connectVfioUser(peer.path, { postedWrites: true, log: silentLogger });
    try {
      expect(dev.postsWrites).toBe(true);
      const v = new Uint8Array(4);
      for (let i = 0; i < 450; i++) dev.write(0, (i * 4) % 4096, v);
      dev.write(0, 0, new Uint8Array(16)); // above 8 bytes: a REGION_WRITE of its own, after the held ones
      dev.read(0, 0, new Uint8Array(4));
      const r = await peer.seen(5);
      expect(r.offered).toMatchObject({ writeMultiple: true });
      expect(r.seen).toEqual([
        { command: VFIO_USER_REGION_WRITE_MULTI, noReply: true, writes: 200 },
        { command: VFIO_USER_REGION_WRITE_MULTI, noReply: true, writes: 200 },
        { command: VFIO_USER_REGION_WRITE_MULTI, noReply: true, writes: 50 },
        { command: VFIO_USER_REGION_WRITE, noReply: true, writes: 1 },
        { command: VFIO_USER_REGION_READ, noReply: false, writes: 0 },
      ]);
    } finally {
      dev.disconnect();
    }
  });

  it('sends what it holds when the task ends, without a later message to push it', async () => {
    peer = await Peer.start('record-multi');
    const dev = await connectVfioUser(peer.path, { postedWrites: true, log: silentLogger });
    try {
      dev.write(0, 8, new Uint8Array([1]));
      dev.write(0, 9, new Uint8Array([2]));
      expect((await peer.seen(1)).seen).toEqual([
        { command: VFIO_USER_REGION_WRITE_MULTI, noReply: true, writes: 2 },
      ]);
    } finally {
      dev.disconnect();
    }
  });

  it('sends a held REGION_WRITE_MULTI and the read behind it in one sendmsg, so the server is woken once', async () => {
    peer = await Peer.start('record-multi');
    const dev = await connectVfioUser(peer.path, { postedWrites: true, log: silentLogger });
    // Each UnixConnection.send is one sendmsg (these small messages never wait in its queue).
    const sendMsg = vi.spyOn(UnixConnection.prototype, 'send');
    try {
      const sent = () => sendMsg.mock.calls.map(([bytes]) => bytes.length);
      const multi = (n: number) => 16 + 8 + n * 24;
      for (const n of [200, 2, 57]) {
        sendMsg.mockClear();
        for (let i = 0; i < n; i++) dev.writeValue(0, (i * 4) % 4096, 4, i);
        expect(sendMsg).not.toHaveBeenCalled(); // a full batch waits too
        expect(dev.readValue(0, 0, 4)).toBe(0);
        expect(sent()).toEqual([multi(n) + 32]);
      }
      // One held write goes as a plain REGION_WRITE, joined too; a 201st write sends the full batch first.
      sendMsg.mockClear();
      dev.writeValue(0, 0x10, 2, 0xbeef);
      const got = new Uint8Array(2);
      dev.read(0, 0x10, got);
      for (let i = 0; i < 201; i++) dev.writeValue(0, (i * 4) % 4096, 4, i);
      expect(sent()).toEqual([32 + 2 + 32, multi(200)]);
      dev.read(0, 0, new Uint8Array(4));
      expect(sent()).toEqual([32 + 2 + 32, multi(200), 32 + 4 + 32]);
      const r = await peer.seen(12);
      const w = (writes: number) => ({ command: VFIO_USER_REGION_WRITE_MULTI, noReply: true, writes });
      const read = { command: VFIO_USER_REGION_READ, noReply: false, writes: 0 };
      const write = { command: VFIO_USER_REGION_WRITE, noReply: true, writes: 1 };
      expect(r.seen).toEqual([w(200), read, w(2), read, w(57), read, write, read, w(200), write, read]);
    } finally {
      sendMsg.mockRestore();
      dev.disconnect();
    }
  });

  it('sends a full batch when the task ends, without a later message to push it', async () => {
    peer = await Peer.start('record-multi');
    const dev = await connectVfioUser(peer.path, { postedWrites: true, log: silentLogger });
    try {
      for (let i = 0; i < 200; i++) dev.writeValue(0, (i * 4) % 4096, 4, i);
      expect((await peer.seen(1)).seen).toEqual([
        { command: VFIO_USER_REGION_WRITE_MULTI, noReply: true, writes: 200 },
      ]);
    } finally {
      dev.disconnect();
    }
  });

  it('posts each write as a No_reply REGION_WRITE when the server does not offer write_multiple', async () => {
    peer = await Peer.start('record-plain');
    const dev = await connectVfioUser(peer.path, { postedWrites: true, log: silentLogger });
    try {
      for (let i = 0; i < 3; i++) dev.write(0, i * 4, new Uint8Array(4));
      dev.read(0, 0, new Uint8Array(4));
      expect((await peer.seen(4)).seen.map((s) => [s.command, s.noReply])).toEqual([
        [VFIO_USER_REGION_WRITE, true],
        [VFIO_USER_REGION_WRITE, true],
        [VFIO_USER_REGION_WRITE, true],
        [VFIO_USER_REGION_READ, false],
      ]);
    } finally {
      dev.disconnect();
    }
  });

  it('waits for every write by default, and never posts to a device with an mmapped region', async () => {
    peer = await Peer.start('mapped');
    const plain = await connectVfioUser(peer.path, { log: silentLogger });
    expect(plain.postsWrites).toBe(false);
    plain.disconnect();
    const asked = await connectVfioUser(peer.path, { postedWrites: true, log: silentLogger });
    expect(asked.postsWrites).toBe(false);
    asked.disconnect();
  });

  it('reach the device through our server in the order they were made', async () => {
    peer = await Peer.start('trapped');
    const dev = await connectVfioUser(peer.path, { postedWrites: true, log: silentLogger });
    try {
      expect(dev.postsWrites).toBe(true);
      dev.write(7, 4, new Uint8Array([0x05, 0])); // COMMAND.IO: BAR0 decodes (config space, posted too)
      const want: number[] = [];
      for (let i = 0; i < 300; i++) {
        dev.write(0, i % 256, new Uint8Array([i & 0xff]));
        want.push(i % 256, i & 0xff);
      }
      const back = new Uint8Array(1);
      dev.read(0, 0, back);
      expect(back[0]).toBe(0x11);
      expect(await peer.ask('log')).toEqual(want);
    } finally {
      dev.disconnect();
    }
  });
});

describe('value accesses (readValue / writeValue)', () => {
  /** Little-endian value of `size` bytes of `mem` at `offset`. */
  const le = (mem: Uint8Array, offset: number, size: number) => {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + mem[offset + i];
    return v;
  };
  const access = fc.record({
    kind: fc.constantFrom('readValue', 'writeValue', 'read', 'write'),
    size: fc.constantFrom(1 as const, 2 as const, 4 as const),
    // Inside the first 4096 - 16 bytes: the memory fixture refuses its last 16.
    offset: fc.integer({ min: 0, max: 4096 - 16 - 4 }),
    value: fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }),
  });

  it('read and write what the bytes road does, posted or waited for, in the order made', async () => {
    peer = await Peer.start('memory');
    for (const postedWrites of [true, false]) {
      const dev = await connectVfioUser(peer.path, { postedWrites, log: silentLogger });
      try {
        expect(dev.postsWrites).toBe(postedWrites);
        dev.write(7, 4, new Uint8Array([0x02, 0])); // COMMAND.MEMORY: BAR0 decodes
        const model = new Uint8Array(4096);
        dev.write(0, 0, model.subarray(0, 4096 - 16)); // both ends start from zeros
        fc.assert(
          fc.property(fc.array(access, { maxLength: 300 }), (ops) => {
            for (const op of ops) {
              const bytes = new Uint8Array(op.size);
              for (let i = 0; i < op.size; i++) bytes[i] = op.value >>> (8 * i);
              if (op.kind === 'writeValue') dev.writeValue(0, op.offset, op.size, op.value);
              else if (op.kind === 'write') dev.write(0, op.offset, bytes);
              if (op.kind === 'writeValue' || op.kind === 'write') {
                model.set(bytes, op.offset);
                continue;
              }
              const want = le(model, op.offset, op.size);
              if (op.kind === 'readValue') expect(dev.readValue(0, op.offset, op.size)).toBe(want);
              else {
                const got = new Uint8Array(op.size);
                dev.read(0, op.offset, got);
                expect(le(got, 0, op.size)).toBe(want);
              }
            }
            const all = new Uint8Array(4096 - 16);
            dev.read(0, 0, all);
            expect(all).toEqual(model.subarray(0, 4096 - 16));
          }),
          { numRuns: 40 },
        );
      } finally {
        dev.disconnect();
      }
    }
  });

  it('send held values together as REGION_WRITE_MULTI of at most 200 writes each', async () => {
    peer = await Peer.start('record-multi');
    const dev = await connectVfioUser(peer.path, { postedWrites: true, log: silentLogger });
    try {
      for (let i = 0; i < 450; i++) dev.writeValue(0, (i * 4) % 4096, 4, i);
      expect(dev.readValue(0, 0, 2)).toBe(0);
      expect((await peer.seen(4)).seen).toEqual([
        { command: VFIO_USER_REGION_WRITE_MULTI, noReply: true, writes: 200 },
        { command: VFIO_USER_REGION_WRITE_MULTI, noReply: true, writes: 200 },
        { command: VFIO_USER_REGION_WRITE_MULTI, noReply: true, writes: 50 },
        { command: VFIO_USER_REGION_READ, noReply: false, writes: 0 },
      ]);
    } finally {
      dev.disconnect();
    }
  });

  it('refuse a size other than 1, 2 or 4 (EINVAL, naming region and offset) and send nothing', async () => {
    peer = await Peer.start('record-multi');
    const dev = await connectVfioUser(peer.path, { postedWrites: true, log: silentLogger });
    try {
      for (const size of [0, 3, 8, 2.5, -4]) {
        const e = expectVfioError(
          () => dev.writeValue(0, 0x10, size as 4, 1),
          'EINVAL',
          /a value access of .* bytes; one is 1, 2 or 4 bytes/,
        );
        expect(e.message).toMatch(/region 0.*offset 0x10/);
        expectVfioError(() => dev.readValue(0, 0x10, size as 4), 'EINVAL', /one is 1, 2 or 4 bytes/);
      }
      dev.read(0, 0, new Uint8Array(4));
      expect((await peer.seen(1)).seen).toEqual([
        { command: VFIO_USER_REGION_READ, noReply: false, writes: 0 },
      ]);
    } finally {
      dev.disconnect();
    }
  });

  it("give the server's refusal of a read or waited write out of range or failing, naming region and offset, and stay usable", async () => {
    peer = await Peer.start('memory');
    for (const postedWrites of [false, true]) {
      const dev = await connectVfioUser(peer.path, { postedWrites, log: silentLogger });
      try {
        dev.write(7, 4, new Uint8Array([0x02, 0]));
        // Past the region's 4096 bytes, and into the 16 bytes the handler refuses.
        // Past the region's 4096 bytes (EINVAL), and into the 16 bytes the handler refuses (EIO).
        for (const [offset, code] of [
          [4096, 'EINVAL'],
          [4094, 'EINVAL'],
          [0x10000, 'EINVAL'],
          [4096 - 8, 'EIO'],
        ] as const) {
          const e = expectVfioError(() => dev.readValue(0, offset, 4), code, /refused REGION_READ/);
          expect(e.message).toMatch(new RegExp(`region 0.*offset 0x${offset.toString(16)}`));
          if (postedWrites)
            dev.writeValue(0, offset, 4, 1); // posted: not reported, as QEMU's
          else expectVfioError(() => dev.writeValue(0, offset, 4, 1), code, /refused REGION_WRITE/);
        }
        expectVfioError(() => dev.readValue(9, 0, 4), 'EINVAL', /refused REGION_READ/);
        dev.writeValue(0, 8, 4, 0xdeadbeef);
        expect(dev.readValue(0, 8, 4)).toBe(0xdeadbeef);
        expect(dev.connected).toBe(true);
      } finally {
        dev.disconnect();
      }
    }
  });

  it('give ECONNRESET, not a hang, when the server goes away with values held', async () => {
    peer = await Peer.start('memory');
    const dev = await connectVfioUser(peer.path, { postedWrites: true, log: silentLogger });
    try {
      dev.write(7, 4, new Uint8Array([0x02, 0]));
      for (let i = 0; i < 50; i++) dev.writeValue(0, i * 4, 4, i);
      await peer.stop();
      peer = undefined;
      for (let i = 50; i < 120; i++) dev.writeValue(0, i * 4, 4, i);
      const t0 = performance.now();
      expectVfioError(() => dev.readValue(0, 0, 4), 'ECONNRESET', /is gone/);
      expect(performance.now() - t0).toBeLessThan(2000);
      expect(dev.connected).toBe(false);
      expectVfioError(() => dev.readValue(0, 0, 4), 'ECONNRESET');
    } finally {
      dev.disconnect();
    }
  });
});
