/**
 * `vfiokit serve`: create one device of a plugin and serve it on a UNIX socket over vfio-user,
 * so that QEMU (`-device vfio-user-pci`), another vfiokit or any vfio-user client attaches it.
 * The plugin is loaded by the VMM's loader (by package name or path, like `run`), probed with a
 * host whose mmappable memory comes from memfds (their fds travel with REGION_INFO replies),
 * and served until SIGINT or SIGTERM; then the session ends, the socket file is removed and the
 * instance is removed from its parent.
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

/** Lines the server writes while serving: information on stdout, warnings and errors on stderr. */
function serveLogger(io: CliIo): Logger {
  const err = (level: string) => (m: string) => io.stderr.write(`vfiokit serve: ${level}: ${m}\n`);
  return {
    debug() {},
    info: (m) => io.stdout.write(`vfiokit serve: ${m}\n`),
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

export async function serveCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommand(
    'serve',
    argv,
    {
      help: { type: 'boolean', short: 'h' },
      socket: { type: 'string' },
      device: { type: 'string' },
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
  const socket = strings(values.socket)[0];
  const deviceText = strings(values.device)[0];
  const vfio = strings(values.vfio)[0];
  if (socket === undefined || socket === '') {
    throw new UsageError('vfiokit serve needs --socket <path>, the UNIX socket to listen on.', 'serve');
  }
  if (vfio !== undefined) {
    if (deviceText !== undefined)
      throw new UsageError('vfiokit serve takes --device or --vfio, not both.', 'serve');
    return serveKernelDevice(vfio, resolve(io.cwd, socket), io);
  }
  if (deviceText === undefined) {
    throw new UsageError(
      `vfiokit serve needs --device <plugin>:<type>[:uuid], such as ${SPEC_EXAMPLE}.`,
      'serve',
    );
  }
  const spec = parseServeDevice(deviceText);
  const options = parsePluginOptions(strings(values['plugin-option']));
  const socketPath = resolve(io.cwd, socket);
  checkSocketPath(socketPath);
  const frameArg = strings(values['save-frames'])[0];
  const frameDir = frameArg === undefined ? undefined : resolve(io.cwd, frameArg);
  // A folder that cannot be made is refused before any device exists.
  if (frameDir !== undefined) makeDirectory(frameDir, 'the frames folder');

  const pluginLog = createLogger((line) => io.stderr.write(`vfiokit serve: ${line}\n`), 'warn');
  const { plugin } = await loadPlugin(spec.plugin, { cwd: io.cwd });
  let probed: ProbedPlugin;
  try {
    probed = {
      specifier: spec.plugin,
      plugin,
      parents: plugin.probe(createPluginHostForServer({ log: pluginLog, options })),
    };
  } catch (err) {
    throw pluginFault(err, `plugin "${spec.plugin}" failed to probe its parent devices`, spec.plugin);
  }
  const uuid = spec.uuid ?? stableUuid(`serve/${spec.plugin}/${spec.type}@${socketPath}`);
  const want: MdevDeviceConfig = {
    kind: 'mdev',
    plugin: spec.plugin,
    parent: undefined,
    type: spec.type,
    uuid,
    slot: { bus: 0, device: 0, function: 0 },
    attrs: [],
    origin: `--device "${deviceText}"`,
  };
  const { parent } = findParent(want, [probed]);
  let device: ReturnType<typeof parent.create>['device'];
  try {
    device = parent.create(spec.type, uuid).device;
  } catch (err) {
    throw pluginFault(err, `creating ${spec.type} ${uuid} on parent ${parent.name} failed`, spec.plugin);
  }
  let frames: FrameSaver | undefined;
  try {
    if (frameDir !== undefined) {
      frames = saveDeviceFrames(device, frameDir, {
        warn: (problem) => io.stderr.write(`vfiokit serve: warning: --save-frames: ${problem}\n`),
      });
    }
    await runServe({ socketPath, device, log: serveLogger(io) });
  } catch (err) {
    throw listenError(err, socketPath);
  } finally {
    frames?.stop();
    try {
      parent.remove(uuid);
    } catch (err) {
      io.stderr.write(
        `vfiokit serve: warning: ${pluginFault(err, `removing ${uuid} from parent ${parent.name} failed`, spec.plugin).problem}\n`,
      );
    }
  }
  io.stdout.write(`vfiokit serve: stopped; ${socketPath} is removed.\n`);
  return 0;
}
