/**
 * Random PCI configuration spaces for comparing `vfiokit lspci` with pciutils: random bytes
 * everywhere (so every flag and reserved bit is exercised), with a well-formed header type,
 * capability list and extended capability chain laid over them.
 */
import fc from 'fast-check';

/** Room for an EA capability: its header, a bridge's bus-number dword, 3 entries of 5 dwords. */
const EA_BYTES = 8 + 3 * 20;

/** Standard capability IDs and the bytes each needs (the register block lspci reads). */
const CAPS: readonly [number, number][] = [
  [0x01, 8], // power management
  [0x02, 12], // AGP
  [0x04, 4], // slot ID
  [0x05, 24], // MSI
  [0x06, 4], // CompactPCI hot-swap
  [0x07, 16], // PCI-X
  [0x09, 20], // vendor specific
  [0x08, 0x1c], // HyperTransport
  [0x0a, 4], // debug port
  [0x0c, 4], // hot-plug
  [0x0d, 8], // bridge subsystem vendor
  [0x10, 0x3c], // PCI Express
  [0x11, 12], // MSI-X
  [0x12, 8], // SATA
  [0x13, 6], // advanced features
  [0x14, EA_BYTES], // enhanced allocation (entries made well-formed by enhancedAllocation())
  [0x00, 4], // null
  [0x15, 4], // an ID lspci does not know
];

/** Extended capability IDs and the bytes each needs. */
const ECAPS: readonly [number, number][] = [
  [0x01, 0x38], // AER
  [0x02, 0x10], // VC (name only)
  [0x03, 0x0c], // DSN
  [0x04, 0x10], // power budgeting
  [0x05, 0x30], // root complex link
  [0x07, 0x0c], // RCEC endpoint association
  [0x09, 0x30], // MFVC virtual channel
  [0x12, 0x30], // multicast
  [0x0b, 0x08], // vendor specific
  [0x0d, 0x08], // ACS
  [0x0e, 0x08], // ARI
  [0x0f, 0x08], // ATS
  [0x10, 0x40], // SR-IOV
  [0x13, 0x10], // PRI
  [0x15, 0x10], // resizable BAR
  [0x17, 0x08], // TPH
  [0x18, 0x08], // LTR
  [0x19, 0x10], // secondary PCIe
  [0x1b, 0x08], // PASID
  [0x1d, 0x0c], // DPC
  [0x1e, 0x10], // L1 PM substates
  [0x1f, 0x0c], // PTM
  [0x23, 0x0c], // DVSEC
  [0x24, 0x10], // VF resizable BAR
  [0x26, 0x10], // 16 GT/s (name only)
  [0x2e, 0x18], // DOE
  [0x00, 0x04], // null
  [0x2a, 0x04], // 32 GT/s: an ID pciutils 3.9 does not know
];

export interface RandomFunction {
  config: Uint8Array;
}

interface Plan {
  bytes: Uint8Array;
  headerType: number;
  caps: number[];
  ecaps: { id: number; version: number }[];
  ids: { vendor: number; device: number; subVendor: number; subDevice: number; cls: number; progIf: number };
  noCapList: boolean;
}

function place(
  sizes: readonly number[],
  lo: number,
  hi: number,
  seedBytes: Uint8Array,
): number[] | undefined {
  // lay the blocks out one after another at dword boundaries, with gaps taken from the random bytes
  const out: number[] = [];
  let at = lo;
  for (let i = 0; i < sizes.length; i++) {
    at += (seedBytes[i] & 0x3) * 4;
    if (at + sizes[i] > hi) return undefined;
    out.push(at);
    at += (sizes[i] + 3) & ~3;
  }
  return out;
}

/** One function's configuration space from a plan. */
function build(plan: Plan): Uint8Array {
  const c = plan.bytes;
  const w16 = (o: number, v: number) => {
    c[o] = v & 0xff;
    c[o + 1] = (v >> 8) & 0xff;
  };
  const w32 = (o: number, v: number) => {
    w16(o, v & 0xffff);
    w16(o + 2, v >>> 16);
  };
  w16(0, plan.ids.vendor);
  w16(2, plan.ids.device);
  c[0x09] = plan.ids.progIf;
  w16(0x0a, plan.ids.cls);
  c[0x0e] = (c[0x0e] & 0x80) | plan.headerType;
  // lspci prints the pin as one byte ('A' + pin - 1); past 0x3e that byte is not ASCII, and a
  // string comparison of two programs' UTF-8 output can no longer tell what was printed
  c[0x3d] %= 0x3f;
  if (plan.headerType === 0) {
    w16(0x2c, plan.ids.subVendor);
    w16(0x2e, plan.ids.subDevice);
  }
  const caps = plan.caps.map((i) => CAPS[i]);
  const offsets = place(
    caps.map((x) => x[1]),
    0x40,
    0x100,
    c.subarray(0x100),
  );
  if (plan.noCapList || !offsets || caps.length === 0) c[0x06] &= ~0x10;
  else {
    c[0x06] |= 0x10;
    // the list starts where lspci looks for it: 0x34, or 0x14 in a CardBus header
    const pointer = plan.headerType === 2 ? 0x14 : 0x34;
    c[pointer] = offsets[0] | (c[pointer] & 3);
    for (let i = 0; i < caps.length; i++) {
      c[offsets[i]] = caps[i][0];
      c[offsets[i] + 1] = i + 1 < caps.length ? offsets[i + 1] | (c[offsets[i] + 1] & 3) : 0;
      if (caps[i][0] === 0x14) enhancedAllocation(c, offsets[i], plan.headerType === 1);
    }
  }
  const ecaps = plan.ecaps.map((e) => ({ ...e, size: ECAPS[e.id][1], cid: ECAPS[e.id][0] }));
  const eoff = place(
    ecaps.map((e) => e.size),
    0x100,
    0x1000,
    c.subarray(0x40),
  );
  if (!eoff || ecaps.length === 0) w32(0x100, 0);
  else {
    for (let i = 0; i < ecaps.length; i++) {
      const next = i + 1 < ecaps.length ? eoff[i + 1] : 0;
      w32(eoff[i], (ecaps[i].cid | (ecaps[i].version << 16) | (next << 20)) >>> 0);
    }
  }
  return c;
}

/**
 * An EA capability (PCIe r6.0 §7.8.5) at `at` whose entries are what a device can present: at
 * most 3 entries, and each entry's Entry Size counts exactly the dwords that follow its header
 * (Base, MaxOffset, and Base[63:32] / MaxOffset[63:32] when bit 1 of Base / MaxOffset says they
 * are there). pciutils 3.9's cap_ea() fetches only Entry Size dwords but then reads Base,
 * MaxOffset and both high dwords anyway, so a shorter Entry Size (random bytes give one half of
 * the time) makes lspci -F stop with "Internal bug: Accessing non-read configuration byte" and
 * exit 1. Everything else in the entries stays random.
 */
function enhancedAllocation(c: Uint8Array, at: number, bridge: boolean): void {
  c[at + 2] = (c[at + 2] & 0xc0) | (c[at + 2] % 4);
  let entry = at + 4 + (bridge ? 4 : 0);
  for (let i = 0; i < (c[at + 2] & 0x3f); i++) {
    const size = 2 + ((c[entry + 4] >> 1) & 1) + ((c[entry + 8] >> 1) & 1);
    c[entry] = (c[entry] & ~7) | size;
    entry += 4 + 4 * size;
  }
}

/** IDs: half of the time real entries from pci.ids, so names, subsystems and classes are looked up. */
export function idsArbitrary(known: KnownIds): fc.Arbitrary<Plan['ids']> {
  const random = fc.record({
    vendor: fc.integer({ min: 0, max: 0xfffe }),
    device: fc.integer({ min: 0, max: 0xffff }),
    subVendor: fc.integer({ min: 0, max: 0xffff }),
    subDevice: fc.integer({ min: 0, max: 0xffff }),
    cls: fc.integer({ min: 0, max: 0xffff }),
    progIf: fc.integer({ min: 0, max: 0xff }),
  });
  if (!known.devices.length) return random;
  const real = fc
    .record({
      dev: fc.constantFrom(...known.devices),
      sub: fc.option(fc.constantFrom(...known.subsystems), { nil: undefined }),
      cls: fc.constantFrom(...known.classes),
      progIf: fc.integer({ min: 0, max: 0xff }),
      same: fc.boolean(),
    })
    .map(({ dev, sub, cls, progIf, same }) => ({
      vendor: sub && !same ? sub[0] : dev[0],
      device: sub && !same ? sub[1] : dev[1],
      subVendor: sub && !same ? sub[2] : same ? dev[0] : 0,
      subDevice: sub && !same ? sub[3] : same ? dev[1] : 0,
      cls: cls[0],
      progIf: cls[1] >= 0 ? cls[1] : progIf,
    }));
  return fc.oneof(real, random);
}

export interface KnownIds {
  devices: [number, number][];
  subsystems: [number, number, number, number][];
  classes: [number, number][];
}

/** A sample of the IDs a pci.ids file holds (every `step`th entry, so the sample stays small). */
export function knownIds(text: string, step = 97): KnownIds {
  const out: KnownIds = { devices: [], subsystems: [], classes: [] };
  let vendor = -1;
  let device = -1;
  let cls = -1;
  let sub = -1;
  let n = 0;
  for (const line of text.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^([0-9a-f]{4}) {2}/.exec(line))) {
      vendor = Number.parseInt(m[1], 16);
      cls = -1;
    } else if ((m = /^C ([0-9a-f]{2}) {2}/.exec(line))) {
      cls = Number.parseInt(m[1], 16);
      vendor = -1;
      if (n++ % 3 === 0) out.classes.push([cls << 8, -1]);
    } else if ((m = /^\t([0-9a-f]{4}) {2}/.exec(line)) && vendor >= 0) {
      device = Number.parseInt(m[1], 16);
      if (n++ % step === 0) out.devices.push([vendor, device]);
    } else if ((m = /^\t\t([0-9a-f]{4}) ([0-9a-f]{4}) {2}/.exec(line)) && vendor >= 0) {
      if (n++ % step === 0)
        out.subsystems.push([vendor, device, Number.parseInt(m[1], 16), Number.parseInt(m[2], 16)]);
    } else if ((m = /^\t([0-9a-f]{2}) {2}/.exec(line)) && cls >= 0) {
      sub = Number.parseInt(m[1], 16);
      out.classes.push([(cls << 8) | sub, -1]);
    } else if ((m = /^\t\t([0-9a-f]{2}) {2}/.exec(line)) && cls >= 0) {
      out.classes.push([(cls << 8) | sub, Number.parseInt(m[1], 16)]);
    }
  }
  return out;
}

/** Random functions: mostly type 0 headers, some PCI-to-PCI bridges, a few unknown header types. */
export function functionArbitrary(known: KnownIds): fc.Arbitrary<Uint8Array> {
  return fc
    .record({
      bytes: fc.uint8Array({ minLength: 4096, maxLength: 4096 }),
      headerType: fc.constantFrom(0, 0, 0, 0, 0, 1, 1, 2, 5),
      caps: fc.array(fc.integer({ min: 0, max: CAPS.length - 1 }), { maxLength: 6 }),
      ecaps: fc.array(
        fc.record({
          id: fc.integer({ min: 0, max: ECAPS.length - 1 }),
          version: fc.integer({ min: 0, max: 15 }),
        }),
        { maxLength: 6 },
      ),
      ids: idsArbitrary(known),
      noCapList: fc.integer({ min: 0, max: 19 }).map((x) => x === 0),
    })
    .map((plan) => build(plan));
}
