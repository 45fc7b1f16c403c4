/**
 * The rendezvous of guests that run at once, and the suite fields that set them up: a meeting
 * is answered once every running guest has met it (one that exited counts as arrived), a wait
 * once the host released it, and nothing else a guest writes moves either. Devices with one
 * `server` are one `vfiokit serve`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serverGroups } from '../src/run/boot.js';
import { type Rendezvous, startRendezvous } from '../src/run/rendezvous.js';
import { defineSuite, type GuestBoot } from '../src/suite.js';

let dir: string | undefined;
let rv: Rendezvous | undefined;
afterEach(async () => {
  await rv?.close();
  rv = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A guest's end of the port: what it was answered so far. */
async function guest(path: string): Promise<{ sock: Socket; said: () => string }> {
  const sock = connect(path);
  let said = '';
  sock.setEncoding('utf8').on('data', (s: string) => (said += s));
  await new Promise<void>((r) => sock.once('connect', () => r()));
  return { sock, said: () => said };
}

const settle = () => new Promise((r) => setTimeout(r, 50));

async function two() {
  dir = mkdtempSync(join(tmpdir(), 'vfkg-rv-'));
  rv = await startRendezvous(join(dir, 'sync.sock'));
  rv.guestStarted();
  rv.guestStarted();
  return [await guest(rv.socketPath), await guest(rv.socketPath)] as const;
}

describe('the rendezvous', () => {
  it('answers a meeting once both guests met it, and only then', async () => {
    const [a, b] = await two();
    a.sock.write('meet written\n');
    await settle();
    expect(a.said()).toBe('');
    b.sock.write('meet other\r\n');
    await settle();
    expect(a.said()).toBe('');
    b.sock.write('meet written\n');
    await expect.poll(() => a.said()).toBe('go written\n');
    await expect.poll(() => b.said()).toBe('go written\n');
    a.sock.destroy();
    b.sock.destroy();
  });

  it('counts a guest that exited as arrived', async () => {
    const [a, b] = await two();
    b.sock.write('meet checked\n');
    await settle();
    expect(b.said()).toBe('');
    a.sock.destroy();
    rv!.guestExited();
    await expect.poll(() => b.said()).toBe('go checked\n');
    b.sock.destroy();
  });

  it('answers a wait only when the host releases it, and a later wait at once', async () => {
    const [a, b] = await two();
    b.sock.write('wait a-reset\n');
    a.sock.write('meet a-reset\n');
    await settle();
    expect(b.said()).toBe('');
    rv!.release('a-reset');
    await expect.poll(() => b.said()).toBe('go a-reset\n');
    b.sock.write('wait a-reset\n');
    await expect.poll(() => b.said()).toBe('go a-reset\ngo a-reset\n');
    expect(rv!.reached().get('a-reset')).toBe(3);
    a.sock.destroy();
    b.sock.destroy();
  });

  it('ignores lines that are not a meeting or a wait of one word', async () => {
    const [a, b] = await two();
    for (const line of ['hello', 'meet', 'meet two words', 'wait $(x)', 'go written', '\u0000\u00ff'])
      a.sock.write(`${line}\n`);
    await settle();
    rv!.release('x');
    b.sock.write('meet written\n');
    await settle();
    expect(a.said()).toBe('');
    expect(b.said()).toBe('');
    a.sock.destroy();
    b.sock.destroy();
  });
});

describe('guests at once in a suite', () => {
  const dev = (id: string, addr: string, extra = {}) => ({ id, device: 'p:t', addr, ...extra });
  const boot = (b: Partial<GuestBoot>): GuestBoot => ({
    name: 'x',
    devices: [dev('a', '05.0', { server: 's' }), dev('b', '06.0', { server: 's' }), dev('c', '07.0')],
    checks: [{ name: 'c', host: () => undefined }],
    ...b,
  });
  const suite = (b: Partial<GuestBoot>) => () => defineSuite({ name: 's', boots: [boot(b)] });

  it('serve the devices of one server name in one process, the rest one each', () => {
    expect(serverGroups(boot({})).map((g) => [g.name, g.devices.map((d) => d.id)])).toEqual([
      ['s', ['a', 'b']],
      ['c', ['c']],
    ]);
  });

  it('refuse attaching a device the boot does not have, bad companion names and mismatched servers', () => {
    expect(suite({ attach: ['a'], companions: [{ name: 'b', attach: ['b'] }] })).not.toThrow();
    expect(suite({ attach: ['z'] })).toThrow('it attaches "z", which is not one of its devices.');
    expect(suite({ companions: [{ name: 'b', attach: ['q'] }] })).toThrow('it attaches "q"');
    expect(
      suite({
        companions: [
          { name: 'b', attach: ['b'] },
          { name: 'b', attach: ['c'] },
        ],
      }),
    ).toThrow('companion "b" is not a unique lower-case name.');
    expect(
      suite({
        devices: [dev('a', '05.0', { server: 's' }), dev('b', '06.0', { server: 's', serveArgs: ['-x'] })],
      }),
    ).toThrow('devices "a" and "b" share server "s" but not their plugin options and serve arguments.');
  });
});
