/** eventfd(2), non-blocking: how vfio-user delivers interrupts and I/O notifications. */
import { VfioError } from '@vfiokit/core';
import { native, POLL_READABLE, type PollHandle, systemError } from './addon.js';

export class Eventfd {
  readonly fd: number;
  private poll: PollHandle | undefined;
  private isOpen = true;

  /** A new eventfd (EFD_NONBLOCK | EFD_CLOEXEC), or an existing descriptor received from a peer (owned from now on). */
  constructor(fd?: number, options: { initval?: number; semaphore?: boolean } = {}) {
    if (fd === undefined) {
      try {
        this.fd = native().eventfdCreate(options.initval ?? 0, options.semaphore ?? false);
      } catch (err) {
        throw systemError(err, 'creating an eventfd failed');
      }
    } else {
      this.fd = fd;
      try {
        native().setNonBlocking(fd);
      } catch (err) {
        throw systemError(err, `fd ${fd} cannot be used as an eventfd`);
      }
    }
  }

  get open(): boolean {
    return this.isOpen;
  }

  /** Add `value` (default 1) to the counter: signal. Returns false if the counter would overflow. */
  signal(value = 1): boolean {
    this.assertOpen();
    try {
      return native().eventfdWrite(this.fd, value);
    } catch (err) {
      throw systemError(err, `writing eventfd ${this.fd} failed`);
    }
  }

  /** Read and clear the counter; undefined when it is zero. */
  read(): number | undefined {
    this.assertOpen();
    try {
      return native().eventfdRead(this.fd) ?? undefined;
    } catch (err) {
      throw systemError(err, `reading eventfd ${this.fd} failed`);
    }
  }

  /** Call `fn(count)` each time the eventfd is signalled (the counter is read and cleared). One listener. */
  onSignal(fn: (count: number) => void): void {
    this.assertOpen();
    if (this.poll) native().pollStop(this.poll);
    this.poll = native().pollStart(this.fd, POLL_READABLE, (status) => {
      if (status < 0 || !this.isOpen) return;
      const n = native().eventfdRead(this.fd);
      if (n !== null) fn(n);
    });
  }

  /** Wait for the next signal, at most `timeoutMs`. */
  wait(timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.stopPolling();
        reject(new VfioError('ETIMEDOUT', `eventfd ${this.fd} was not signalled within ${timeoutMs} ms.`));
      }, timeoutMs);
      this.onSignal((n) => {
        clearTimeout(timer);
        this.stopPolling();
        resolve(n);
      });
    });
  }

  stopPolling(): void {
    if (this.poll) native().pollStop(this.poll);
    this.poll = undefined;
  }

  close(): void {
    if (!this.isOpen) return;
    this.stopPolling();
    this.isOpen = false;
    native().close(this.fd);
  }

  private assertOpen(): void {
    if (!this.isOpen) throw new VfioError('EBADF', `eventfd ${this.fd} is closed.`);
  }
}
