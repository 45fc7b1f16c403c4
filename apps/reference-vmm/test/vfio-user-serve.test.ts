/**
 * `vfiokit serve`: its command line (help, one sentence per mistake), its life cycle in a real
 * process (serves, stops cleanly on SIGTERM and SIGINT and removes its socket), and the parsers
 * of its device spec, plugin options and the `vfio-user:` device flag.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VFIO_PCI_CONFIG_REGION_INDEX, VfioError } from '@vfiokit/core';
import { connectVfioUser } from '@vfiokit/vfio-user';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferIo } from '../src/cli/io.js';
import { main } from '../src/cli/main.js';
import { parsePluginOptions, parseServeDevice, serveLogger } from '../src/cli/serve.js';
import { parseDeviceFlag } from '../src/cli/setup.js';
import { MTTY, ServeProcess } from './vfio-user-fixtures.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'vfiokit-serve-cli-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function cli(argv: string[]) {
  const io = bufferIo({ cwd: work, env: {} });
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err(), first: io.err().split('\n')[0] };
}

describe('vfiokit serve: the command line', () => {
  it('prints its usage with options and an example for --help', async () => {
    const r = await cli(['serve', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('Usage: vfiokit serve (--socket <path> --device <plugin>:<type>[:uuid])...');
    expect(r.out).toContain('Options:');
    expect(r.out).toContain('Example:');
    expect((await cli(['--help'])).out).toContain('  serve ');
  });

  it('refuses a device spec that is not plugin:type[:uuid] with one sentence and exit 2', async () => {
    for (const spec of ['@vfiokit/sample-mtty', 'a::b', 'a:b:c:d', ':mtty-1']) {
      const r = await cli(['serve', '--socket', 's.sock', '--device', spec]);
      expect(r.code).toBe(2);
      expect(r.first).toBe(
        `vfiokit serve: --device "${spec}" is not <plugin>:<type>[:uuid], such as @vfiokit/sample-mtty:mtty-2.`,
      );
    }
    const bad = await cli(['serve', '--socket', 's.sock', '--device', `${MTTY}:mtty-1:not-a-uuid`]);
    expect(bad.code).toBe(2);
    expect(bad.first).toContain('ends in "not-a-uuid", which is not a UUID');
  });

  it('asks for --socket and --device when one is missing', async () => {
    const noSocket = await cli(['serve', '--device', `${MTTY}:mtty-1`]);
    expect(noSocket.code).toBe(2);
    expect(noSocket.first).toBe('vfiokit serve needs --socket <path>, the UNIX socket to listen on.');
    const noDevice = await cli(['serve', '--socket', 's.sock']);
    expect(noDevice.code).toBe(2);
    expect(noDevice.first).toContain('vfiokit serve needs --device <plugin>:<type>[:uuid]');
  });

  it('refuses a plugin option that is not key=value', async () => {
    const r = await cli([
      'serve',
      '--socket',
      's.sock',
      '--device',
      `${MTTY}:mtty-1`,
      '--plugin-option',
      'x',
    ]);
    expect(r.code).toBe(2);
    expect(r.first).toBe(
      'vfiokit serve: --plugin-option "x" is not key=value, such as --plugin-option profile=T4-4C.',
    );
  });

  it('says in one sentence that a plugin is not installed', async () => {
    const r = await cli(['serve', '--socket', 's.sock', '--device', '@nobody/no-such-plugin:t-1']);
    expect(r.code).toBe(1);
    expect(r.first).toBe(
      `vfiokit serve: plugin package "@nobody/no-such-plugin" is not installed where ${work} or vfiokit can find it.`,
    );
  });

  it('says which types a plugin offers when the type is unknown', async () => {
    const r = await cli(['serve', '--socket', 's.sock', '--device', `${MTTY}:mtty-9`]);
    expect(r.code).toBe(1);
    expect(r.first).toBe(
      `vfiokit serve: --device "${MTTY}:mtty-9": plugin "${MTTY}" offers no mdev type "mtty-9" (types: mtty-1, mtty-2).`,
    );
    expect(existsSync(join(work, 's.sock'))).toBe(false);
  });

  it('refuses a socket path taken by a file that is not a socket', async () => {
    const path = join(work, 'plain.file');
    writeFileSync(path, 'not a socket');
    const r = await cli(['serve', '--socket', path, '--device', `${MTTY}:mtty-1`]);
    expect(r.code).toBe(1);
    expect(r.first).toBe(`vfiokit serve: the socket path ${path} is in use by a file that is not a socket.`);
  });
});

describe('vfiokit serve: several devices', () => {
  it('refuses --device and --socket counts that do not pair up', async () => {
    const r = await cli([
      'serve',
      '--socket',
      'a.sock',
      '--device',
      `${MTTY}:mtty-1`,
      '--device',
      `${MTTY}:mtty-2`,
    ]);
    expect(r.code).toBe(2);
    expect(r.first).toBe(
      'vfiokit serve got 2 --device and 1 --socket: each --device needs its own --socket, paired in order (the first --socket serves the first --device).',
    );
    const more = await cli([
      'serve',
      '--socket',
      'a.sock',
      '--socket',
      'b.sock',
      '--device',
      `${MTTY}:mtty-1`,
    ]);
    expect(more.code).toBe(2);
    expect(more.first).toContain('got 1 --device and 2 --socket');
  });

  it('refuses one socket path for two devices, however it is spelled', async () => {
    const r = await cli([
      'serve',
      '--socket',
      'a.sock',
      '--device',
      `${MTTY}:mtty-1`,
      '--socket',
      `./x/../a.sock`,
      '--device',
      `${MTTY}:mtty-1`,
    ]);
    expect(r.code).toBe(2);
    expect(r.first).toBe(
      `vfiokit serve: --socket ${join(work, 'a.sock')} is given for two devices: each device is served on its own socket.`,
    );
  });

  it('refuses one UUID for two devices', async () => {
    const uuid = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
    const r = await cli([
      'serve',
      '--socket',
      'a.sock',
      '--device',
      `${MTTY}:mtty-1:${uuid}`,
      '--socket',
      'b.sock',
      '--device',
      `${MTTY}:mtty-2:${uuid.toUpperCase()}`,
    ]);
    expect(r.code).toBe(2);
    expect(r.first).toBe(
      `vfiokit serve: --device "${MTTY}:mtty-2:${uuid.toUpperCase()}": UUID ${uuid} is given for two devices; each device needs its own.`,
    );
  });

  it('serves --vfio on one socket only', async () => {
    const r = await cli(['serve', '--socket', 'a.sock', '--socket', 'b.sock', '--vfio', '0000:01:00.0']);
    expect(r.code).toBe(2);
    expect(r.first).toBe('vfiokit serve --vfio serves one device on one socket; it got 2 --socket.');
  });

  it('names the device that cannot be created and creates none of the others', async () => {
    const r = await cli([
      'serve',
      '--socket',
      'a.sock',
      '--device',
      `${MTTY}:mtty-1`,
      '--socket',
      'b.sock',
      '--device',
      `${MTTY}:mtty-9`,
    ]);
    expect(r.code).toBe(1);
    expect(r.first).toContain(`--device "${MTTY}:mtty-9": plugin "${MTTY}" offers no mdev type "mtty-9"`);
    expect(existsSync(join(work, 'a.sock'))).toBe(false);
  });
});

describe('vfiokit serve: log lines', () => {
  it('start with the device UUID once when serving several devices, and not at all for one', () => {
    const uuid = '83b8f4f2-509f-382f-3c1e-e6bfe0fa10a1';
    const lines = (prefix: string) => {
      const io = bufferIo({ cwd: work, env: {} });
      const log = serveLogger(io, prefix);
      log.info('session ended, device reset: x');
      log.info(`${uuid}: workloads by engine: y`);
      log.warn(`${uuid}: vcs0: scan workload error: z`);
      log.error('listen failed');
      return { out: io.out(), err: io.err() };
    };
    expect(lines(`${uuid}: `)).toEqual({
      out: `vfiokit serve: ${uuid}: session ended, device reset: x\nvfiokit serve: ${uuid}: workloads by engine: y\n`,
      err: `vfiokit serve: ${uuid}: warning: vcs0: scan workload error: z\nvfiokit serve: ${uuid}: error: listen failed\n`,
    });
    expect(lines('')).toEqual({
      out: `vfiokit serve: session ended, device reset: x\nvfiokit serve: ${uuid}: workloads by engine: y\n`,
      err: `vfiokit serve: warning: ${uuid}: vcs0: scan workload error: z\nvfiokit serve: error: listen failed\n`,
    });
  });
});

describe('vfiokit serve: the process', () => {
  let server: ServeProcess | undefined;
  afterAll(async () => {
    await server?.kill();
  });

  it('refuses a socket path where another server listens, and leaves that server serving', async () => {
    server = await ServeProcess.start(`${MTTY}:mtty-1`);
    const r = await cli(['serve', '--socket', server.socketPath, '--device', `${MTTY}:mtty-1`]);
    expect(r.code).toBe(1);
    expect(r.first).toBe(
      `vfiokit serve: the socket path ${server.socketPath} is in use: a server already listens there.`,
    );
    const client = await connectVfioUser(server.socketPath);
    expect(client.info().numRegions).toBeGreaterThan(7);
    client.disconnect();
    await server.stop();
    server = undefined;
  });

  it('serves two GVT-g vGPUs of one parent, each on its socket: their PVINFO ranges and fences do not overlap', async () => {
    const a = '83b8f4f2-509f-382f-3c1e-e6bfe0fa10a1';
    const b = '83b8f4f2-509f-382f-3c1e-e6bfe0fa10b2';
    const bSocket = join(work, 'vgpu-b.sock');
    server = await ServeProcess.start(`@vfiokit/gvt-g:i915-GVTg_V5_4:${a}`, {
      extra: ['--socket', bSocket, '--device', `@vfiokit/gvt-g:i915-GVTg_V5_4:${b}`],
    });
    const running = server;
    await expect.poll(() => running.stdout.match(/serving /g)?.length ?? 0, { timeout: 30_000 }).toBe(2);
    expect(running.stdout).toContain(`vfiokit serve: ${a}: serving ${a} on ${running.socketPath}\n`);
    expect(running.stdout).toContain(`vfiokit serve: ${b}: serving ${b} on ${bSocket}\n`);
    const clients = [await connectVfioUser(running.socketPath), await connectVfioUser(bSocket)];
    // vgt_if at 0x78000 in BAR0: mappable base/size, hidden base/size, fence count.
    const ranges = clients.map((c) => {
      c.write(VFIO_PCI_CONFIG_REGION_INDEX, 0x04, new Uint8Array([0x06, 0x00])); // memory decode
      const rd = (offset: number) => {
        const word = new Uint8Array(4);
        c.read(0, 0x78000 + offset, word);
        return new DataView(word.buffer).getUint32(0, true);
      };
      return {
        magic: (BigInt(rd(4)) << 32n) | BigInt(rd(0)),
        low: [rd(0x40), rd(0x44)],
        high: [rd(0x48), rd(0x4c)],
      };
    });
    const overlap = ([b1, s1]: number[], [b2, s2]: number[]) => b1 < b2 + s2 && b2 < b1 + s1;
    for (const r of ranges) expect(r.magic).toBe(0x4776544776544776n); // VGT_MAGIC
    expect(ranges[0].low[1]).toBe(128 << 20);
    expect(overlap(ranges[0].low, ranges[1].low)).toBe(false);
    expect(overlap(ranges[0].high, ranges[1].high)).toBe(false);
    for (const c of clients) c.disconnect();
    const exit = await running.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(existsSync(bSocket)).toBe(false);
    expect(running.stdout).toContain(`vfiokit serve: stopped; ${bSocket} is removed.\n`);
    expect(running.stderr).toBe('');
    server = undefined;
  });

  it('serves devices of two plugins from one process, each probed once', async () => {
    const gvtSocket = join(work, 'gvt.sock');
    server = await ServeProcess.start(`${MTTY}:mtty-2`, {
      extra: ['--socket', gvtSocket, '--device', '@vfiokit/gvt-g:i915-GVTg_V5_8'],
    });
    const running = server;
    await expect.poll(() => running.stdout.match(/serving /g)?.length ?? 0, { timeout: 30_000 }).toBe(2);
    const [mtty, vgpu] = [await connectVfioUser(running.socketPath), await connectVfioUser(gvtSocket)];
    const vendor = (c: typeof mtty) => {
      const id = new Uint8Array(2);
      c.read(VFIO_PCI_CONFIG_REGION_INDEX, 0, id);
      return id[0] | (id[1] << 8);
    };
    expect([vendor(mtty), vendor(vgpu)]).toEqual([0x4348, 0x8086]);
    mtty.disconnect();
    vgpu.disconnect();
    expect(await running.stop()).toEqual({ code: 0, signal: null });
    expect(existsSync(gvtSocket)).toBe(false);
    server = undefined;
  });

  it('stops the devices already serving when a later socket is in use, and removes them', async () => {
    const other = await ServeProcess.start(`${MTTY}:mtty-1`);
    try {
      const first = join(work, 'first.sock');
      const r = await cli([
        'serve',
        '--socket',
        first,
        '--device',
        `${MTTY}:mtty-1`,
        '--socket',
        other.socketPath,
        '--device',
        `${MTTY}:mtty-1`,
      ]);
      expect(r.code).toBe(1);
      expect(r.err).toContain(
        `vfiokit serve: the socket path ${other.socketPath} is in use: a server already listens there.`,
      );
      expect(existsSync(first)).toBe(false);
      const client = await connectVfioUser(other.socketPath);
      expect(client.connected).toBe(true);
      client.disconnect();
    } finally {
      await other.stop();
    }
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`exits 0 on ${signal}, ending the client's session and removing the socket`, async () => {
      server = await ServeProcess.start(`${MTTY}:mtty-2:83b8f4f2-509f-382f-3c1e-e6bfe0fa1001`);
      expect(server.stdout).toBe(
        `vfiokit serve: serving 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 on ${server.socketPath}\n`,
      );
      const client = await connectVfioUser(server.socketPath);
      expect(client.connected).toBe(true);
      const socketPath = server.socketPath;
      const exit = await server.stop(signal);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(existsSync(socketPath)).toBe(false);
      expect(server.stdout).toContain(`vfiokit serve: stopped; ${socketPath} is removed.\n`);
      expect(server.stderr).toBe('');
      await expect.poll(() => client.connected, { timeout: 5000 }).toBe(false);
      client.disconnect();
      server = undefined;
    });
  }
});

describe('the serve and --device parsers', () => {
  const word = fc.stringMatching(/^[a-z@/._-][a-z0-9@/._-]{0,20}$/);

  it('parses plugin:type[:uuid] back to what was written', () => {
    fc.assert(
      fc.property(
        word,
        word,
        fc.option(fc.uuid({ version: 4 }), { nil: undefined }),
        (plugin, type, uuid) => {
          const text = uuid === undefined ? `${plugin}:${type}` : `${plugin}:${type}:${uuid}`;
          expect(parseServeDevice(text)).toEqual({ plugin, type, ...(uuid ? { uuid } : {}) });
        },
      ),
    );
  });

  it('never throws anything but VfioError for any device spec, option or vfio-user flag', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (text) => {
        for (const parse of [
          () => parseServeDevice(text),
          () => parsePluginOptions([text]),
          () => parseDeviceFlag(`vfio-user:${text}`, 0, 'run'),
        ]) {
          try {
            parse();
          } catch (err) {
            expect(err).toBeInstanceOf(VfioError);
          }
        }
      }),
    );
  });

  it('types plugin options as YAML reads plain scalars', () => {
    expect(
      parsePluginOptions(['a=1', 'b=-2.5', 'c=true', 'd=false', 'e=T4-4C', 'f=', 'g=x=y', 'h=007']),
    ).toEqual({
      a: 1,
      b: -2.5,
      c: true,
      d: false,
      e: 'T4-4C',
      f: '',
      g: 'x=y',
      h: '007',
    });
  });

  it('reads vfio-user:<socket>[@slot] with the slot after the last @', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^\/[a-z0-9@._/-]{1,30}$/),
        fc.integer({ min: 1, max: 31 }),
        (socket, device) => {
          const slot = `00:${device.toString(16).padStart(2, '0')}.0`;
          const d = parseDeviceFlag(`vfio-user:${socket}@${slot}`, 0, 'run');
          expect(d).toMatchObject({ kind: 'vfio-user', socket, slot: { bus: 0, device, function: 0 } });
        },
      ),
    );
    const noSlot = parseDeviceFlag('vfio-user:/run/x.sock', 0, 'run');
    expect(noSlot.kind).toBe('vfio-user');
    expect(noSlot.socket).toBe('/run/x.sock');
    expect(noSlot.slot).toBeUndefined();
  });
});
