/**
 * Saving what each display shows: for every attached device that offers a display plane, ask
 * VFIO_DEVICE_QUERY_GFX_PLANE (REGION mode, through the device file's ioctl as QEMU's
 * vfio_display_region_update does), read the frame from the region the answer names and write
 * it as `<slot>.png`. A served device (`vfiokit serve --save-frames`) is asked directly and its
 * frame kept as `<uuid>.png` while it serves.
 */
import { Buffer } from 'node:buffer';
import { renameSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DRM_PLANE_TYPE_PRIMARY,
  disabledGfxPlane,
  encodePng,
  type VfioDevice,
  VfioError,
} from '@vfiokit/core';
import {
  decodeGfxPlaneInfo,
  encodeGfxPlaneInfo,
  type GfxPlaneInfoStruct,
  VFIO_DEVICE_QUERY_GFX_PLANE,
  VFIO_GFX_PLANE_TYPE_PROBE,
  VFIO_GFX_PLANE_TYPE_REGION,
  vfio_device_gfx_plane_info,
} from '@vfiokit/core/abi';
import { type DeviceFile, toVfioError } from '@vfiokit/core/host';
import { formatSlot } from '../config/index.js';
import type { Machine } from '../machine/index.js';
import { makeDirectory } from '../make-directory.js';

export interface SavedFrame {
  readonly slot: string;
  readonly path: string;
  readonly width: number;
  readonly height: number;
  readonly stride: number;
  readonly drmFormat: number;
  readonly region: number;
}

export interface FrameProblem {
  readonly slot: string;
  readonly problem: string;
}

export interface SaveFramesResult {
  readonly saved: readonly SavedFrame[];
  /** Devices that offer a display whose frame could not be saved (a disabled plane, say). */
  readonly problems: readonly FrameProblem[];
}

function planeRequest(flags: number): Uint8Array {
  return encodeGfxPlaneInfo({
    ...disabledGfxPlane(DRM_PLANE_TYPE_PRIMARY),
    argsz: vfio_device_gfx_plane_info.size,
    flags,
  });
}

/** The primary plane in REGION mode; undefined when the device offers no region display. */
export function queryPrimaryPlane(file: DeviceFile): GfxPlaneInfoStruct | undefined {
  const probe = file.ioctl(
    VFIO_DEVICE_QUERY_GFX_PLANE,
    planeRequest(VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_REGION),
  );
  if (probe.ret !== 0) return undefined;
  const r = file.ioctl(VFIO_DEVICE_QUERY_GFX_PLANE, planeRequest(VFIO_GFX_PLANE_TYPE_REGION));
  if (r.ret !== 0) throw r.error as VfioError;
  return decodeGfxPlaneInfo(r.out);
}

/** Read the frame a plane describes from its region and encode it as a PNG. */
export function captureFrame(file: DeviceFile, plane: GfxPlaneInfoStruct): Uint8Array {
  const frame = new Uint8Array(plane.stride * plane.height);
  file.readRegion(plane.id, 0, frame);
  return encodePng(plane, frame);
}

/**
 * A served device's primary plane as a PNG, asked of the device itself (there is no device file
 * while a vfio-user client has it): undefined when it has no display or the plane is disabled.
 */
export function captureDevicePlane(device: VfioDevice): Uint8Array | undefined {
  const plane = device.display?.queryPlane('region', DRM_PLANE_TYPE_PRIMARY);
  if (plane === undefined || plane.drmFormat === 0 || plane.width === 0 || plane.height === 0)
    return undefined;
  const frame = new Uint8Array(plane.stride * plane.height);
  device.read(plane.id, 0, frame);
  return encodePng(plane, frame);
}

/** How often a served device's primary plane is looked at. */
export const FRAME_INTERVAL_MS = 250;

export interface FrameSaver {
  /** `<dir>/<device name>.png`. */
  readonly path: string;
  /** Look at the plane now; write the file when the frame changed. True when it was written. */
  save(): boolean;
  /** Stop looking, after one last look. */
  stop(): void;
}

/**
 * Keep `<dir>/<device name>.png` showing a served device's primary plane: looked at every
 * `intervalMs`, rewritten only when the frame changed (written beside and renamed, so a reader
 * never sees half a file). The folder is made (or refused, with the reason) at once; a later
 * failure is warned about once and does not stop the device being served.
 */
export function saveDeviceFrames(
  device: VfioDevice,
  dir: string,
  opts: { readonly intervalMs?: number; readonly warn: (problem: string) => void },
): FrameSaver {
  makeDirectory(dir, 'the frames folder');
  const path = join(dir, `${device.name}.png`);
  let last: Uint8Array | undefined;
  let warned = false;
  const save = (): boolean => {
    try {
      const png = captureDevicePlane(device);
      if (png === undefined || (last !== undefined && Buffer.compare(png, last) === 0)) return false;
      writeFileSync(`${path}.tmp`, png);
      renameSync(`${path}.tmp`, path);
      last = png;
      return true;
    } catch (err) {
      if (!warned) opts.warn(toVfioError(err, { device: device.name }).problem);
      warned = true;
      return false;
    }
  };
  const timer = setInterval(save, opts.intervalMs ?? FRAME_INTERVAL_MS);
  timer.unref();
  return {
    path,
    save,
    stop() {
      clearInterval(timer);
      save();
    },
  };
}

/** Save every display's current frame into `dir` (created when missing) as `<slot>.png`. */
export async function saveFrames(machine: Machine, dir: string): Promise<SaveFramesResult> {
  const saved: SavedFrame[] = [];
  const problems: FrameProblem[] = [];
  let made = false;
  for (const d of machine.devices()) {
    const slot = formatSlot(d.slot);
    let plane: GfxPlaneInfoStruct | undefined;
    let png: Uint8Array;
    try {
      plane = queryPrimaryPlane(d.file);
      if (plane === undefined) continue;
      if (plane.drmFormat === 0 || plane.width === 0 || plane.height === 0) {
        problems.push({ slot, problem: 'the primary plane is disabled; the guest has not programmed it.' });
        continue;
      }
      png = captureFrame(d.file, plane);
    } catch (err) {
      problems.push({ slot, problem: toVfioError(err, { device: d.label }).message });
      continue;
    }
    if (!made) {
      makeDirectory(dir, 'the frames folder');
      made = true;
    }
    const path = join(dir, `${slot}.png`);
    try {
      await writeFile(path, png);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new VfioError(
        code === 'EACCES' || code === 'ENOSPC' || code === 'EISDIR' ? code : 'EIO',
        `cannot write the frame ${path}: ${(err as Error).message}.`,
        {
          hint: 'Give a --save-frames folder this user may write.',
          cause: err,
        },
      );
    }
    saved.push({
      slot,
      path,
      width: plane.width,
      height: plane.height,
      stride: plane.stride,
      drmFormat: plane.drmFormat,
      region: plane.id,
    });
  }
  return { saved, problems };
}
