/**
 * fast-check: random accesses and random ioctls never throw past the dispatcher (only a
 * VfioError, or a -errno result), a plugin handler never throws anything but a VfioError, and
 * the device keeps answering afterwards.
 */
import { PAGE_SIZE, VfioError } from '@vfiokit/core';
import {
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_QUERY_GFX_PLANE,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_MIG_GET_PRECOPY_INFO,
} from '@vfiokit/core/abi';
import fc from 'fast-check';
import type { CheckContext, ConformanceCheck } from '../types.js';
import { allRegions, describeError, describeRet, getDeviceInfo, hex, ioctl } from './util.js';

/** What is wrong with an error that left the dispatcher, or undefined when it is a proper VfioError. */
function foreignError(err: unknown): string | undefined {
  if (!(err instanceof VfioError))
    return `a ${err instanceof Error ? err.name : typeof err} escaped the dispatcher: ${describeError(err)}`;
  // The dispatcher wraps a handler's foreign exception as EIO and keeps it as the cause.
  if (err.cause !== undefined && !(err.cause instanceof VfioError)) {
    return `the plugin's handler threw ${err.cause instanceof Error ? `a ${err.cause.name}` : String(err.cause)} instead of a VfioError: ${describeError(err.cause)}`;
  }
  return undefined;
}

function stillAnswers(ctx: CheckContext, after: string): void {
  const { ret } = getDeviceInfo(ctx.file);
  if (ret !== 0)
    ctx.fail({
      problem: `the device stopped answering DEVICE_GET_INFO after ${after}`,
      expected: '0',
      actual: describeRet(ret),
    });
}

export const randomChecks: readonly ConformanceCheck[] = [
  {
    id: 'random.accesses',
    title: 'random reads and writes in and around every region never throw anything but VfioError',
    run(ctx) {
      const { info } = getDeviceInfo(ctx.file);
      if (!info) return ctx.skip('DEVICE_GET_INFO failed (reported by device.info).');
      const regions = allRegions(ctx.file, info.numRegions).filter((r) => r.size > 0);
      if (regions.length === 0) return ctx.skip('the device has no region with a size.');
      // A kernel driver is trusted to bound its own accesses only near a region (the kernel's
      // mtty sample copies config space from vconfig + offset without a bound), and writes to a
      // device bound to vfio-pci reach real hardware: kernel devices get accesses within 16
      // bytes of a region of at most 8 bytes, and a vfio-pci device reads only.
      const kernel = ctx.subject !== 'plugin';
      const readOnly = ctx.subject === 'kernel-pci';
      if (kernel)
        ctx.note(
          `kernel device: accesses of 1 to 8 bytes within 16 bytes of each region${readOnly ? ', reads only (writes would reach the hardware)' : ''}`,
        );
      const access = fc.record({
        region: fc.nat({ max: regions.length - 1 }),
        // Around the start, around the end, anywhere inside, or anywhere in the file.
        where: fc.oneof(
          fc.record({ kind: fc.constant('start' as const), delta: fc.integer({ min: -16, max: 16 }) }),
          fc.record({ kind: fc.constant('end' as const), delta: fc.integer({ min: -16, max: 16 }) }),
          fc.record({
            kind: fc.constant('inside' as const),
            delta: fc.double({ min: 0, max: 1, noNaN: true }),
          }),
          ...(kernel
            ? []
            : [
                fc.record({
                  kind: fc.constant('file' as const),
                  delta: fc.double({ min: 0, max: Number.MAX_SAFE_INTEGER, noNaN: true }),
                }),
              ]),
        ),
        length: kernel
          ? fc.integer({ min: 1, max: 8 })
          : fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 2 * PAGE_SIZE })),
        write: readOnly ? fc.constant(false) : fc.boolean(),
        seed: fc.nat(),
      });
      let problem: { message: string; region: number; offset: number } | undefined;
      const property = fc.property(access, (a) => {
        const r = regions[a.region];
        let offset: number;
        if (a.where.kind === 'start') offset = r.offset + a.where.delta;
        else if (a.where.kind === 'end') offset = r.offset + r.size + a.where.delta;
        else if (a.where.kind === 'inside') offset = r.offset + Math.floor(a.where.delta * r.size);
        else offset = Math.floor(a.where.delta);
        const buf = new Uint8Array(a.length);
        for (let i = 0; i < buf.length; i++) buf[i] = (a.seed >>> (i % 24)) & 0xff;
        try {
          if (a.write) ctx.file.write(offset, buf);
          else ctx.file.read(offset, buf);
        } catch (err) {
          const bad = foreignError(err);
          if (bad) {
            problem = {
              message: `${a.write ? 'write' : 'read'} of ${a.length} bytes at file offset ${hex(offset)}: ${bad}`,
              region: r.index,
              offset: offset - r.offset,
            };
            return false;
          }
        }
        return true;
      });
      const result = fc.check(property, {
        numRuns: ctx.options.numRuns,
        seed: ctx.options.seed,
        endOnFailure: true,
      });
      if (result.failed) {
        ctx.fail({
          region: problem?.region,
          offset: problem?.offset,
          problem: problem?.message ?? `the property failed: ${describeError(result.errorInstance)}`,
          expected: 'success or a VfioError from the dispatcher',
          actual: `counterexample ${fc.stringify(result.counterexample)} (seed ${result.seed})`,
        });
      }
      stillAnswers(ctx, 'random accesses');
    },
  },
  {
    id: 'random.ioctls',
    title: 'random ioctl numbers and argument bytes never throw and always answer 0 or -errno',
    run(ctx) {
      const known = [
        VFIO_DEVICE_GET_INFO,
        VFIO_DEVICE_GET_REGION_INFO,
        VFIO_DEVICE_GET_IRQ_INFO,
        VFIO_DEVICE_SET_IRQS,
        VFIO_DEVICE_RESET,
        VFIO_DEVICE_FEATURE,
        VFIO_DEVICE_QUERY_GFX_PLANE,
        VFIO_MIG_GET_PRECOPY_INFO,
      ];
      const call = fc.record({
        request: fc.oneof(
          { arbitrary: fc.constantFrom(...known), weight: 4 },
          { arbitrary: fc.nat({ max: 0xffffffff }), weight: 1 },
        ),
        arg: fc.uint8Array({ maxLength: 96 }),
        // Most of the time argsz tells the truth, so the call gets past the first check.
        honestArgsz: fc.boolean(),
      });
      let problem: string | undefined;
      const property = fc.property(call, (c) => {
        const arg = c.arg;
        if (c.honestArgsz && arg.length >= 4)
          new DataView(arg.buffer, arg.byteOffset, arg.byteLength).setUint32(0, arg.length, true);
        const r = ioctl(ctx.file, c.request, arg);
        const what = `ioctl ${hex(c.request)} with ${arg.length} argument bytes`;
        if ('thrown' in r && r.thrown !== undefined) {
          problem = `${what} threw: ${describeError(r.thrown)}`;
          return false;
        }
        if (!Number.isInteger(r.ret) || (r.ret < 0 && !(r.error instanceof VfioError))) {
          problem = `${what} answered ${String(r.ret)} without a VfioError`;
          return false;
        }
        if (r.error) {
          const bad = foreignError(r.error);
          if (bad) {
            problem = `${what}: ${bad}`;
            return false;
          }
        }
        return true;
      });
      const result = fc.check(property, {
        numRuns: ctx.options.numRuns,
        seed: ctx.options.seed,
        endOnFailure: true,
      });
      if (result.failed) {
        ctx.fail({
          problem: problem ?? `the property failed: ${describeError(result.errorInstance)}`,
          expected: 'ret 0 or positive, or -errno with a VfioError',
          actual: `counterexample ${fc.stringify(result.counterexample)} (seed ${result.seed})`,
        });
      }
      stillAnswers(ctx, 'random ioctls');
    },
  },
];
