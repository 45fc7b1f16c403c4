/**
 * Devices served by another process: a `vfio-user:<socket>` device of the configuration is a
 * VfioUserClientDevice, the same VfioDevice contract as an in-process instance, so the machine
 * attaches it like any other. Guest RAM then lives in a memfd, so that the DMA_MAP the client
 * sends when the device opens carries its fd and the server's device reaches guest memory
 * directly (without an fd every DMA would be a DMA_READ/DMA_WRITE message).
 *
 * This file is the one place the VMM touches @vfiokit/vfio-user for attaching; the Machine only
 * takes a RAM allocator and a VfioDevice.
 */
import { isAbsolute, resolve } from 'node:path';
import { type Logger, type SharedMemory, VfioError } from '@vfiokit/core';
import { toVfioError } from '@vfiokit/core/host';
import { allocateMemfdMemory, connectVfioUser, type VfioUserClientDevice } from '@vfiokit/vfio-user';
import { formatSlot, type VfioUserDeviceConfig, type VmmConfig } from '../config/index.js';

export interface RemoteDevice {
  readonly config: VfioUserDeviceConfig;
  /** The socket path, made absolute. */
  readonly socketPath: string;
  readonly device: VfioUserClientDevice;
  /** `vfio-user dev0.sock`, for reports. */
  readonly label: string;
}

/** Guest RAM backing whose fd travels with DMA_MAP; `close()` releases the fd (the mapping stays). */
export interface GuestRamBacking extends SharedMemory {
  readonly fd: number;
  close(): void;
}

/** The configuration's vfio-user devices. */
export function vfioUserDevices(config: VmmConfig): VfioUserDeviceConfig[] {
  return config.devices.filter((d): d is VfioUserDeviceConfig => d.kind === 'vfio-user');
}

/** Guest RAM in a memfd named `vfiokit-guest-ram` (it shows as such in the server's /proc/<pid>/maps). */
export function allocateMemfdGuestRam(size: number): GuestRamBacking {
  return allocateMemfdMemory('vfiokit-guest-ram', size);
}

export interface ConnectRemoteOptions {
  /** Relative socket paths are taken from here. */
  readonly cwd: string;
  /** Guest RAM, DMA_MAPped at IOVA 0 (= GPA 0) when the device opens. */
  readonly guestMemory: SharedMemory;
  readonly log?: Logger;
  /** Longest wait for each server to answer, in ms. */
  readonly timeoutMs?: number;
  /** Called after each device is connected. */
  readonly onConnected?: (d: RemoteDevice) => void;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Connect every vfio-user device of the configuration; on a failure the ones connected are disconnected again. */
export async function connectRemoteDevices(
  config: VmmConfig,
  opts: ConnectRemoteOptions,
): Promise<RemoteDevice[]> {
  const out: RemoteDevice[] = [];
  try {
    for (const d of vfioUserDevices(config)) {
      const socketPath = isAbsolute(d.socket) ? d.socket : resolve(opts.cwd, d.socket);
      let device: VfioUserClientDevice;
      try {
        device = await connectVfioUser(socketPath, {
          guestMemory: opts.guestMemory,
          ...(opts.log ? { log: opts.log } : {}),
          ...(opts.timeoutMs !== undefined
            ? { timeoutMs: opts.timeoutMs, connectTimeoutMs: opts.timeoutMs }
            : {}),
          name: `vfio-user:${socketPath}`,
        });
      } catch (err) {
        const e = toVfioError(err);
        throw new VfioError(
          e.code,
          `${d.origin}: the vfio-user device at ${formatSlot(d.slot)} cannot be attached from ${socketPath}: ${e.problem}`,
          {
            hint: 'Start its server first, e.g. vfiokit serve --socket <path> --device @vfiokit/sample-mtty:mtty-2.',
            cause: err,
          },
        );
      }
      const remote = { config: d, socketPath, device, label: `vfio-user ${baseName(socketPath)}` };
      out.push(remote);
      opts.onConnected?.(remote);
    }
  } catch (err) {
    disconnectRemoteDevices(out);
    throw err;
  }
  return out;
}

/** End each connection (the server releases its DMA mappings and eventfds); never throws. */
export function disconnectRemoteDevices(remote: readonly RemoteDevice[]): VfioError[] {
  const problems: VfioError[] = [];
  for (const r of [...remote].reverse()) {
    try {
      r.device.disconnect();
    } catch (err) {
      problems.push(toVfioError(err));
    }
  }
  return problems;
}
