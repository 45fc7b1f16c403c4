/**
 * `vfiokit serve`: create devices of a plugin and serve each on its own UNIX socket over
 * vfio-user, so that QEMU (`-device vfio-user-pci`), another vfiokit or any vfio-user client
 * attaches it. The plugin is loaded by the VMM's loader (by package name or path, like `run`)
 * and probed once, with a host whose mmappable memory comes from memfds (their fds travel with
 * REGION_INFO replies): several devices of one plugin are mdevs of the same parent, as two
 * vGPUs of one host GPU are. Served until SIGINT or SIGTERM; then the sessions end, the socket
 * files are removed and the instances are removed from their parent.
 */
import { resolve } from 'node:path';
import { isUuid, type Logger, VfioError } from '@vfiokit/core';
import { toVfioError } from '@vfiokit/core/host';
import { LinuxVfioDevice } from '@vfiokit/linux-vfio';
import { createPluginHostForServer, runServe } from '@vfiokit/vfio-user';
import { type MdevDeviceConfig, stableUuid } from '../config/index.js';
import { type FrameSaver, saveDeviceFrames } from '../display/save-frames.js';
import { createLogger, findParent, loadPlugin, type ProbedPlugin, pluginFault } from '../loader/index.js';
import { makeDirectory } from '../make-directory.js';
import { parseCommand, strings, UsageError } from './args.js';
import { USAGE } from './help.js';
import type { CliIo } from './io.js';
import { checkSocketPath } from './socket-path.js';

export interface ServeDeviceSpec {
  readonly plugin: string;
  readonly type: string;
  readonly uuid?: string;
}

const SPEC_EXAMPLE = '@vfiokit/sample-mtty:mtty-2';

/** `<plugin>:<type>[:uuid]`: a package name (or module path) without colons, an mdev type id, a UUID. */
export function parseServeDevice(text: string): ServeDeviceSpec {
  const parts = text.split(':');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p.length === 0)) {
    throw new UsageError(
      `--device "${text}" is not <plugin>:<type>[:uuid], such as ${SPEC_EXAMPLE}.`,
      'serve',
    );
  }
  const [plugin, type, uuid] = parts;
  if (uuid !== undefined && !isUuid(uuid)) {
    throw new UsageError(
      `--device "${text}" ends in "${uuid}", which is not a UUID such as 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001.`,
      'serve',
    );
  }
  return { plugin, type, ...(uuid !== undefined ? { uuid: uuid.toLowerCase() } : {}) };
}

/**
 * `--plugin-option key=value`: what a configuration's `plugins[].options` holds. `true`/`false`
 * and decimal numbers become booleans and numbers, as YAML reads them; the rest stays a string.
 */
export function parsePluginOptions(list: readonly string[]): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) {
      throw new UsageError(
        `--plugin-option "${item}" is not key=value, such as --plugin-option profile=T4-4C.`,
        'serve',
      );
    }
    const key = item.slice(0, eq);
    const text = item.slice(eq + 1);
    options[key] =
      text === 'true'
        ? true
        : text === 'false'
          ? false
          : /^-?(0|[1-9]\d*)(\.\d+)?$/.test(text)
            ? Number(text)
            : text;
  }
  return options;
}

/**
 * Lines the server writes while serving: information on stdout, warnings and errors on stderr.
 * Serving several devices, each device's lines start with its UUID (`prefix`), once: a
 * device's own message that already starts with it is not prefixed again.
 */
export function serveLogger(io: Pick<CliIo, 'stdout' | 'stderr'>, prefix = ''): Logger {
  const own = (m: string) => (prefix !== '' && m.startsWith(prefix) ? m.slice(prefix.length) : m);
  const err = (level: string) => (m: string) =>
    io.stderr.write(`vfiokit serve: ${prefix}${level}: ${own(m)}\n`);
  return {
    debug() {},
    info: (m) => io.stdout.write(`vfiokit serve: ${prefix}${own(m)}\n`),
    warn: err('warning'),
    error: err('error'),
  };
}

/** The server's failure to listen, said plainly for an address in use. */
function listenError(err: unknown, socketPath: string): VfioError {
  const e = toVfioError(err);
  if (e.code !== 'EADDRINUSE') return e;
  return new VfioError(
    'EADDRINUSE',
    `the socket path ${socketPath} is in use: a server already listens there.`,
    {
      hint: 'Stop that server, or give another --socket path.',
      cause: err,
    },
  );
}

/**
 * `serve --vfio <device>`: a device of the host kernel (bound to vfio-pci, or an mdev) served
 * over vfio-user. The client's DMA_MAPs are mirrored into the kernel's IOMMU, its SET_IRQS
 * eventfds are fed by the kernel's, and region accesses go to the kernel device.
 */
async function serveKernelDevice(spec: string, socketPath: string, io: CliIo): Promise<number> {
  checkSocketPath(socketPath);
  let device: LinuxVfioDevice;
  try {
    device = LinuxVfioDevice.open(spec);
  } catch (err) {
    // The device as the place: the message then carries the errno name and what was asked for.
    throw toVfioError(err, { device: spec });
  }
  try {
    await runServe({ socketPath, device, log: serveLogger(io) });
  } catch (err) {
    throw listenError(err, socketPath);
  } finally {
    device.dispose();
  }
  io.stdout.write(`vfiokit serve: stopped; ${socketPath} is removed.\n`);
  return 0;
}

/** One `--device` and the `--socket` it is served on. */
interface ServeEntry {
  readonly text: string;
  readonly spec: ServeDeviceSpec;
  readonly socketPath: string;
}

/**
 * The `--device`/`--socket` pairs, in order: the first --socket serves the first --device. Two
 * entries may not share a socket path or a UUID.
 */
export function pairServeDevices(
  devices: readonly string[],
  sockets: readonly string[],
  cwd: string,
): ServeEntry[] {
  if (devices.length !== sockets.length) {
    throw new UsageError(
      `vfiokit serve got ${devices.length} --device and ${sockets.length} --socket: each --device needs its own --socket, paired in order (the first --socket serves the first --device).`,
      'serve',
    );
  }
  const entries = devices.map((text, i) => ({
    text,
    spec: parseServeDevice(text),
    socketPath: resolve(cwd, sockets[i]),
  }));
  const paths = new Set<string>();
  const uuids = new Set<string>();
  for (const e of entries) {
    if (paths.has(e.socketPath)) {
      throw new UsageError(
        `--socket ${e.socketPath} is given for two devices: each device is served on its own socket.`,
        'serve',
      );
    }
    paths.add(e.socketPath);
    const { uuid } = e.spec;
    if (uuid !== undefined) {
      if (uuids.has(uuid)) {
        throw new UsageError(
          `--device "${e.text}": UUID ${uuid} is given for two devices; each device needs its own.`,
          'serve',
        );
      }
      uuids.add(uuid);
    }
  }
  return entries;
}

/** A created device, where it is served, and its parent to remove it from. */
interface Created {
  readonly entry: ServeEntry;
  readonly uuid: string;
  readonly parent: ReturnType<typeof findParent>['parent'];
  readonly device: ReturnType<ReturnType<typeof findParent>['parent']['create']>['device'];
}

export async function serveCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommand(
    'serve',
    argv,
    {
      help: { type: 'boolean', short: 'h' },
      socket: { type: 'string', multiple: true },
      device: { type: 'string', multiple: true },
      vfio: { type: 'string' },
      'plugin-option': { type: 'string', multiple: true },
      'save-frames': { type: 'string' },
    },
    0,
  );
  if (values.help) {
    io.stdout.write(USAGE.serve);
    return 0;
  }
  const sockets = strings(values.socket);
  const deviceTexts = strings(values.device);
  const vfio = strings(values.vfio)[0];
  if (sockets.length === 0 || sockets.some((s) => s === '')) {
    throw new UsageError('vfiokit serve needs --socket <path>, the UNIX socket to listen on.', 'serve');
  }
  if (vfio !== undefined) {
    if (deviceTexts.length > 0)
      throw new UsageError('vfiokit serve takes --device or --vfio, not both.', 'serve');
    if (sockets.length > 1)
      throw new UsageError(
        `vfiokit serve --vfio serves one device on one socket; it got ${sockets.length} --socket.`,
        'serve',
      );
    return serveKernelDevice(vfio, resolve(io.cwd, sockets[0]), io);
  }
  if (deviceTexts.length === 0) {
    throw new UsageError(
      `vfiokit serve needs --device <plugin>:<type>[:uuid], such as ${SPEC_EXAMPLE}.`,
      'serve',
    );
  }
  const entries = pairServeDevices(deviceTexts, sockets, io.cwd);
  const options = parsePluginOptions(strings(values['plugin-option']));
  for (const e of entries) checkSocketPath(e.socketPath);
  const frameArg = strings(values['save-frames'])[0];
  const frameDir = frameArg === undefined ? undefined : resolve(io.cwd, frameArg);
  // A folder that cannot be made is refused before any device exists.
  if (frameDir !== undefined) makeDirectory(frameDir, 'the frames folder');

  // Each plugin is loaded and probed once: the devices of one plugin share its parents, as
  // mdevs of one parent device do on a host.
  const pluginLog = createLogger((line) => io.stderr.write(`vfiokit serve: ${line}\n`), 'warn');
  const probedBy = new Map<string, ProbedPlugin>();
  for (const { spec } of entries) {
    if (probedBy.has(spec.plugin)) continue;
    const { plugin } = await loadPlugin(spec.plugin, { cwd: io.cwd });
    try {
      probedBy.set(spec.plugin, {
        specifier: spec.plugin,
        plugin,
        parents: plugin.probe(createPluginHostForServer({ log: pluginLog, options })),
      });
    } catch (err) {
      throw pluginFault(err, `plugin "${spec.plugin}" failed to probe its parent devices`, spec.plugin);
    }
  }
  const created: Created[] = [];
  const removeAll = () => {
    for (const { uuid, parent, entry } of created.splice(0).reverse()) {
      try {
        parent.remove(uuid);
      } catch (err) {
        io.stderr.write(
          `vfiokit serve: warning: ${pluginFault(err, `removing ${uuid} from parent ${parent.name} failed`, entry.spec.plugin).problem}\n`,
        );
      }
    }
  };
  const frames: FrameSaver[] = [];
  try {
    for (const entry of entries) {
      const { spec } = entry;
      const uuid = spec.uuid ?? stableUuid(`serve/${spec.plugin}/${spec.type}@${entry.socketPath}`);
      const want: MdevDeviceConfig = {
        kind: 'mdev',
        plugin: spec.plugin,
        parent: undefined,
        type: spec.type,
        uuid,
        slot: { bus: 0, device: 0, function: 0 },
        attrs: [],
        origin: `--device "${entry.text}"`,
      };
      const { parent } = findParent(want, [probedBy.get(spec.plugin)!]);
      let device: Created['device'];
      try {
        device = parent.create(spec.type, uuid).device;
      } catch (err) {
        throw pluginFault(err, `creating ${spec.type} ${uuid} on parent ${parent.name} failed`, spec.plugin);
      }
      created.push({ entry, uuid, parent, device });
    }
    if (frameDir !== undefined) {
      for (const { device } of created) {
        frames.push(
          saveDeviceFrames(device, frameDir, {
            warn: (problem) => io.stderr.write(`vfiokit serve: warning: --save-frames: ${problem}\n`),
          }),
        );
      }
    }
    // One server per device; a device that cannot listen stops the others.
    const stop = new AbortController();
    const several = created.length > 1;
    const served = await Promise.allSettled(
      created.map(async ({ entry, device, uuid }) => {
        try {
          await runServe({
            socketPath: entry.socketPath,
            device,
            log: serveLogger(io, several ? `${uuid}: ` : ''),
            signal: stop.signal,
          });
        } catch (err) {
          stop.abort();
          throw listenError(err, entry.socketPath);
        }
      }),
    );
    const failed = served.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } finally {
    for (const f of frames) f.stop();
    removeAll();
  }
  for (const e of entries) io.stdout.write(`vfiokit serve: stopped; ${e.socketPath} is removed.\n`);
  return 0;
}
