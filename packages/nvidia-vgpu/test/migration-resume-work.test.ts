import { randomUUID } from 'node:crypto';
import { MigState, VfioError } from '@vfiokit/core';
import type { DeviceFile } from '@vfiokit/core/host';
import { describe, expect, it } from 'vitest';
import {
  CH_GET,
  CHANNEL_STRIDE,
  METHOD_MEMSET,
  METHOD_SEM_RELEASE,
  methodHeader,
  REG_CHANNEL_BASE,
} from '../src/index.js';
import { openVgpu, rig } from './helpers.js';

function drain(file: DeviceFile): Uint8Array {
  const parts: Uint8Array[] = [];
  for (;;) {
    let c: Uint8Array;
    try {
      c = file.migrationRead(1 << 20);
    } catch (err) {
      if (err instanceof VfioError && err.code === 'ENOMSG') break;
      throw err;
    }
    if (c.length === 0) break;
    parts.push(c.slice());
  }
  return new Uint8Array(Buffer.concat(parts));
}

/** A vGPU with a MEMSET and a semaphore release queued; the engine has not run them. */
function queuedWork() {
  const r = rig();
  const src = openVgpu(r.t4Parent, 'nvidia-319', randomUUID());
  const [ch, pb] = src.channel();
  const target = src.alloc(65536);
  const words = [
    methodHeader(METHOD_MEMSET),
    target,
    65536,
    0x5a5a5a5a,
    methodHeader(METHOD_SEM_RELEASE),
    pb + 1024,
    7,
  ];
  src.push(ch, pb, words);
  const get = () => src.reg(REG_CHANNEL_BASE + ch * CHANNEL_STRIDE + CH_GET);
  return { r, src, ch, pb, target, get, put: words.length * 4 };
}

describe('work queued across a stop runs again on the host clock', () => {
  it('runs in-flight work loaded from the stream once the destination is RUNNING, without another doorbell', () => {
    const { src, pb, target } = queuedWork();
    src.file.setMigrationState(MigState.STOP_COPY);
    const stream = drain(src.file);
    // The destination is another host: its GPU's engine has never been kicked.
    const host2 = rig();
    const dst = openVgpu(host2.t4Parent, 'nvidia-319', randomUUID());
    dst.file.setMigrationState(MigState.STOP);
    dst.file.setMigrationState(MigState.RESUMING);
    dst.file.migrationWrite(stream);
    dst.file.setMigrationState(MigState.STOP);
    dst.file.setMigrationState(MigState.RUNNING);
    host2.clock.advance(50_000_000);
    expect(dst.fbRead(target, 65536).every((b) => b === 0x5a)).toBe(true);
    expect(dst.fbRead(pb + 1024, 1)[0]).toBe(7);
  });

  it('runs work that was in flight when the source stopped once the source goes back to RUNNING', () => {
    const { r, src, get, put } = queuedWork();
    src.file.setMigrationState(MigState.STOP_COPY);
    r.clock.advance(50_000_000);
    expect(get()).toBe(0);
    src.file.setMigrationState(MigState.RUNNING);
    r.clock.advance(50_000_000);
    expect(get()).toBe(put);
  });
});
