/**
 * A value carried through a byte access: a 1-, 2-, 4- or 8-byte number turned into its
 * little-endian bytes for a read()/write() that takes bytes, and back. Every road that lacks a
 * value road of its own (a BAR handler with only read()/write(), a device without
 * readValue/writeValue, the VMM's MSI-X table read, an 8-byte trapped access) goes through these.
 *
 * The bytes come from a ring of scratch buffers, one per nesting depth. An access made while
 * another is still inside its handler — a BAR write whose handler reads the config space, an
 * interrupt raised in the middle of an MMIO access that makes one of its own, a port whose device
 * reaches another port — takes the next buffer, so it cannot write over bytes the outer access
 * has yet to read. The buffers are made once: no access allocates, and none pays for a try.
 * (PciDeviceModel's road for a BAR handler without a value road, the one hot path among these,
 * keeps ValueBytes of its own and comes here only when re-entered: see ValueThroughBytes.)
 *
 * Use: `const s = takeValueBytes(); ...s.of(size) or s.set(size, v)...; giveValueBytes(s)`, and
 * read s.get(size) after. giveValueBytes sets the depth back to that of `s`, so an inner access
 * that threw (and never gave its bytes back) is forgotten when the access around it ends; one
 * that threw out of every access leaves the ring turned by one, which is harmless. Bytes are
 * shared only by accesses VALUE_BYTES_RING_SIZE deep (counting inner accesses that threw while
 * an outer one was running and caught them).
 */

/** Accesses nested this deep share no bytes. */
export const VALUE_BYTES_RING_SIZE = 16;
const RING_MASK = VALUE_BYTES_RING_SIZE - 1;

/**
 * The scratch bytes of one depth. Its methods are kept this small on purpose: they sit on the
 * trapped-access path of a handler without a value road, inlined with the handler's read() into
 * the caller, and V8's inlining budget for that path is what bigger ones would spend.
 */
export class ValueBytes {
  /** 8 bytes; of(size) views the first `size`. */
  readonly bytes = new Uint8Array(8);
  private readonly view = new DataView(this.bytes.buffer);
  /** By size: the first 1, 2 or 4 bytes (the rest of the slots are the whole 8). */
  private readonly sized = [
    this.bytes,
    this.bytes.subarray(0, 1),
    this.bytes.subarray(0, 2),
    this.bytes,
    this.bytes.subarray(0, 4),
  ];

  /** `index`: the depth these bytes serve (giveValueBytes sets the depth back to it). */
  constructor(readonly index: number) {}

  /** The first `size` (1, 2 or 4) bytes, for a read()/write() of that size. */
  of(size: 1 | 2 | 4): Uint8Array {
    return this.sized[size];
  }

  /** The little-endian value of the first `size` (1, 2 or 4) bytes. */
  get(size: 1 | 2 | 4): number {
    const v = this.view.getUint32(0, true);
    return size === 4 ? v : v & (size === 2 ? 0xffff : 0xff);
  }

  /** Store the low `size` (1, 2 or 4) bytes of `value` little-endian; returns of(size). */
  set(size: 1 | 2 | 4, value: number): Uint8Array {
    this.view.setUint32(0, value, true);
    return this.sized[size];
  }

  /** The little-endian value of the 8 bytes (an 8-byte access). */
  get64(): bigint {
    return this.view.getBigUint64(0, true);
  }

  /** Store the low 64 bits of `value` little-endian; returns the 8 bytes. */
  set64(value: bigint): Uint8Array {
    this.view.setBigUint64(0, BigInt.asUintN(64, value), true);
    return this.bytes;
  }
}

/** The buffers and the depth now, as fields of one object (a module-level `let` costs a check on every use). */
class ValueBytesRing {
  depth = 0;
  readonly frames: readonly ValueBytes[] = Array.from(
    { length: VALUE_BYTES_RING_SIZE },
    (_, i) => new ValueBytes(i),
  );
}

const ring = new ValueBytesRing();

/** The scratch bytes of the next depth; hand them back with giveValueBytes() when the access is done. */
export function takeValueBytes(): ValueBytes {
  const r = ring;
  const d = r.depth;
  r.depth = (d + 1) & RING_MASK;
  return r.frames[d];
}

/** The access that took `s` is done: the depth goes back to where it was when `s` was taken. */
export function giveValueBytes(s: ValueBytes): void {
  ring.depth = s.index;
}
