import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PCI_CAPABILITY_LIST, PCI_STATUS, PCI_STATUS_CAP_LIST } from './constants.js';
import {
  CapabilityWalk,
  type ConfigReader,
  ExtendedCapabilityWalk,
  findCapability,
  walkCapabilities,
  walkExtendedCapabilities,
} from './walk.js';

/** Raw configuration bytes with STATUS.CAP_LIST set and the given [offset, id, next] entries. */
function standard(first: number, entries: [number, number, number][], size = 256): Uint8Array {
  const b = new Uint8Array(size);
  b[PCI_STATUS] = PCI_STATUS_CAP_LIST;
  b[PCI_CAPABILITY_LIST] = first;
  for (const [off, id, next] of entries) {
    b[off] = id;
    b[off + 1] = next;
  }
  return b;
}

function extended(entries: [number, number, number, number][]): Uint8Array {
  const b = new Uint8Array(4096);
  const v = new DataView(b.buffer);
  for (const [off, id, version, next] of entries)
    v.setUint32(off, (id | (version << 16) | (next << 20)) >>> 0, true);
  return b;
}

const reader8 = (b: Uint8Array) => (o: number) => b[o];
const reader32 = (b: Uint8Array) => {
  const v = new DataView(b.buffer);
  return (o: number) => v.getUint32(o, true);
};

describe('walkCapabilities', () => {
  it('follows the list from 0x34 through each next pointer', () => {
    const b = standard(0x40, [
      [0x40, 0x01, 0x60],
      [0x60, 0x05, 0x50],
      [0x50, 0x11, 0x00],
    ]);
    expect(walkCapabilities(reader8(b), 256)).toEqual({
      ok: true,
      capabilities: [
        { id: 0x01, offset: 0x40 },
        { id: 0x05, offset: 0x60 },
        { id: 0x11, offset: 0x50 },
      ],
    });
  });

  it('reports a looping list given as raw bytes, and where it loops', () => {
    const b = standard(0x40, [
      [0x40, 0x01, 0x48],
      [0x48, 0x05, 0x40],
    ]);
    expect(walkCapabilities(reader8(b), 256)).toEqual({
      ok: false,
      reason: 'loop',
      at: 0x40,
      from: 0x49,
      capabilities: [
        { id: 0x01, offset: 0x40 },
        { id: 0x05, offset: 0x48 },
      ],
    });
  });

  it('reports a capability that points at itself as a loop', () => {
    const b = standard(0x80, [[0x80, 0x09, 0x80]]);
    expect(walkCapabilities(reader8(b), 256)).toMatchObject({
      ok: false,
      reason: 'loop',
      at: 0x80,
      from: 0x81,
    });
  });

  it('reports a misaligned pointer', () => {
    const b = standard(0x40, [[0x40, 0x01, 0x45]]);
    expect(walkCapabilities(reader8(b), 256)).toMatchObject({
      ok: false,
      reason: 'misaligned',
      at: 0x45,
      from: 0x41,
    });
    expect(walkCapabilities(reader8(standard(0x42, [])), 256)).toMatchObject({
      ok: false,
      reason: 'misaligned',
      at: 0x42,
      from: PCI_CAPABILITY_LIST,
    });
  });

  it('reports pointers into the header or past the end as out of range', () => {
    expect(walkCapabilities(reader8(standard(0x3c, [])), 256)).toMatchObject({
      ok: false,
      reason: 'out-of-range',
      at: 0x3c,
    });
    const b = standard(0x40, [[0x40, 0x01, 0xfc]], 256);
    expect(walkCapabilities(reader8(b), 0xfd)).toMatchObject({
      ok: false,
      reason: 'out-of-range',
      at: 0xfc,
      from: 0x41,
    });
  });

  it('answers an empty list when STATUS.CAP_LIST is clear or the pointer is 0', () => {
    const b = standard(0x40, [[0x40, 0x01, 0x00]]);
    b[PCI_STATUS] = 0;
    expect(walkCapabilities(reader8(b), 256)).toEqual({ ok: true, capabilities: [] });
    expect(walkCapabilities(reader8(standard(0, [])), 256)).toEqual({ ok: true, capabilities: [] });
    expect(walkCapabilities(reader8(new Uint8Array(16)), 16)).toEqual({ ok: true, capabilities: [] });
  });

  it('never throws, terminates and reads only inside the space for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 256, maxLength: 256 }), (b) => {
        b[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
        let reads = 0;
        const result = walkCapabilities((o) => {
          reads++;
          if (o < 0 || o >= 256) throw new Error(`read outside at ${o}`);
          return b[o];
        }, 256);
        const offsets = result.capabilities.map((c) => c.offset);
        return (
          reads <= 2 + 2 * 48 &&
          new Set(offsets).size === offsets.length &&
          offsets.every((o) => o >= 0x40 && o <= 0xfc && (o & 3) === 0)
        );
      }),
      { numRuns: 500 },
    );
  });

  it('finds every list built from distinct aligned offsets', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0x10, max: 0x3f }), { maxLength: 48 }), (slots) => {
        const offsets = slots.map((s) => s * 4);
        const b = standard(
          offsets[0] ?? 0,
          offsets.map((o, i) => [o, i & 0xff, offsets[i + 1] ?? 0]),
        );
        const result = walkCapabilities(reader8(b), 256);
        return result.ok && result.capabilities.map((c) => c.offset).join() === offsets.join();
      }),
    );
  });
});

describe('walkExtendedCapabilities', () => {
  it('follows the 32-bit headers from 0x100 with id, version and next', () => {
    const b = extended([
      [0x100, 0x0001, 2, 0x148],
      [0x148, 0x000b, 1, 0x200],
      [0x200, 0x0023, 1, 0],
    ]);
    expect(walkExtendedCapabilities(reader32(b), 4096)).toEqual({
      ok: true,
      capabilities: [
        { id: 0x01, version: 2, offset: 0x100 },
        { id: 0x0b, version: 1, offset: 0x148 },
        { id: 0x23, version: 1, offset: 0x200 },
      ],
    });
  });

  it('answers an empty list for a 256-byte space and for a 0 or all-ones first header', () => {
    expect(walkExtendedCapabilities(() => 0x12345678, 256)).toEqual({ ok: true, capabilities: [] });
    expect(walkExtendedCapabilities(reader32(new Uint8Array(4096)), 4096)).toEqual({
      ok: true,
      capabilities: [],
    });
    expect(walkExtendedCapabilities(() => 0xffffffff, 4096)).toEqual({ ok: true, capabilities: [] });
  });

  it('reports a loop, a misaligned next and a next below 0x100', () => {
    const loop = extended([
      [0x100, 1, 1, 0x200],
      [0x200, 2, 1, 0x100],
    ]);
    expect(walkExtendedCapabilities(reader32(loop), 4096)).toMatchObject({
      ok: false,
      reason: 'loop',
      at: 0x100,
      from: 0x200,
    });
    const misaligned = extended([[0x100, 1, 1, 0x202]]);
    expect(walkExtendedCapabilities(reader32(misaligned), 4096)).toMatchObject({
      ok: false,
      reason: 'misaligned',
      at: 0x202,
    });
    const low = extended([[0x100, 1, 1, 0x40]]);
    expect(walkExtendedCapabilities(reader32(low), 4096)).toMatchObject({
      ok: false,
      reason: 'out-of-range',
      at: 0x40,
    });
  });

  it('never throws, terminates and reads only aligned headers inside the space for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4096, maxLength: 4096 }), (b) => {
        const v = new DataView(b.buffer);
        let reads = 0;
        const result = walkExtendedCapabilities((o) => {
          reads++;
          if (o < 0x100 || o + 4 > 4096 || (o & 3) !== 0) throw new Error(`bad read at ${o}`);
          return v.getUint32(o, true);
        }, 4096);
        const offsets = result.capabilities.map((c) => c.offset);
        return reads <= 960 && new Set(offsets).size === offsets.length;
      }),
      { numRuns: 300 },
    );
  });

  it('never loops on a chain that hops through many headers', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0x40, max: 0x3ff }), { minLength: 1, maxLength: 200 }),
        (slots) => {
          const b = new Uint8Array(4096);
          const v = new DataView(b.buffer);
          let pos = 0x100;
          for (const s of slots) {
            v.setUint32(pos, (((s * 4) << 20) | 1) >>> 0, true);
            pos = s * 4;
          }
          const result = walkExtendedCapabilities((o) => v.getUint32(o, true), 4096);
          return result.capabilities.length <= 960 && (result.ok || result.reason === 'loop');
        },
      ),
    );
  });
});

/** Config bytes read through the ConfigReader a cursor takes, counting each read by its size. */
function counted(b: Uint8Array) {
  const v = new DataView(b.buffer);
  const reads = { 1: 0, 2: 0, 4: 0 };
  const reader: ConfigReader = {
    configRead(offset, size) {
      reads[size]++;
      return size === 1 ? b[offset] : size === 2 ? v.getUint16(offset, true) : v.getUint32(offset, true);
    },
  };
  return { reader, reads };
}

describe('CapabilityWalk', () => {
  it('steps through the list and reads each ID and next pointer as one word, as Linux does', () => {
    const { reader, reads } = counted(
      standard(0x40, [
        [0x40, 0x01, 0x60],
        [0x60, 0x05, 0x00],
      ]),
    );
    const w = new CapabilityWalk().begin(reader);
    const seen: [number, number][] = [];
    while (w.next()) seen.push([w.id, w.offset]);
    expect(seen).toEqual([
      [0x01, 0x40],
      [0x05, 0x60],
    ]);
    expect(w.problem).toBeUndefined();
    // STATUS and the list pointer, then one 16-bit read per capability
    expect(reads).toEqual({ 1: 2, 2: 2, 4: 0 });
  });

  it('says what ended a broken list and where, and can be reused for the next device', () => {
    const w = new CapabilityWalk();
    const looped = counted(
      standard(0x40, [
        [0x40, 0x01, 0x48],
        [0x48, 0x05, 0x40],
      ]),
    );
    let n = 0;
    for (w.begin(looped.reader); w.next(); ) n++;
    expect([n, w.problem, w.at, w.from]).toEqual([2, 'loop', 0x40, 0x49]);
    const fine = counted(standard(0x50, [[0x50, 0x10, 0x00]]));
    n = 0;
    for (w.begin(fine.reader); w.next(); ) n++;
    expect([n, w.problem, w.id]).toEqual([1, undefined, 0x10]);
  });

  it('agrees with walkCapabilities on any configuration bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 256, maxLength: 256 }), (b) => {
        const w = new CapabilityWalk().begin(counted(b).reader);
        const found: { id: number; offset: number }[] = [];
        while (w.next()) found.push({ id: w.id, offset: w.offset });
        const r = walkCapabilities((o) => b[o], 256);
        expect(found).toEqual(r.capabilities);
        expect(w.problem).toBe(r.ok ? undefined : r.reason);
      }),
    );
  });
});

describe('ExtendedCapabilityWalk', () => {
  it('steps through the extended list with each version', () => {
    const b = extended([
      [0x100, 0x0001, 2, 0x140],
      [0x140, 0x000b, 1, 0x000],
    ]);
    const { reader } = counted(b);
    const w = new ExtendedCapabilityWalk().begin(reader);
    const seen: number[][] = [];
    while (w.next()) seen.push([w.id, w.version, w.offset]);
    expect(seen).toEqual([
      [0x0001, 2, 0x100],
      [0x000b, 1, 0x140],
    ]);
  });
});

/** lib/caps.c pci_scan_trad_caps and ls-caps.c show_caps, line by line, as the model of the 'pciutils' rules. */
function pciutilsStandard(b: Uint8Array, pointer = PCI_CAPABILITY_LIST): { found: number[][]; end: string } {
  const found: number[][] = [];
  if (!(b[PCI_STATUS] & PCI_STATUS_CAP_LIST)) return { found, end: 'end' };
  const beenThere = new Uint8Array(256);
  let where = b[pointer] & ~3;
  while (where) {
    const id = b[where];
    const next = b[where + 1] & ~3;
    if (beenThere[where]++) return { found, end: `loop@${where}` };
    if (id === 0xff) return { found, end: `broken@${where}` };
    found.push([id, where]);
    where = next;
  }
  return { found, end: 'end' };
}

/** lib/caps.c pci_scan_ext_caps, as the model of the extended 'pciutils' rules. */
function pciutilsExtended(b: Uint8Array): { found: number[][]; end: string } {
  const v = new DataView(b.buffer);
  const found: number[][] = [];
  const beenThere = new Uint8Array(0x1000);
  let where = 0x100;
  do {
    const header = v.getUint32(where, true);
    if (!header || header === 0xffffffff) break;
    if (beenThere[where]++) return { found, end: `loop@${where}` };
    found.push([header & 0xffff, (header >>> 16) & 0xf, where]);
    where = (header >>> 20) & ~3;
  } while (where);
  return { found, end: 'end' };
}

describe("the 'pciutils' rules", () => {
  it('clears the low bits of each pointer, allows pointers into the header and calls ID 0xff broken', () => {
    const b = standard(0x43, [
      [0x40, 0x01, 0x11],
      [0x10, 0x05, 0x60],
      [0x60, 0xff, 0x00],
    ]);
    const w = new CapabilityWalk().begin(counted(b).reader, 256, 'pciutils');
    const seen: number[][] = [];
    while (w.next()) seen.push([w.id, w.offset]);
    expect(seen).toEqual([
      [0x01, 0x40],
      [0x05, 0x10],
    ]);
    expect([w.problem, w.at]).toEqual(['broken', 0x60]);
    // Linux's rules stop at the first misaligned pointer instead
    const linux = new CapabilityWalk().begin(counted(b).reader);
    expect([linux.next(), linux.problem, linux.at]).toEqual([false, 'misaligned', 0x43]);
  });

  it("starts at a CardBus bridge's pointer when told", () => {
    const b = standard(0x00, [[0x80, 0x0a, 0x00]]);
    b[0x14] = 0x80;
    const w = new CapabilityWalk().begin(counted(b).reader, 256, 'pciutils', 0x14);
    expect([w.next(), w.id, w.offset, w.next(), w.problem]).toEqual([true, 0x0a, 0x80, false, undefined]);
  });

  it('follows an extended next pointer below 0x100 and ends at any 0 or all-ones header', () => {
    const b = extended([
      [0x100, 0x0001, 1, 0x040],
      [0x040, 0x0003, 1, 0x200],
    ]);
    new DataView(b.buffer).setUint32(0x200, 0xffffffff, true);
    const w = new ExtendedCapabilityWalk().begin(counted(b).reader, 4096, 'pciutils');
    const seen: number[][] = [];
    while (w.next()) seen.push([w.id, w.offset]);
    expect(seen).toEqual([
      [0x0001, 0x100],
      [0x0003, 0x040],
    ]);
    expect(w.problem).toBeUndefined();
  });

  it('walks any configuration bytes exactly as pciutils does', () => {
    const w = new CapabilityWalk();
    const x = new ExtendedCapabilityWalk();
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4096, maxLength: 4096 }),
        fc.constantFrom(PCI_CAPABILITY_LIST, 0x14),
        fc.boolean(),
        (b, pointer, listed) => {
          if (listed) b[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
          const { reader } = counted(b);
          const found: number[][] = [];
          for (w.begin(reader, 256, 'pciutils', pointer); w.next(); ) found.push([w.id, w.offset]);
          const model = pciutilsStandard(b, pointer);
          expect({ found, end: w.problem === undefined ? 'end' : `${w.problem}@${w.at}` }).toEqual(model);
          const ext: number[][] = [];
          for (x.begin(reader, 4096, 'pciutils'); x.next(); ) ext.push([x.id, x.version, x.offset]);
          expect({ found: ext, end: x.problem === undefined ? 'end' : `${x.problem}@${x.at}` }).toEqual(
            pciutilsExtended(b),
          );
        },
      ),
    );
  });
});

describe('findCapability', () => {
  it('finds the first capability with an ID, or answers -1', () => {
    const { reader } = counted(
      standard(0x40, [
        [0x40, 0x05, 0x50],
        [0x50, 0x11, 0x60],
        [0x60, 0x05, 0x00],
      ]),
    );
    expect(findCapability(reader, 0x05)).toBe(0x40);
    expect(findCapability(reader, 0x11)).toBe(0x50);
    expect(findCapability(reader, 0x10)).toBe(-1);
  });

  it('ends on a looping list', () => {
    const { reader } = counted(
      standard(0x40, [
        [0x40, 0x01, 0x44],
        [0x44, 0x02, 0x40],
      ]),
    );
    expect(findCapability(reader, 0x09)).toBe(-1);
  });
});
