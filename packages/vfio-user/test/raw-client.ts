/** A bare async vfio-user client for tests: send a message, get the reply with the same msg_id. */
import { closeFds } from '../src/native/memory.js';
import type { Frame } from '../src/protocol/framing.js';
import { isCommand } from '../src/protocol/header.js';
import { encodeVersionRequest } from '../src/protocol/version.js';
import { MessageConnection } from '../src/transport.js';

export class RawClient {
  private waiting = new Map<number, (f: Frame) => void>();
  private id = 0;
  /** Server-to-client commands (DMA_READ/WRITE), for the test to answer; by default they are dropped. */
  onCommand: (f: Frame) => void = (f) => closeFds(f.fds);

  private constructor(readonly conn: MessageConnection) {}

  static async connect(path: string): Promise<RawClient> {
    let self: RawClient | undefined;
    const conn = await MessageConnection.connect(path, {
      onMessage: (f) => self!.deliver(f),
    });
    self = new RawClient(conn);
    return self;
  }

  nextId(): number {
    this.id = (this.id + 1) & 0xffff;
    return this.id;
  }

  private deliver(f: Frame): void {
    if (isCommand(f.header)) {
      this.onCommand(f);
      return;
    }
    const w = this.waiting.get(f.header.msgId);
    if (w) {
      this.waiting.delete(f.header.msgId);
      w(f);
    } else closeFds(f.fds);
  }

  /** Send `message` (its msg_id must be unique among outstanding calls) and wait for the reply. */
  call(message: Uint8Array, fds: readonly number[] = [], timeoutMs = 3000): Promise<Frame> {
    const id = new DataView(message.buffer, message.byteOffset).getUint16(0, true);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`no reply to msg_id ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, (f) => {
        clearTimeout(timer);
        resolve(f);
      });
      void this.conn.closed.then(() => {
        if (this.waiting.delete(id)) {
          clearTimeout(timer);
          reject(new Error('connection closed'));
        }
      });
      this.conn.send(message, fds);
    });
  }

  async handshake(caps: Record<string, unknown> = { maxMsgFds: 8 }): Promise<Frame> {
    return this.call(encodeVersionRequest(this.nextId(), { major: 0, minor: 2, capabilities: caps }));
  }

  close(): void {
    this.conn.close();
  }
}
