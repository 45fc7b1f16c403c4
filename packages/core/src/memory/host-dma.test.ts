import { describe, expect, it } from 'vitest';
import { VfioError } from '../errors.js';
import { DirtyTracker } from './dirty.js';
import { HostDma } from './host-dma.js';
import { IovaMap } from './iova-map.js';

const PAGE = 4096;

function setup() {
  const map = new IovaMap();
  const ram = new Uint8Array(8 * PAGE);
  map.map({ iova: 0x100000, size: 4 * PAGE, read: true, write: true, memory: ram });
  map.map({ iova: 0x104000, size: 2 * PAGE, read: true, write: false, memory: ram, memoryOffset: 4 * PAGE });
  const dirty = new DirtyTracker();
  const dma = new HostDma({ map, dirty, device: 'vgpu0' });
  return { map, ram, dirty, dma };
}

describe('HostDma read/write', () => {
  it('reads and writes guest memory through the IOVA map', () => {
    const { dma, ram } = setup();
    dma.write(0x100010, Uint8Array.of(1, 2, 3));
    expect(Array.from(ram.subarray(0x10, 0x13))).toEqual([1, 2, 3]);
    const dst = new Uint8Array(3);
    dma.read(0x100010, dst);
    expect(Array.from(dst)).toEqual([1, 2, 3]);
  });

  it('faults with EFAULT naming the device, and copies nothing', () => {
    const { dma, ram } = setup();
    expect(() => dma.write(0x104000, Uint8Array.of(9))).toThrow(/EFAULT: device vgpu0: .*IOVA 0x104000/);
    expect(() => dma.read(0x200000, new Uint8Array(1))).toThrow(VfioError);
    expect(ram[4 * PAGE]).toBe(0);
  });

  it('marks device writes dirty while logging runs, and only then', () => {
    const { dma, dirty } = setup();
    dma.write(0x100000, Uint8Array.of(1));
    dirty.start(PAGE, [{ iova: 0x100000, length: 6 * PAGE }]);
    expect(dirty.isDirty(0x100000)).toBe(false);
    dma.write(0x101ffe, Uint8Array.of(1, 2, 3, 4));
    expect(dirty.isDirty(0x101000)).toBe(true);
    expect(dirty.isDirty(0x102000)).toBe(true);
    expect(dirty.isDirty(0x103000)).toBe(false);
    // A faulting write marks nothing.
    expect(() => dma.write(0x104000, Uint8Array.of(1))).toThrow(VfioError);
    expect(dirty.isDirty(0x104000)).toBe(false);
    dma.markDirty(0x103000, 1);
    expect(dirty.isDirty(0x103000)).toBe(true);
  });

  it('works without a dirty tracker', () => {
    const map = new IovaMap();
    map.map({ iova: 0, size: PAGE, read: true, write: true, memory: new Uint8Array(PAGE) });
    const dma = new HostDma({ map });
    dma.write(0, Uint8Array.of(1));
    dma.markDirty(0, 1);
    expect(dma.dirty).toBeUndefined();
  });
});

describe('HostDma pin', () => {
  it('returns a live view of the pinned guest memory', () => {
    const { dma, ram } = setup();
    const pin = dma.pin(0x100100, 16, true);
    expect(pin.iova).toBe(0x100100);
    expect(pin.length).toBe(16);
    pin.bytes![0] = 0x5a;
    expect(ram[0x100]).toBe(0x5a);
    expect(dma.pinCount).toBe(1);
    pin.unpin();
    pin.unpin();
    expect(dma.pinCount).toBe(0);
  });

  it('refuses pins outside one mapping or without the needed permission with EFAULT', () => {
    const { dma } = setup();
    expect(() => dma.pin(0x200000, 16, false)).toThrow(/EFAULT/);
    expect(() => dma.pin(0x103ff0, 32, false)).toThrow(/EFAULT/);
    expect(() => dma.pin(0x104000, 16, true)).toThrow(/EFAULT/);
    expect(dma.pin(0x104000, 16, false).bytes?.length).toBe(16);
  });

  it('refuses an empty pin with EINVAL', () => {
    const { dma } = setup();
    expect(() => dma.pin(0x100000, 0, false)).toThrow(/EINVAL/);
  });

  it('calls onUnmap before the mapping goes, then drops the pin', () => {
    const { dma, map } = setup();
    const pin = dma.pin(0x101000, 8, false);
    const other = dma.pin(0x104000, 8, false);
    const events: string[] = [];
    pin.onUnmap = () => events.push(`unmap while mapped=${map.find(0x101000) !== undefined}`);
    other.onUnmap = () => events.push('wrong pin');
    expect(map.unmap(0x100000, 4 * PAGE)).toBe(4 * PAGE);
    expect(events).toEqual(['unmap while mapped=true']);
    expect(dma.pinCount).toBe(1);
  });

  it('lets the device unpin from inside its onUnmap callback', () => {
    const { dma, map } = setup();
    const pin = dma.pin(0x101000, 8, false);
    pin.onUnmap = () => pin.unpin();
    map.unmapAll();
    expect(dma.pinCount).toBe(0);
  });

  it('reports an onUnmap failure after the unmap completed', () => {
    const { dma, map } = setup();
    const pin = dma.pin(0x101000, 8, false);
    pin.onUnmap = () => {
      throw new VfioError('EBUSY', 'still using it.');
    };
    expect(() => map.unmap(0x100000, 4 * PAGE)).toThrow(/EBUSY/);
    expect(map.find(0x100000)).toBeUndefined();
    expect(dma.pinCount).toBe(0);
  });

  it('follows unmaps for pins made at any time, each device for its own pins only', () => {
    const { map } = setup();
    // Many devices on one map; only two ever pin, one of them long after the others were made and disposed.
    const devices = Array.from({ length: 50 }, (_, i) => new HostDma({ map, device: `dev${i}` }));
    for (let i = 0; i < 5; i++) devices[i].dispose();
    const heard: string[] = [];
    const a = devices[7].pin(0x101000, 8, false);
    a.onUnmap = () => heard.push('dev7 in range');
    const outside = devices[7].pin(0x104000, 8, false);
    outside.onUnmap = () => heard.push('dev7 outside');
    const later = new HostDma({ map, device: 'later' });
    const b = later.pin(0x102000, 16, true);
    b.onUnmap = () => heard.push('later in range');
    a.unpin();
    // A pin made after the device's earlier pins went still hears its unmap.
    const c = devices[7].pin(0x100000, 4, true);
    c.onUnmap = () => heard.push('dev7 again');
    expect(map.unmap(0x100000, 4 * PAGE)).toBe(4 * PAGE);
    expect(heard.sort()).toEqual(['dev7 again', 'later in range']);
    expect(devices[7].pinCount).toBe(1);
    expect(later.pinCount).toBe(0);
    // A disposed device's pins hear nothing more; the other device still follows its pins.
    devices[7].dispose();
    expect(devices[7].pinCount).toBe(0);
    const d = devices[30].pin(0x104000, 4, false);
    d.onUnmap = () => heard.push('dev30');
    map.unmapAll();
    expect(heard.sort()).toEqual(['dev30', 'dev7 again', 'later in range']);
  });

  it('dispose drops pins and stops following unmaps', () => {
    const { dma, map } = setup();
    const pin = dma.pin(0x101000, 8, false);
    let called = false;
    pin.onUnmap = () => {
      called = true;
    };
    dma.dispose();
    expect(dma.pinCount).toBe(0);
    map.unmapAll();
    expect(called).toBe(false);
  });
});

describe('HostDma mappings without memory in this process', () => {
  function remoteSetup() {
    const map = new IovaMap();
    const local = new Uint8Array(2 * PAGE);
    const far = new Uint8Array(2 * PAGE);
    map.map({ iova: 0, size: 2 * PAGE, read: true, write: true, memory: local });
    map.map({
      iova: 2 * PAGE,
      size: 2 * PAGE,
      read: true,
      write: true,
      memory: new Uint8Array(0),
      remote: true,
    });
    const calls: string[] = [];
    const dirty = new DirtyTracker();
    const dma = new HostDma({
      map,
      dirty,
      device: 'vgpu0',
      remote: {
        read: async (iova, dst) => {
          calls.push(`read ${iova.toString(16)}+${dst.length}`);
          dst.set(far.subarray(iova - 2 * PAGE, iova - 2 * PAGE + dst.length));
        },
        write: async (iova, src) => {
          calls.push(`write ${iova.toString(16)}+${src.length}`);
          far.set(src, iova - 2 * PAGE);
        },
      },
    });
    return { map, local, far, dma, calls, dirty };
  }

  it('maps a remote range without memory and applies the overlap rule to it', () => {
    const { map } = remoteSetup();
    expect(map.find(3 * PAGE)?.remote).toBe(true);
    expect(() =>
      map.map({ iova: 3 * PAGE, size: PAGE, read: true, write: true, memory: new Uint8Array(PAGE) }),
    ).toThrow(/EEXIST/);
    expect(map.unmap(2 * PAGE, 2 * PAGE)).toBe(2 * PAGE);
  });

  it('faults synchronous reads, writes and pins of a remote mapping with EFAULT naming the async form', () => {
    const { dma } = remoteSetup();
    expect(() => dma.read(2 * PAGE, new Uint8Array(4))).toThrow(
      /EFAULT: device vgpu0: .*without an fd.*readAsync/,
    );
    expect(() => dma.write(PAGE * 2 - 2, new Uint8Array(4))).toThrow(/EFAULT.*writeAsync/);
    expect(() => dma.pin(2 * PAGE, 8, false)).toThrow(/EFAULT/);
  });

  it('readAsync and writeAsync reach local and remote parts of one range in order', async () => {
    const { dma, local, far, calls, dirty } = remoteSetup();
    dirty.start(PAGE, [{ iova: 0, length: 4 * PAGE }]);
    const src = Uint8Array.from({ length: 8 }, (_, i) => i + 1);
    await dma.writeAsync(2 * PAGE - 4, src);
    expect(Array.from(local.subarray(2 * PAGE - 4))).toEqual([1, 2, 3, 4]);
    expect(Array.from(far.subarray(0, 4))).toEqual([5, 6, 7, 8]);
    expect(dirty.isDirty(2 * PAGE)).toBe(true);
    const dst = new Uint8Array(8);
    await dma.readAsync(2 * PAGE - 4, dst);
    expect(Array.from(dst)).toEqual(Array.from(src));
    expect(calls).toEqual(['write 2000+4', 'read 2000+4']);
  });

  it('readAsync of local memory copies without any message', async () => {
    const { dma, local, calls } = remoteSetup();
    local[5] = 9;
    const dst = new Uint8Array(1);
    await dma.readAsync(5, dst);
    expect(dst[0]).toBe(9);
    expect(calls).toEqual([]);
  });

  it('readAsync rejects an unmapped range with EFAULT and sends nothing', async () => {
    const { dma, calls } = remoteSetup();
    await expect(dma.readAsync(3 * PAGE, new Uint8Array(2 * PAGE))).rejects.toThrow(/EFAULT/);
    await expect(dma.writeAsync(8 * PAGE, new Uint8Array(1))).rejects.toThrow(VfioError);
    expect(calls).toEqual([]);
  });

  it('without a remote transport the async forms fault with EFAULT', async () => {
    const map = new IovaMap();
    map.map({ iova: 0, size: PAGE, read: true, write: true, memory: new Uint8Array(0), remote: true });
    const dma = new HostDma({ map });
    await expect(dma.readAsync(0, new Uint8Array(1))).rejects.toThrow(/EFAULT.*no way to reach it/);
  });
});

describe('HostDma.watch', () => {
  it('reports the mappings there are, each later one, and each removal before it goes', () => {
    const dma = new HostDma();
    const mem = new Uint8Array(0x3000);
    dma.map.map({ iova: 0, size: 0x1000, read: true, write: true, memory: mem });
    const seen: string[] = [];
    const stop = dma.watch({
      mapped: (m) => seen.push(`map ${m.iova} ${m.size} ${m.memory.length} ${m.remote}`),
      unmapped: (iova, size) => seen.push(`unmap ${iova} ${size}`),
    });
    dma.map.map({ iova: 0x1000, size: 0x1000, read: true, write: false, memory: mem, memoryOffset: 0x2000 });
    dma.map.map({
      iova: 0x8000,
      size: 0x1000,
      read: true,
      write: true,
      memory: new Uint8Array(0),
      remote: true,
    });
    dma.map.unmap(0, 0x2000);
    stop();
    dma.map.unmap(0x8000, 0x1000);
    expect(seen).toEqual([
      'map 0 4096 4096 false',
      'map 4096 4096 4096 false',
      'map 32768 4096 0 true',
      'unmap 0 4096',
      'unmap 4096 4096',
    ]);
  });
});
