/** What `vfiokit serve` runs: serve one device until SIGINT or SIGTERM, then clean up. */
import type { Logger, VfioDevice } from '@vfiokit/core';
import type { DmaLayout } from '../protocol/dma.js';
import { type ServerLimitOptions, serveDevice } from './server.js';

export interface RunServeOptions {
  readonly socketPath: string;
  readonly device: VfioDevice;
  readonly log: Logger;
  readonly limits?: ServerLimitOptions;
  readonly dmaLayout?: DmaLayout;
  /** Stop serving when this signal aborts (tests); SIGINT and SIGTERM always stop it. */
  readonly signal?: AbortSignal;
}

export async function runServe(opts: RunServeOptions): Promise<void> {
  const server = await serveDevice({
    socketPath: opts.socketPath,
    device: opts.device,
    log: opts.log,
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.dmaLayout ? { dmaLayout: opts.dmaLayout } : {}),
  });
  opts.log.info(`serving ${opts.device.name} on ${opts.socketPath}`);
  await new Promise<void>((resolve) => {
    const stop = (why: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      opts.signal?.removeEventListener('abort', onAbort);
      opts.log.info(`${why}: closing ${opts.socketPath}`);
      void server.close().then(resolve);
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    const onAbort = () => stop('stopped');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
