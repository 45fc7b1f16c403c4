import { randomUUID } from 'node:crypto';
import { VFIO_PCI_CONFIG_REGION_INDEX } from '@vfiokit/core';
import { PCI_CAP_ID_MSI, VFIO_REGION_INFO_FLAG_MMAP, vfioPciIndexToOffset } from '@vfiokit/core/abi';
import { describe, expect, it } from 'vitest';
import {
  BAR0_SIZE,
  BAR3_SIZE,
  CH_ERROR,
  CH_GET,
  CH_STATE,
  CHANNEL_ERROR_BAD_METHOD,
  CHANNEL_ERROR_BAD_PUT,
  CHANNEL_ERROR_OUT_OF_BOUNDS,
  CHANNEL_STATE_FAULTED,
  CHANNEL_STATE_IDLE,
  CHANNEL_STRIDE,
  INTR_CHANNEL_FAULT,
  INTR_RPC_DONE,
  INTR_SEMAPHORE,
  MAILBOX_OFFSET,
  MAX_CHANNELS,
  METHOD_COPY,
  METHOD_FLAG_AWAKEN,
  METHOD_MEMSET,
  METHOD_SEM_RELEASE,
  methodHeader,
  REG_CHANNEL_BASE,
  REG_FB_SIZE_LO,
  REG_ID,
  REG_INTR_STATUS,
  REG_TYPE_ID,
  RPC_ALLOC_FB,
  RPC_CHANNEL_CREATE,
  RPC_CHANNEL_DESTROY,
  RPC_ERR_INVALID_ARGUMENT,
  RPC_ERR_INVALID_STATE,
  RPC_ERR_NO_CHANNEL,
  RPC_ERR_NO_MEMORY,
  RPC_ERR_NOT_SUPPORTED,
  RPC_ERR_PROTOCOL,
  RPC_ERR_VERSION_MISMATCH,
  RPC_FREE_FB,
  RPC_OK,
  RPC_SUBMIT,
  RPC_VERSION_HANDSHAKE,
  VGPU_INTERFACE_VERSION,
  VGPU_MAGIC,
} from '../src/index.js';
import { openVgpu, rig } from './helpers.js';

const cfg = vfioPciIndexToOffset(VFIO_PCI_CONFIG_REGION_INDEX);

function cfg16(v: ReturnType<typeof openVgpu>, offset: number): number {
  const b = new Uint8Array(2);
  v.file.read(cfg + offset, b);
  return b[0] | (b[1] << 8);
}

describe('the vGPU device', () => {
  it('carries NVIDIA vendor id, the board device id and the type subsystem id (T4-8C: 10de:1eb8, 10de:139b)', () => {
    const v = openVgpu(rig().t4Parent, 'nvidia-320');
    expect([cfg16(v, 0), cfg16(v, 2), cfg16(v, 0x2c), cfg16(v, 0x2e)]).toEqual([
      0x10de, 0x1eb8, 0x10de, 0x139b,
    ]);
    expect(v.device.config.capabilities().some((c) => c.id === PCI_CAP_ID_MSI)).toBe(true);
    expect(v.file.irqInfo(1).count).toBe(1);
  });

  it('traps BAR0 with the mailbox page as its one sparse mmap area, maps BAR1 over its own framebuffer, sizes BAR3', () => {
    const { t4Parent } = rig();
    const v = openVgpu(t4Parent, 'nvidia-319');
    const bar0 = v.file.regionInfo(0);
    expect(bar0.size).toBe(BAR0_SIZE);
    expect(bar0.sparseMmap).toEqual([{ offset: MAILBOX_OFFSET, size: 4096 }]);
    const bar1 = v.file.regionInfo(1);
    expect(bar1.size).toBeGreaterThanOrEqual(v.device.fbSize);
    expect(v.file.regionInfo(3).size).toBe(BAR3_SIZE);
    const m = v.file.mmap(vfioPciIndexToOffset(1), v.device.fbSize);
    expect(m.memory.bytes).toBe(v.device.fb);
    m.memory.bytes[100] = 0x42;
    expect(v.fbRead(100, 1)[0]).toBe(0x42);
    const box = v.file.mmap(vfioPciIndexToOffset(0) + MAILBOX_OFFSET, 4096);
    box.memory.bytes[box.memoryOffset] = 7;
    expect(v.reg(MAILBOX_OFFSET) & 0xff).toBe(7);
    expect(() => v.file.mmap(vfioPciIndexToOffset(0), 4096)).toThrow(/outside every mmap area/);
    const other = openVgpu(t4Parent, 'nvidia-319');
    expect(other.device.fb.buffer).not.toBe(v.device.fb.buffer);
  });

  it('maps BAR3 whole over its own instance memory, which trapped accesses read and write too', () => {
    const { t4Parent } = rig();
    const v = openVgpu(t4Parent, 'nvidia-319');
    const bar3 = v.file.regionInfo(3);
    expect(bar3.flags & VFIO_REGION_INFO_FLAG_MMAP).toBeTruthy();
    expect(bar3.sparseMmap ?? []).toEqual([]);
    const base = vfioPciIndexToOffset(3);
    expect(v.device.bar3Touched).toBe(false);
    v.file.write(base + 0x10, Uint8Array.of(1, 2, 3, 4));
    expect(v.device.bar3Touched).toBe(true);
    const m = v.file.mmap(base, BAR3_SIZE);
    expect(Array.from(m.memory.bytes.subarray(m.memoryOffset + 0x10, m.memoryOffset + 0x14))).toEqual([
      1, 2, 3, 4,
    ]);
    m.memory.bytes[m.memoryOffset + BAR3_SIZE - 1] = 0x5a;
    const one = new Uint8Array(1);
    v.file.read(base + BAR3_SIZE - 1, one);
    expect(one[0]).toBe(0x5a);
    const other = openVgpu(t4Parent, 'nvidia-319');
    const four = Uint8Array.of(9, 9, 9, 9);
    other.file.read(vfioPciIndexToOffset(3) + 0x10, four);
    expect(four).toEqual(new Uint8Array(4));
  });

  it('reports its identity, framebuffer size and type in BAR0 registers', () => {
    const v = openVgpu(rig().t4Parent, 'nvidia-321');
    expect(v.reg(REG_ID)).toBe(VGPU_MAGIC);
    expect(v.reg(REG_FB_SIZE_LO)).toBe(v.device.fbSize);
    expect(v.reg(REG_TYPE_ID)).toBe(321);
    v.setReg(REG_ID, 0);
    expect(v.reg(REG_ID)).toBe(VGPU_MAGIC);
  });
});

describe('the host RPC mailbox', () => {
  it('answers the version handshake with the host version and raises RPC_DONE on MSI', () => {
    const v = openVgpu(rig().t4Parent, 'nvidia-319');
    v.setReg(0x14, 7);
    const r = v.rpc([RPC_VERSION_HANDSHAKE, VGPU_INTERFACE_VERSION]);
    expect(r.result).toBe(RPC_OK);
    expect(r.out.getUint32(12, true)).toBe(VGPU_INTERFACE_VERSION);
    expect(v.reg(REG_INTR_STATUS) & INTR_RPC_DONE).toBe(INTR_RPC_DONE);
    expect(v.msi()).toBe(1);
    v.setReg(REG_INTR_STATUS, INTR_RPC_DONE);
    expect(v.reg(REG_INTR_STATUS)).toBe(0);
  });

  it('refuses calls before the handshake, another major version, unknown functions and bad lengths', () => {
    const v = openVgpu(rig().t4Parent, 'nvidia-319');
    expect(v.rpc([RPC_ALLOC_FB, 4096, 0, 0, 0]).result).toBe(RPC_ERR_INVALID_STATE);
    expect(v.rpc([RPC_VERSION_HANDSHAKE, 0x00020000]).result).toBe(RPC_ERR_VERSION_MISMATCH);
    expect(v.rpc([RPC_VERSION_HANDSHAKE, VGPU_INTERFACE_VERSION]).result).toBe(RPC_OK);
    expect(v.rpc([99]).result).toBe(RPC_ERR_NOT_SUPPORTED);
    expect(v.rpc([RPC_ALLOC_FB, 4096]).result).toBe(RPC_ERR_PROTOCOL);
    expect(v.rpc([RPC_VERSION_HANDSHAKE, VGPU_INTERFACE_VERSION], 20).result).toBe(RPC_ERR_PROTOCOL);
    expect(v.rpc([RPC_VERSION_HANDSHAKE, VGPU_INTERFACE_VERSION], 0x900).result).toBe(RPC_ERR_PROTOCOL);
    expect(v.rpc([RPC_VERSION_HANDSHAKE, VGPU_INTERFACE_VERSION], 3).result).toBe(RPC_ERR_PROTOCOL);
    expect(v.device.rpc.errors).toBeGreaterThan(5);
  });

  it('allocates within the framebuffer quota, refuses beyond it, frees exactly what it gave', () => {
    const v = openVgpu(rig().t4Parent, 'nvidia-319');
    const fb = v.device.fbSize;
    const a = v.alloc(fb / 2);
    const b = v.alloc(fb / 2);
    expect([a, b]).toEqual([0, fb / 2]);
    expect(v.rpc([RPC_ALLOC_FB, 4096, 0, 0, 0]).result).toBe(RPC_ERR_NO_MEMORY);
    expect(v.rpc([RPC_ALLOC_FB, fb * 2, 0, 0, 0]).result).toBe(RPC_ERR_NO_MEMORY);
    expect(v.rpc([RPC_ALLOC_FB, 100, 0, 0, 0]).result).toBe(RPC_ERR_INVALID_ARGUMENT);
    expect(v.rpc([RPC_ALLOC_FB, 4096, 0, 3000, 0]).result).toBe(RPC_ERR_INVALID_ARGUMENT);
    expect(v.rpc([RPC_FREE_FB, 4096, 0]).result).toBe(RPC_ERR_INVALID_ARGUMENT);
    expect(v.rpc([RPC_FREE_FB, b, 0]).result).toBe(RPC_OK);
    expect(v.alloc(4096)).toBe(fb / 2);
  });

  it('creates channels only over allocated memory, up to the channel quota, and destroys them', () => {
    const v = openVgpu(rig().t4Parent, 'nvidia-319');
    const pb = v.alloc(4096 * MAX_CHANNELS);
    expect(v.rpc([RPC_CHANNEL_CREATE, v.device.fbSize - 4096, 0, 4096]).result).toBe(
      RPC_ERR_INVALID_ARGUMENT,
    );
    expect(v.rpc([RPC_CHANNEL_CREATE, pb, 0, 8]).result).toBe(RPC_ERR_INVALID_ARGUMENT);
    expect(v.rpc([RPC_CHANNEL_CREATE, pb + 2, 0, 4096]).result).toBe(RPC_ERR_INVALID_ARGUMENT);
    for (let i = 0; i < MAX_CHANNELS; i++)
      expect(v.rpc([RPC_CHANNEL_CREATE, pb + i * 4096, 0, 4096]).result).toBe(RPC_OK);
    expect(v.rpc([RPC_CHANNEL_CREATE, pb, 0, 4096]).result).toBe(RPC_ERR_NO_CHANNEL);
    expect(v.rpc([RPC_CHANNEL_DESTROY, 3]).result).toBe(RPC_OK);
    expect(v.rpc([RPC_CHANNEL_DESTROY, 3]).result).toBe(RPC_ERR_INVALID_ARGUMENT);
    expect(v.rpc([RPC_CHANNEL_DESTROY, 99]).result).toBe(RPC_ERR_INVALID_ARGUMENT);
    expect(v.rpc([RPC_SUBMIT, 3, 0]).result).toBe(RPC_ERR_INVALID_ARGUMENT);
  });
});

describe('channels on the engine', () => {
  it('copies, fills and releases a semaphore with an interrupt, once the engine runs', () => {
    const r = rig();
    const v = openVgpu(r.t4Parent, 'nvidia-319');
    const [ch, pb] = v.channel();
    const src = v.alloc(8192);
    const dst = v.alloc(8192);
    const data = Uint8Array.from({ length: 8192 }, (_, i) => (i * 7) & 0xff);
    v.fbWrite(src, data);
    v.push(ch, pb, [
      methodHeader(METHOD_COPY),
      dst,
      src,
      8192,
      methodHeader(METHOD_MEMSET),
      src,
      4096,
      0xabababab,
      methodHeader(METHOD_SEM_RELEASE, METHOD_FLAG_AWAKEN),
      pb + 2048,
      77,
    ]);
    const before = v.msi();
    expect(v.fbRead(dst, 16)).toEqual(new Uint8Array(16));
    r.clock.advance(10_000_000);
    expect(v.fbRead(dst, 8192)).toEqual(data);
    expect(v.fbRead(src, 4096).every((b) => b === 0xab)).toBe(true);
    expect(new DataView(v.fbRead(pb + 2048, 4).buffer).getUint32(0, true)).toBe(77);
    expect(v.reg(REG_INTR_STATUS) & INTR_SEMAPHORE).toBe(INTR_SEMAPHORE);
    expect(v.msi()).toBe(before + 1);
    expect(v.reg(REG_CHANNEL_BASE + ch * CHANNEL_STRIDE + CH_STATE)).toBe(CHANNEL_STATE_IDLE);
    expect(v.reg(REG_CHANNEL_BASE + ch * CHANNEL_STRIDE + CH_GET)).toBe(44);
  });

  it('handles an overlapping copy like memmove in both directions', () => {
    const r = rig();
    const v = openVgpu(r.t4Parent, 'nvidia-319');
    const [ch, pb] = v.channel();
    const buf = v.alloc(3 * 65536);
    const data = Uint8Array.from({ length: 2 * 65536 }, (_, i) => (i * 13 + 5) & 0xff);
    v.fbWrite(buf, data);
    v.push(ch, pb, [methodHeader(METHOD_COPY), buf + 65536, buf, 2 * 65536]);
    r.t4.advance(1000); // a small budget forces the copy into pieces
    r.t4.advance(10_000_000);
    expect(Buffer.compare(v.fbRead(buf + 65536, 2 * 65536), data)).toBe(0);
    v.push(ch, pb, [methodHeader(METHOD_COPY), buf, buf + 65536, 2 * 65536], 16);
    r.t4.advance(10_000_000);
    expect(Buffer.compare(v.fbRead(buf, 2 * 65536), data)).toBe(0);
  });

  it('faults a channel on an address outside the framebuffer, an unknown method or a bad PUT, and keeps the others going', () => {
    const r = rig();
    const v = openVgpu(r.t4Parent, 'nvidia-319');
    const [bad, pbBad] = v.channel();
    const [good, pbGood] = v.channel();
    const target = v.alloc(4096);
    v.push(bad, pbBad, [methodHeader(METHOD_MEMSET), v.device.fbSize - 4, 8, 0x11111111]);
    v.push(good, pbGood, [methodHeader(METHOD_SEM_RELEASE), target, 5]);
    r.t4.advance(1_000_000);
    const reg = (ch: number, o: number) => v.reg(REG_CHANNEL_BASE + ch * CHANNEL_STRIDE + o);
    expect(reg(bad, CH_STATE)).toBe(CHANNEL_STATE_FAULTED);
    expect(reg(bad, CH_ERROR)).toBe(CHANNEL_ERROR_OUT_OF_BOUNDS);
    expect(v.reg(REG_INTR_STATUS) & INTR_CHANNEL_FAULT).toBe(INTR_CHANNEL_FAULT);
    expect(v.fbRead(target, 1)[0]).toBe(5);
    const [c2, pb2] = v.channel();
    v.push(c2, pb2, [0x7f000000]);
    r.t4.advance(1_000_000);
    expect(reg(c2, CH_ERROR)).toBe(CHANNEL_ERROR_BAD_METHOD);
    const [c3] = v.channel();
    v.setReg(REG_CHANNEL_BASE + c3 * CHANNEL_STRIDE, 4097);
    expect(reg(c3, CH_ERROR)).toBe(CHANNEL_ERROR_BAD_PUT);
  });

  it('keeps a vGPU’s framebuffer separate from its neighbour on the same GPU', () => {
    const r = rig();
    const a = openVgpu(r.t4Parent, 'nvidia-319', randomUUID());
    const b = openVgpu(r.t4Parent, 'nvidia-319', randomUUID());
    b.fbWrite(0, new Uint8Array(4096).fill(0x5c));
    const [ch, pb] = a.channel();
    a.push(ch, pb, [methodHeader(METHOD_MEMSET), 0, a.device.fbSize, 0]);
    r.t4.advance(100_000_000);
    expect(b.fbRead(0, 4096).every((x) => x === 0x5c)).toBe(true);
  });
});
