/**
 * The machine a migrating guest runs in, as both ends describe it. The source sends its
 * description first; the destination, booted from its own configuration as QEMU's `-incoming`
 * is, compares it with its own and refuses any difference before a byte of state moves: the
 * guest would otherwise resume on a machine whose RAM, devices, BARs or vectors are not the ones
 * it programmed.
 */
import { formatSize } from '../config/index.js';
import type { MigratingDevice } from './common.js';

export interface DeviceDescription {
  readonly slot: string;
  readonly plugin: string;
  readonly type: string;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  readonly classCode: number;
  readonly revision: number;
  readonly bars: readonly {
    readonly index: number;
    readonly kind: string;
    readonly size: number;
    readonly address: number;
  }[];
  readonly interrupts: { readonly kind: string; readonly vectors: readonly number[] };
}

export interface MachineDescription {
  readonly ramSize: number;
  readonly devices: readonly DeviceDescription[];
}

export function describeDevice(d: MigratingDevice): DeviceDescription {
  const p = d.probed;
  return {
    slot: d.slot,
    plugin: d.plugin,
    type: d.type,
    vendorId: p.vendorId,
    deviceId: p.deviceId,
    subsystemVendorId: p.subsystemVendorId,
    subsystemId: p.subsystemId,
    classCode: p.classCode,
    revision: p.revision,
    bars: p.bars.map((b) => ({ index: b.index, kind: b.kind, size: b.size, address: b.address })),
    interrupts: { kind: p.interrupts.kind, vectors: [...p.interrupts.vectors] },
  };
}

export function describeMachine(ramSize: number, devices: readonly MigratingDevice[]): MachineDescription {
  return { ramSize, devices: devices.map(describeDevice) };
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

function identity(d: DeviceDescription): string {
  return `${d.type} of ${d.plugin}`;
}

function ids(d: DeviceDescription): string {
  return `${hex(d.vendorId, 4)}:${hex(d.deviceId, 4)} (subsystem ${hex(d.subsystemVendorId, 4)}:${hex(d.subsystemId, 4)}, class ${hex(d.classCode, 6)}, revision ${hex(d.revision, 2)})`;
}

function bars(d: DeviceDescription): string {
  if (d.bars.length === 0) return 'no BARs';
  return d.bars
    .map((b) => `BAR ${b.index} ${b.kind} ${formatSize(b.size)} at 0x${b.address.toString(16)}`)
    .join(', ');
}

function interrupts(d: DeviceDescription): string {
  return `${d.interrupts.kind} vectors [${d.interrupts.vectors.join(', ')}]`;
}

/** The first difference between the source's machine and this one, as a sentence; undefined when they match. */
export function compareMachines(source: MachineDescription, here: MachineDescription): string | undefined {
  if (source.ramSize !== here.ramSize)
    return `the source's guest has machine.ramSize ${formatSize(source.ramSize)}; this destination has ${formatSize(here.ramSize)}.`;
  for (const s of source.devices) {
    const h = here.devices.find((d) => d.slot === s.slot);
    if (!h)
      return `the source migrates ${identity(s)} at ${s.slot}, and this destination has no migrating device there.`;
    const pairs: [string, (d: DeviceDescription) => string][] = [
      ['is', identity],
      ['has the PCI identity', ids],
      ['was probed with', bars],
      ['was set up with', interrupts],
    ];
    for (const [verb, show] of pairs) {
      const a = show(s);
      const b = show(h);
      if (a !== b) return `the device at ${s.slot} ${verb} ${a} on the source but ${b} here.`;
    }
  }
  for (const h of here.devices) {
    if (!source.devices.some((s) => s.slot === h.slot))
      return `this destination has ${identity(h)} at ${h.slot}, which the source does not migrate.`;
  }
  return undefined;
}
