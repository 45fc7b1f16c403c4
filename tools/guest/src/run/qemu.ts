/**
 * QEMU for one boot: q35 under TCG, guest RAM in a shared memfd (QEMU's vfio-user client sends
 * DMA_MAP with the fd only for shareable memory), the console on the first UART and the
 * results on the second, each into a file, the rendezvous socket on the third when the boot
 * runs guests at once, one `vfio-user-pci` device per served device it attaches.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { adopt } from './children.js';

export interface QemuDevice {
  readonly socket: string;
  readonly addr: string;
  readonly properties?: Readonly<Record<string, unknown>>;
}

export interface QemuOptions {
  readonly qemu: string;
  readonly kernel: string;
  readonly initrd: string;
  readonly append: readonly string[];
  readonly memoryMiB: number;
  readonly smp: number;
  readonly devices: readonly QemuDevice[];
  readonly consoleFile: string;
  readonly resultsFile: string;
  readonly traceEvents: readonly string[];
  readonly traceFile: string;
  readonly extra: readonly string[];
  /** The boot's rendezvous socket (run/rendezvous.ts), on the third UART (the guest's ttyS2). */
  readonly syncSocket?: string;
}

/**
 * The kernel command line every boot starts from: iomem=relaxed lets devmem read BARs;
 * no_timer_check skips the IO-APIC timer probe that a TCG guest on a busy host can fail
 * ("IO-APIC + timer doesn't work!"), as virtual machine images do.
 */
export const BASE_APPEND = [
  'console=ttyS0',
  '8250.nr_uarts=8',
  'iomem=relaxed',
  'panic=-1',
  'no_timer_check',
];

/** The `-device` JSON of a served device: `socket` is a SocketAddress, so only JSON can say it. */
export function vfioUserDevice(d: QemuDevice): string {
  return JSON.stringify({
    driver: 'vfio-user-pci',
    socket: { path: d.socket, type: 'unix' },
    addr: d.addr,
    ...d.properties,
  });
}

/** Firmware beside the binary (the shared build carries bios-256k.bin); a packaged QEMU finds its own. */
function firmwareArgs(qemu: string): string[] {
  const dir = dirname(qemu);
  return existsSync(join(dir, 'bios-256k.bin')) ? ['-L', dir] : [];
}

export function qemuArgs(o: QemuOptions): string[] {
  return [
    ...firmwareArgs(o.qemu),
    '-accel',
    'tcg',
    '-smp',
    String(o.smp),
    '-machine',
    'q35,memory-backend=mem0',
    '-object',
    `memory-backend-memfd,id=mem0,share=on,size=${o.memoryMiB}M`,
    '-m',
    `${o.memoryMiB}M`,
    '-kernel',
    o.kernel,
    '-initrd',
    o.initrd,
    '-append',
    o.append.join(' '),
    '-display',
    'none',
    '-vga',
    'none',
    '-nic',
    'none',
    '-no-reboot',
    '-monitor',
    'none',
    '-chardev',
    `file,id=console,path=${o.consoleFile}`,
    '-serial',
    'chardev:console',
    '-chardev',
    `file,id=results,path=${o.resultsFile}`,
    '-serial',
    'chardev:results',
    ...(o.syncSocket ? ['-chardev', `socket,id=sync,path=${o.syncSocket}`, '-serial', 'chardev:sync'] : []),
    ...(o.traceEvents.length > 0 ? ['-D', o.traceFile, ...o.traceEvents.flatMap((e) => ['-trace', e])] : []),
    ...o.devices.flatMap((d) => ['-device', vfioUserDevice(d)]),
    ...o.extra,
  ];
}

export interface QemuRun {
  readonly pid: number | undefined;
  /** Resolves when QEMU exits (or was killed at the deadline). */
  readonly done: Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    timedOut: boolean;
    stderr: string;
  }>;
  kill(): void;
}

export function startQemu(o: QemuOptions, timeoutMs: number): QemuRun {
  const child = adopt(spawn(o.qemu, qemuArgs(o), { stdio: ['ignore', 'pipe', 'pipe'] }), 'SIGKILL');
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const done = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    timedOut: boolean;
    stderr: string;
  }>((resolve) => {
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({
        code: -1,
        signal: null,
        timedOut,
        stderr: `${stderr}could not start ${o.qemu}: ${err.message}\n`,
      });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, stderr });
    });
  });
  return { pid: child.pid, done, kill: () => child.kill('SIGKILL') };
}

/** A file QEMU writes, read whole (empty when it never appeared). */
export function readOutput(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
