/**
 * One client's session on a served device: VERSION first, then every command answered through
 * core's DeviceFile (the one place the VFIO rules live). This file holds the dispatch, VERSION
 * and the end of the session; the translation between vfio-user payloads and the device file's
 * ioctl arguments lives by concern beside it: dma.ts (DMA_MAP/UNMAP and DMA_READ/WRITE to the
 * client), regions.ts (REGION_INFO, REGION_IO_FDS, REGION_READ/WRITE), irqs.ts (IRQ_INFO,
 * SET_IRQS and their eventfds) and features.ts (DEVICE_FEATURE and the migration stream). What
 * the client handed over (DMA mappings, eventfds) is released when the connection goes away,
 * however it goes away.
 */
import { type Clock, type Logger, type VfioDevice, VfioError } from '@vfiokit/core';
import { VFIO_DEVICE_GET_INFO, vfio_device_info } from '@vfiokit/core/abi';
import { DeviceFile, type DeviceHost, toVfioError } from '@vfiokit/core/host';
import { closeFds } from '../native/memory.js';
import type { UnixConnection } from '../native/socket.js';
import {
  commandName,
  VFIO_USER_DEVICE_FEATURE,
  VFIO_USER_DEVICE_GET_INFO,
  VFIO_USER_DEVICE_GET_IRQ_INFO,
  VFIO_USER_DEVICE_GET_REGION_INFO,
  VFIO_USER_DEVICE_GET_REGION_IO_FDS,
  VFIO_USER_DEVICE_RESET,
  VFIO_USER_DEVICE_SET_IRQS,
  VFIO_USER_DMA_MAP,
  VFIO_USER_DMA_UNMAP,
  VFIO_USER_MAJOR,
  VFIO_USER_MAX_MSG_FDS_LIMIT,
  VFIO_USER_MIG_DATA_READ,
  VFIO_USER_MIG_DATA_WRITE,
  VFIO_USER_MINOR,
  VFIO_USER_REGION_READ,
  VFIO_USER_REGION_WRITE,
  VFIO_USER_REGION_WRITE_MULTI,
  VFIO_USER_VERSION,
} from '../protocol/constants.js';
import { decodeDeviceInfoRequest, decodeResetRequest, encodeDeviceInfoReply } from '../protocol/device.js';
import type { DmaLayout } from '../protocol/dma.js';
import { type Frame, ownFrame } from '../protocol/framing.js';
import {
  DEFAULT_LIMITS,
  encodeEmptyReply,
  encodeErrorReply,
  isCommand,
  isReply,
  type Limits,
  type MessageHeader,
  maxMessageSize,
  wantsReply,
} from '../protocol/header.js';
import { capabilityLimits, decodeVersion, encodeVersionReply } from '../protocol/version.js';
import { MessageConnection } from '../transport.js';
import { ioctl, NO_FDS, PAGE, type Reply, type SessionContext } from './context.js';
import { SessionDma } from './dma.js';
import { SessionFeatures } from './features.js';
import { SessionIrqs } from './irqs.js';
import { SessionRegions } from './regions.js';

export interface SessionOptions {
  readonly device: VfioDevice;
  readonly name: string;
  readonly log: Logger;
  readonly clock: Clock;
  /** What this server accepts: the limits it announces in its VERSION reply. */
  readonly limits: Limits;
  readonly dmaLayout: DmaLayout;
  /** How long a DMA_READ/DMA_WRITE sent to the client may wait for its reply. */
  readonly requestTimeoutMs: number;
  /** Called once, after everything the client held was released. */
  readonly onEnd: (session: Session) => void;
}

export class Session {
  readonly conn: MessageConnection;
  private readonly o: SessionOptions;
  private negotiated = false;
  private clientLimits: Limits = DEFAULT_LIMITS;
  private file: DeviceFile | undefined;
  private readonly dma: SessionDma;
  private readonly regions: SessionRegions;
  private readonly irqs: SessionIrqs;
  private readonly features: SessionFeatures;
  private ended = false;

  constructor(socket: UnixConnection, options: SessionOptions) {
    this.o = options;
    const ctx: SessionContext = {
      name: options.name,
      log: options.log,
      limits: options.limits,
      clientLimits: () => this.clientLimits,
      device: () => this.device(),
    };
    this.dma = new SessionDma(ctx, {
      dmaLayout: options.dmaLayout,
      requestTimeoutMs: options.requestTimeoutMs,
      connected: () => !this.ended && this.conn.open,
      send: (message) => this.conn.send(message),
    });
    this.regions = new SessionRegions(ctx);
    this.irqs = new SessionIrqs(ctx);
    this.features = new SessionFeatures(ctx);
    this.conn = new MessageConnection(socket, {
      maxMessageSize: maxMessageSize(options.limits),
      onLentMessage: (frame, lent) => this.receive(frame, lent),
      onClose: (reason) => this.end(reason),
    });
  }

  get open(): boolean {
    return !this.ended;
  }

  /** The device file of this session, once VERSION succeeded. */
  get deviceFile(): DeviceFile | undefined {
    return this.file;
  }

  /** Mappings of client memory, with an fd and without one (for tests and logs). */
  get dmaMappings(): number {
    return this.dma.mappings;
  }

  close(reason?: VfioError): void {
    this.conn.close(reason);
  }

  // ---- receiving -------------------------------------------------------------------------

  /**
   * One message from the client. A `lent` frame is reused for the next message: region reads and
   * writes (the hot path) are served from it as it is; every other message is copied first,
   * since its handler may keep the payload (a DMA reply resolves a pending request later,
   * migration data may be queued).
   */
  private receive(lentOrOwn: Frame, lent: boolean): void {
    const frame = lent && !servedInPlace(lentOrOwn.header) ? ownFrame(lentOrOwn) : lentOrOwn;
    const h = frame.header;
    // Whatever a handler does not take over is closed when the message is done.
    const fds = frame.fds;
    let closeAfter = false;
    try {
      if (isReply(h)) {
        if (this.dma.takeReply(frame)) return;
        throw new VfioError(
          'EINVAL',
          `a reply to ${commandName(h.command)} with msg_id ${h.msgId} answers no request of this server.`,
        );
      }
      if (!isCommand(h))
        throw new VfioError('EINVAL', `message type ${h.flags & 0xf} is neither a command nor a reply.`);
      if (!this.negotiated && h.command !== VFIO_USER_VERSION) {
        closeAfter = true;
        throw new VfioError('EINVAL', `${commandName(h.command)} came before VERSION.`, {
          hint: 'The first message of a session must be VFIO_USER_VERSION; the connection is closed.',
        });
      }
      if (h.command === VFIO_USER_VERSION && !this.negotiated) closeAfter = true;
      const reply = this.dispatch(h, frame.payload, fds);
      closeAfter = false;
      if (wantsReply(h)) this.send(reply.bytes, reply.fds);
    } catch (err) {
      const e = toVfioError(err, { device: this.o.name });
      this.o.log.debug(`${commandName(h.command)} (msg_id ${h.msgId}) failed: ${e.message}`);
      if (wantsReply(h)) this.send(encodeErrorReply(h.msgId, h.command, e.errno));
      if (closeAfter) this.conn.close(e);
    } finally {
      if (fds.length) closeFds(fds.splice(0));
    }
  }

  private send(bytes: Uint8Array, fds: readonly number[] = NO_FDS): void {
    if (!this.conn.open) return;
    try {
      this.conn.send(bytes, fds);
    } catch (err) {
      this.o.log.warn(`sending a reply failed: ${toVfioError(err).message}`);
    }
  }

  private dispatch(h: MessageHeader, payload: Uint8Array, fds: number[]): Reply {
    switch (h.command) {
      case VFIO_USER_VERSION:
        return this.version(h, payload);
      case VFIO_USER_DMA_MAP:
        return this.dma.dmaMap(h, payload, fds);
      case VFIO_USER_DMA_UNMAP:
        return this.dma.dmaUnmap(h, payload);
      case VFIO_USER_DEVICE_GET_INFO:
        return this.deviceInfo(h, payload);
      case VFIO_USER_DEVICE_GET_REGION_INFO:
        return this.regions.regionInfo(h, payload);
      case VFIO_USER_DEVICE_GET_REGION_IO_FDS:
        return this.regions.regionIoFds(h, payload);
      case VFIO_USER_DEVICE_GET_IRQ_INFO:
        return this.irqs.irqInfo(h, payload);
      case VFIO_USER_DEVICE_SET_IRQS:
        return this.irqs.setIrqs(h, payload, fds);
      case VFIO_USER_REGION_READ:
        return this.regions.regionRead(h, payload);
      case VFIO_USER_REGION_WRITE:
        return this.regions.regionWrite(h, payload);
      case VFIO_USER_REGION_WRITE_MULTI:
        return this.regions.regionWriteMulti(h, payload);
      case VFIO_USER_DEVICE_RESET:
        decodeResetRequest(payload);
        this.device().reset();
        return { bytes: encodeEmptyReply(h.msgId, h.command) };
      case VFIO_USER_DEVICE_FEATURE:
        return this.features.feature(h, payload);
      case VFIO_USER_MIG_DATA_READ:
        return this.features.migDataRead(h, payload);
      case VFIO_USER_MIG_DATA_WRITE:
        return this.features.migDataWrite(h, payload);
      default:
        throw new VfioError(
          'EINVAL',
          `${commandName(h.command)} is not a command a client sends to this server.`,
          { hint: 'DMA_READ and DMA_WRITE go from server to client.' },
        );
    }
  }

  private device(): DeviceFile {
    // negotiated implies open; kept as a check so a logic slip answers EBADF, never crashes.
    if (!this.file) throw new VfioError('EBADF', 'the device is not open in this session.');
    return this.file;
  }

  // ---- VERSION and GET_INFO --------------------------------------------------------------

  private version(h: MessageHeader, payload: Uint8Array): Reply {
    if (this.negotiated)
      throw new VfioError('EINVAL', 'VERSION was already negotiated in this session.', {
        hint: 'Send VERSION once, as the first message.',
      });
    const v = decodeVersion(payload);
    if (v.major !== VFIO_USER_MAJOR)
      throw new VfioError(
        'EINVAL',
        `protocol major version ${v.major} is not supported; this server speaks ${VFIO_USER_MAJOR}.${VFIO_USER_MINOR}.`,
      );
    this.clientLimits = capabilityLimits(v.capabilities);
    const file = new DeviceFile(this.o.device, this.host());
    file.open();
    this.file = file;
    this.negotiated = true;
    const migration = file.migrationCaps() !== 0 ? { migration: { pgsize: PAGE } } : {};
    return {
      bytes: encodeVersionReply(h.msgId, {
        major: VFIO_USER_MAJOR,
        minor: Math.min(v.minor, VFIO_USER_MINOR),
        capabilities: {
          maxMsgFds: this.o.limits.maxMsgFds,
          maxDataXferSize: this.o.limits.maxDataXferSize,
          ...migration,
          // QEMU 10.2 offers it and coalesces posted writes into REGION_WRITE_MULTI once told.
          writeMultiple: true,
        },
      }),
    };
  }

  private host(): DeviceHost {
    return {
      ...this.dma.host(),
      clock: this.o.clock,
      log: this.o.log,
      resolveEventfd: (fd) => this.irqs.resolveEventfd(fd),
    };
  }

  private deviceInfo(h: MessageHeader, payload: Uint8Array): Reply {
    decodeDeviceInfoRequest(payload);
    const arg = new Uint8Array(vfio_device_info.size);
    const f = vfio_device_info.fields;
    new DataView(arg.buffer).setUint32(f.argsz.offset, arg.length, true);
    const out = new DataView(ioctl(this.device(), VFIO_DEVICE_GET_INFO, arg).buffer);
    return {
      bytes: encodeDeviceInfoReply(h.msgId, {
        flags: out.getUint32(f.flags.offset, true),
        numRegions: out.getUint32(f.num_regions.offset, true),
        numIrqs: out.getUint32(f.num_irqs.offset, true),
      }),
    };
  }

  // ---- the end ---------------------------------------------------------------------------

  /**
   * The client is gone: fail the requests sent to it, reset the device (libvfio-user's
   * VFU_RESET_LOST_CONN), drop its DMA mappings (pins hear onUnmap first), close the device file
   * (which releases and closes every eventfd), and tell the server.
   *
   * The migration state goes back to RUNNING with the reset, or without one when the device has
   * none: libvfio-user's do_device_reset calls the reset callback if there is one and, unless it
   * failed, sets the migration state RUNNING. The next client finds the device running, not in
   * the STOP or STOP_COPY the last one left (the state is the device's, kept across its files).
   */
  private end(reason: VfioError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.dma.failPending(new VfioError('ECONNRESET', 'the client disconnected.'));
    if (reason && reason.code !== 'ECONNRESET') this.o.log.warn(`session ended: ${reason.message}`);
    const file = this.file;
    this.file = undefined;
    const guard = (what: string, fn: () => void) => {
      try {
        fn();
      } catch (err) {
        this.o.log.warn(`${what} after the client left failed: ${toVfioError(err).message}`);
      }
    };
    if (file) {
      let accesses = '';
      guard('counting accesses', () => {
        accesses = accessSummary(file);
      });
      let reset = '';
      if (file.deviceInfo().reset)
        guard('resetting the device', () => {
          file.reset();
          reset = ', device reset';
        });
      else if (file.migrationCaps() !== 0)
        guard('returning the migration state to RUNNING', () => {
          file.migrationToRunning();
          reset = ', migration state back to RUNNING';
        });
      this.o.log.info(`session ended${reset}: ${accesses}`);
      guard('unmapping DMA', () => this.dma.unmapAll());
      guard('closing the device', () => file.close());
    } else guard('unmapping DMA', () => this.dma.unmapAll());
    this.dma.dispose();
    this.irqs.dispose();
    this.regions.clear();
    this.o.onEnd(this);
  }
}

/**
 * "trapped accesses by region: 0 (BAR0): 120 reads/8 writes, 2 (BAR2): 0 reads/0 writes, ...":
 * every implemented region, so that an mmapped BAR that saw none says so. Accesses through an
 * mmap never reach the server and are not counted; that is what the count proves.
 */
function accessSummary(file: DeviceFile): string {
  const parts: string[] = [];
  for (let i = 0; i < file.deviceInfo().numRegions; i++) {
    const c = file.regionCounters(i);
    if (!c) continue;
    let size = 0;
    try {
      size = file.regionInfo(i).size;
    } catch {
      continue;
    }
    if (size === 0) continue;
    const errors = c.errors ? `, ${c.errors} refused` : '';
    parts.push(
      `${i}${REGION_NAMES[i] ? ` (${REGION_NAMES[i]})` : ''}: ${c.reads} reads/${c.writes} writes${errors}`,
    );
  }
  return `trapped accesses by region: ${parts.join(', ') || 'none'}.`;
}

/** vfio-pci's region indexes (linux/vfio.h VFIO_PCI_*_REGION_INDEX). */
const REGION_NAMES: readonly string[] = [
  'BAR0',
  'BAR1',
  'BAR2',
  'BAR3',
  'BAR4',
  'BAR5',
  'ROM',
  'config',
  'VGA',
];

/**
 * Commands served from a lent frame: their handlers are done with the payload when they return
 * (a plugin's write handler gets the bytes for the call only, as with every trapped access).
 */
function servedInPlace(h: MessageHeader): boolean {
  const c = h.command;
  return (
    isCommand(h) &&
    (c === VFIO_USER_REGION_READ || c === VFIO_USER_REGION_WRITE || c === VFIO_USER_REGION_WRITE_MULTI)
  );
}

/** The limits a server announces, with libvfio-user's values where the caller gives none. */
export function serverLimits(l: { maxDataXferSize?: number; maxMsgFds?: number } = {}): Limits {
  const maxDataXferSize = l.maxDataXferSize ?? DEFAULT_LIMITS.maxDataXferSize;
  // libvfio-user advertises max_msg_fds 8 (lib/tran.c); SET_IRQS for many vectors needs more.
  const maxMsgFds = l.maxMsgFds ?? 8;
  if (!Number.isInteger(maxDataXferSize) || maxDataXferSize < 1 || maxDataXferSize > 0xffffffff)
    throw new VfioError('EINVAL', `maxDataXferSize ${maxDataXferSize} is not a count of bytes.`);
  if (!Number.isInteger(maxMsgFds) || maxMsgFds < 0 || maxMsgFds > VFIO_USER_MAX_MSG_FDS_LIMIT)
    throw new VfioError('EINVAL', `maxMsgFds ${maxMsgFds} must be 0..${VFIO_USER_MAX_MSG_FDS_LIMIT}.`);
  return { maxDataXferSize, maxMsgFds };
}
