/**
 * A device served by `vfiokit serve` in another process, attached to the reference VMM through
 * a `vfio-user:` device: the probe finds it, mtty's 8250 driver passes as it does in process,
 * guest RAM is a memfd the server maps, and interrupts arrive through real eventfds.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boot } from '../src/cli/boot.js';
import { bufferIo } from '../src/cli/io.js';
import { main } from '../src/cli/main.js';
import { loadConfigFile } from '../src/config/index.js';
import { allocateMemfdGuestRam, createLogger } from '../src/loader/index.js';
import { Machine } from '../src/machine/index.js';
import { MTTY, ServeProcess } from './vfio-user-fixtures.js';

let server: ServeProcess;
let work: string;

beforeAll(async () => {
  server = await ServeProcess.start(`${MTTY}:mtty-2`);
  work = mkdtempSync(join(tmpdir(), 'vfiokit-attach-'));
}, 60_000);

afterAll(async () => {
  await server?.kill();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function cli(argv: string[]) {
  const io = bufferIo({ cwd: work, env: {} });
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err() };
}

interface JsonDevice {
  slot: string;
  vendorId: number;
  deviceId: number;
  classCode: number;
  regions: { index: number; size: number; mapping: string; guestAddress: number | null; parts: unknown[] }[];
  access: unknown[];
  interrupts: { mode: string; intxVector: number | null; total: number };
}

function deviceAt(j: { report: { devices: JsonDevice[] } }, slot: string): JsonDevice {
  const d = j.report.devices.find((x) => x.slot === slot);
  if (!d) throw new Error(`no device at ${slot}`);
  return d;
}

describe('a vfio-user device in the reference VMM', () => {
  it('runs the mtty 8250 driver against a served mtty exactly as against the in-process one', async () => {
    const served = await cli([
      'run',
      '--json',
      '--plugin',
      MTTY,
      '--device',
      `vfio-user:${server.socketPath}@00:05.0`,
    ]);
    expect(served.err).toBe('');
    expect(served.code).toBe(0);
    const local = await cli(['run', '--json', '--device', `${MTTY}:mtty-2@00:05.0`]);
    expect(local.code).toBe(0);
    const s = JSON.parse(served.out);
    const l = JSON.parse(local.out);
    expect(s.outcome).toEqual({ driversOk: 1, driversFailed: 0, deviceErrors: 0, ok: true });
    expect(s.drivers).toEqual(l.drivers);
    expect(s.remote).toEqual([{ slot: '00:05.0', transport: 'vfio-user', socket: server.socketPath }]);
    expect(s.devices).toEqual([]);
    const sd = deviceAt(s, '0000:00:05.0');
    const ld = deviceAt(l, '0000:00:05.0');
    // Same identity, same BARs at the same addresses, the same trapped accesses one by one.
    expect([sd.vendorId, sd.deviceId, sd.classCode]).toEqual([ld.vendorId, ld.deviceId, ld.classCode]);
    expect(sd.regions).toEqual(ld.regions);
    expect(sd.access).toEqual(ld.access);
    expect(sd.interrupts.mode).toBe('intx');
    expect(sd.interrupts.intxVector).toBe(ld.interrupts.intxVector);
    expect(sd.interrupts.total).toBeGreaterThanOrEqual(1);
  });

  it('marks the transport of each device in the text report', async () => {
    const r = await cli([
      'run',
      '--plugin',
      MTTY,
      '--device',
      `${MTTY}:mtty-1@00:04.0`,
      '--device',
      `vfio-user:${server.socketPath}@00:05.0`,
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/0000:00:04\.0 mtty-1 [0-9a-f]{8} .*\n(?: {4}.*\n)*? {4}transport: in-process\n/);
    expect(r.out).toMatch(
      /0000:00:05\.0 vfio-user dev\.sock {2}4348:3253 class 070002 {2}served elsewhere, vfio-user:.*dev\.sock\n/,
    );
    expect(r.out).toContain(`    transport: vfio-user, socket ${server.socketPath}\n`);
    expect(r.out).toMatch(/Result: ok: 2 driver runs ok, 0 failed, 0 device errors\.\n$/);
  });

  it('shows the served function to the guest as lspci shows the in-process one', async () => {
    const served = await cli([
      'lspci',
      '-vv',
      '-nn',
      '--plugin',
      MTTY,
      '--device',
      `vfio-user:${server.socketPath}@00:05.0`,
    ]);
    const local = await cli(['lspci', '-vv', '-nn', '--device', `${MTTY}:mtty-2@00:05.0`]);
    expect(served.code).toBe(0);
    expect(served.out).toContain('00:05.0 Serial controller [0700]');
    expect(served.out).toBe(local.out);
  });

  it('attaches a vfioUser entry of a configuration file with memfd guest RAM that the server maps', async () => {
    const file = join(work, 'vm.yaml');
    writeFileSync(
      file,
      `plugins:\n  - package: '${MTTY}'\nmachine:\n  ramSize: 64M\ndevices:\n  - vfioUser: '${server.socketPath}'\n    slot: '00:06.0'\n`,
    );
    const config = await loadConfigFile(file);
    const eventfdsBefore = server.eventfds();
    const booted = await boot(config, { cwd: work, log: createLogger(() => {}) });
    try {
      expect(booted.remote.map((r) => r.socketPath)).toEqual([server.socketPath]);
      expect(booted.machine.ram.memory.fd).toBeTypeOf('number');
      // DMA_MAP carried the fd: the server process maps guest RAM's memfd.
      expect(server.maps()).toContain('/memfd:vfiokit-guest-ram');
      const probed = await booted.machine.probe();
      expect(probed.map((d) => [d.address.device, d.vendorId, d.deviceId])).toEqual([
        [0, 0x8086, 0x29c0],
        [6, 0x4348, 0x3253],
      ]);
      const runs = await booted.machine.runDrivers(
        booted.plugins.flatMap((p) => [...(p.plugin.guestDrivers ?? [])]),
      );
      expect(runs.map((r) => r.ok)).toEqual([true]);
      // SET_IRQS handed the server a real eventfd for INTx; its signals are what the guest counted.
      expect(server.eventfds()).toBeGreaterThan(eventfdsBefore);
      const report = booted.machine.report();
      expect(report.devices[1].interrupts.total).toBeGreaterThanOrEqual(1);
      expect(report.interrupts.total).toBe(report.devices[1].interrupts.total);
    } finally {
      expect(booted.shutdown()).toEqual([]);
    }
    // The session ended; the server is ready for the next client.
    const again = await cli(['run', '--plugin', MTTY, '--device', `vfio-user:${server.socketPath}@00:05.0`]);
    expect(again.code).toBe(0);
  });

  it('refuses a vfio-user device whose socket nobody serves, naming the entry and the socket', async () => {
    const missing = join(work, 'nobody.sock');
    const r = await cli(['run', '--device', `vfio-user:${missing}@00:05.0`]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      `vfiokit run: command line --device #1: the vfio-user device at 00:05.0 cannot be attached from ${missing}:`,
    );
    expect(r.err).toContain('vfiokit serve --socket');
  });

  it('refuses a vfio-user --device with a slot that is not an address, with one sentence and exit 2', async () => {
    const r = await cli(['run', '--device', 'vfio-user:/tmp/x.sock@00:5']);
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toBe(
      'vfiokit run: --device "vfio-user:/tmp/x.sock@00:5" has slot "00:5", which is not a bus:device.function address such as 00:05.0.',
    );
    const empty = await cli(['run', '--device', 'vfio-user:@00:05.0']);
    expect(empty.code).toBe(2);
    expect(empty.err.split('\n')[0]).toContain('names no socket');
  });

  it('backs guest RAM with what allocateRam returns, and refuses memory of another size', () => {
    const ram = allocateMemfdGuestRam(4 * 2 ** 20);
    const machine = new Machine({ ramSize: 4 * 2 ** 20, allocateRam: () => ram });
    try {
      expect(machine.ram.memory.fd).toBe(ram.fd);
      machine.guest.ram.write(0x20_0000, Uint8Array.of(1, 2, 3));
      expect([...ram.bytes.subarray(0x20_0000, 0x20_0003)]).toEqual([1, 2, 3]);
    } finally {
      machine.close();
      ram.close();
    }
    const short = allocateMemfdGuestRam(2 * 2 ** 20);
    expect(() => new Machine({ ramSize: 4 * 2 ** 20, allocateRam: () => short })).toThrow(
      'the guest RAM allocator returned 2097152 bytes where 4194304 were asked.',
    );
    short.close();
  });
});
