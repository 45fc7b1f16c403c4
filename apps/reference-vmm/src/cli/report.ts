/**
 * The run report as text: the device tree with each region and how it reaches the guest,
 * interrupts, access counters, errors, and the guest drivers' results.
 */
import { formatPciAddress } from '@vfiokit/core';
import { formatSize, formatSlot, type VmmConfig } from '../config/index.js';
import type { CreatedDevice } from '../loader/index.js';
import type { DriverRun, IgdReport, MachineReport } from '../machine/index.js';

const hex = (n: number) => `0x${n.toString(16)}`;

/** A device the VMM does not create: served by another process, or the host kernel's own. */
type RemoteEntry =
  | { slot: string; transport: 'vfio-user'; socket: string }
  | { slot: string; transport: 'kernel-vfio'; device: string };

/** How a device's accesses reach it: an in-process call, a vfio-user socket to another process, or the kernel's VFIO. */
function transportOf(config: VmmConfig, slot: string): string {
  const remote = config.devices.find((c) => c.kind !== 'mdev' && formatPciAddress(c.slot) === slot);
  if (remote?.kind === 'vfio') return `kernel VFIO, device ${remote.device}`;
  return remote && remote.kind === 'vfio-user' ? `vfio-user, socket ${remote.socket}` : 'in-process';
}

function isKernelDevice(config: VmmConfig, slot: string): boolean {
  return config.devices.some((c) => c.kind === 'vfio' && formatPciAddress(c.slot) === slot);
}

function vectors(perVector: Readonly<Record<string, number>>): string {
  const parts = Object.entries(perVector).map(([v, n]) => `${v}: ${n}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

export interface RunOutcome {
  readonly driversOk: number;
  readonly driversFailed: number;
  readonly deviceErrors: number;
  /** True when nothing failed. */
  readonly ok: boolean;
}

export function outcome(report: MachineReport, runs: readonly DriverRun[]): RunOutcome {
  const driversFailed = runs.filter((r) => !r.ok).length;
  const deviceErrors = report.errors.length + report.errorsDropped;
  return {
    driversOk: runs.length - driversFailed,
    driversFailed,
    deviceErrors,
    ok: driversFailed === 0 && deviceErrors === 0,
  };
}

export function renderRunReport(
  config: VmmConfig,
  devices: readonly CreatedDevice[],
  report: MachineReport,
  runs: readonly DriverRun[],
): string {
  const out: string[] = [];
  const o = outcome(report, runs);
  out.push(`vfiokit run: ${config.source}`);
  out.push(
    `Machine: RAM ${formatSize(report.ramSize)}, ECAM at ${hex(report.layout.ecam.base)}, MMIO ${hex(report.layout.mmio32.base)}-${hex(report.layout.mmio32.limit)}, I/O ${hex(report.layout.io.base)}-${hex(report.layout.io.limit)}`,
  );
  out.push('');
  out.push('Device tree');
  for (const d of report.devices) {
    const created = devices.find((c) => formatPciAddress(c.config.slot) === d.slot);
    const id = `${d.vendorId.toString(16).padStart(4, '0')}:${d.deviceId.toString(16).padStart(4, '0')} class ${d.classCode.toString(16).padStart(6, '0')}`;
    const who = d.emulated
      ? 'emulated by the VMM'
      : d.plugin === undefined
        ? `${isKernelDevice(config, d.slot) ? 'a device of the host kernel' : 'served elsewhere'}, ${d.name}`
        : `plugin ${d.plugin ?? '?'}${created ? `, parent ${created.parent.name}` : ''}, type ${d.typeId ?? '?'}, ${d.name}`;
    out.push(`  ${d.slot} ${d.label}  ${id}  ${who}${d.resettable ? '' : ', no reset'}`);
    for (const r of d.regions) {
      if (r.size === 0) continue;
      const kind = r.barKind ? ` ${r.barKind}${r.prefetchable ? ' prefetchable' : ''}` : '';
      const at = r.guestAddress === null ? '' : ` at ${hex(r.guestAddress)}`;
      const parts =
        r.parts.length > 1 || (r.parts.length === 1 && r.mapping === 'mixed')
          ? `: ${r.parts.map((p) => `${hex(p.offset)}+${hex(p.size)} ${p.how} (${p.reads}r/${p.writes}w)`).join(', ')}`
          : r.parts.length === 1
            ? ` (${r.parts[0].reads} reads, ${r.parts[0].writes} writes)`
            : '';
      out.push(`    ${r.name.padEnd(6)} ${formatSize(r.size).padStart(5)}${kind}${at}  ${r.mapping}${parts}`);
    }
    if (!d.emulated) {
      out.push(`    transport: ${transportOf(config, d.slot)}`);
      const irq = d.interrupts;
      const intx = irq.intxVector === null ? '' : `, INTx vector ${hex(irq.intxVector)}`;
      out.push(
        `    interrupts: ${irq.mode}${intx}, ${irq.total} delivered${vectors(irq.perVector)}, ${irq.setIrqsCalls} SET_IRQS`,
      );
      const access = d.access
        .filter((a) => a.reads || a.writes || a.errors)
        .map(
          (a) =>
            `region ${a.region}: ${a.reads} reads, ${a.writes} writes${a.errors ? `, ${a.errors} errors` : ''}`,
        );
      if (access.length) out.push(`    trapped accesses: ${access.join('; ')}`);
    }
  }
  out.push('');
  out.push(
    `Interrupts: ${report.interrupts.total} delivered${vectors(report.interrupts.perVector)}, ${report.interrupts.spurious} spurious, ${report.interrupts.eois} EOIs`,
  );
  const un = report.unclaimed;
  out.push(
    `Unclaimed accesses: ${un.memoryReads} memory reads, ${un.memoryWrites} memory writes, ${un.ioReads} I/O reads, ${un.ioWrites} I/O writes`,
  );
  if (report.errors.length === 0) out.push('Errors: none');
  else {
    out.push(`Errors: ${report.errors.length + report.errorsDropped}`);
    for (const e of report.errors) {
      const where = [
        e.slot,
        e.device,
        e.region !== undefined ? `region ${e.region}` : '',
        e.offset !== undefined ? `offset ${hex(e.offset)}` : '',
      ]
        .filter(Boolean)
        .join(', ');
      out.push(`  ${where}: ${e.operation}: ${e.message}`);
    }
    if (report.errorsDropped) out.push(`  ... and ${report.errorsDropped} more`);
  }
  if (report.igd !== undefined) renderIgd(report.igd, out);
  out.push('');
  out.push('Drivers');
  if (runs.length === 0) out.push('  none matched');
  for (const r of runs) {
    out.push(
      `  ${r.ok ? 'ok  ' : 'FAIL'} ${formatSlot(r.slot)} ${r.driver}: ${r.summary}${r.error ? ` (${r.error})` : ''}`,
    );
  }
  out.push('');
  out.push(
    `Result: ${o.ok ? 'ok' : 'FAILED'}: ${o.driversOk} driver run${o.driversOk === 1 ? '' : 's'} ok, ${o.driversFailed} failed, ${o.deviceErrors} device error${o.deviceErrors === 1 ? '' : 's'}.`,
  );
  return `${out.join('\n')}\n`;
}

/** The run as JSON: the configuration as resolved, the machine's report, the drivers' results. */
export function runJson(
  config: VmmConfig,
  devices: readonly CreatedDevice[],
  report: MachineReport,
  runs: readonly DriverRun[],
) {
  return {
    source: config.source,
    outcome: outcome(report, runs),
    devices: devices.map((d) => ({
      slot: formatSlot(d.config.slot),
      plugin: d.plugin.specifier,
      parent: d.parent.name,
      type: d.config.type,
      uuid: d.instance.uuid,
    })),
    /** Devices served by another process (an in-process device above has no transport field). */
    remote: config.devices.flatMap((d): RemoteEntry[] =>
      d.kind === 'vfio-user'
        ? [{ slot: formatSlot(d.slot), transport: 'vfio-user' as const, socket: d.socket }]
        : d.kind === 'vfio'
          ? [{ slot: formatSlot(d.slot), transport: 'kernel-vfio' as const, device: d.device }]
          : [],
    ),
    drivers: runs.map((r) => ({ ...r, slot: formatSlot(r.slot) })),
    report,
  };
}

/** The IGD section: fw_cfg files, emulated registers and mirrors, legacy mode, the firmware step. */
function renderIgd(igd: IgdReport, out: string[]): void {
  out.push(
    `IGD assignment: ${igd.slot} generation ${igd.generation}, stolen memory ${formatSize(igd.stolenBytes)}`,
  );
  out.push(
    `  fw_cfg: ${igd.fwCfg.map((f) => `${f.name} (${f.size} bytes, key ${hex(f.select)})`).join(', ')}`,
  );
  out.push(
    `  emulated: ${igd.emulated.map((e) => `${e.name} ${hex(e.offset)} = ${hex(e.value)}`).join(', ')}; BAR0 mirrors: ${igd.mirrors.map((m) => `${hex(m.offset)} -> config ${hex(m.config)}${m.installed ? '' : ' (not installed)'}`).join(', ') || 'none'}`,
  );
  out.push(`  legacy mode: ${igd.legacyMode.enabled ? 'on' : 'off'}: ${igd.legacyMode.reason}`);
  out.push(
    `  firmware: ${igd.firmware === null ? 'not run' : `${igd.firmware.ok ? 'ok' : 'FAILED'}: ${igd.firmware.summary}`}`,
  );
}
