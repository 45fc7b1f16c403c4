/**
 * VFIO migration v2 for a vGPU: STOP_COPY | P2P | PRE_COPY — the migration ops the core drives
 * (VgpuMigration: the arcs between states, the stop-copy size). The stream's format and the
 * device-state record are migration/format.ts, the saving side migration/save.ts, the resuming
 * side migration/resume.ts.
 */
import {
  type MigrationCaps,
  type MigrationOps,
  type MigrationStream,
  type MigState,
  StreamArcs,
} from '@vfiokit/core';
import {
  bar3Bytes,
  loadDeviceState,
  MAX_RUN_PAGES,
  MIG_PAGE_SIZE,
  type MigrationHost,
  type ParsedState,
  RECORD_HEADER_SIZE,
  STREAM_HEADER_SIZE,
  saveDeviceState,
} from './migration/format.js';
import { ResumeStream } from './migration/resume.js';
import { SaveStream } from './migration/save.js';
// ---- the arcs -----------------------------------------------------------------------------------

export class VgpuMigration implements MigrationOps {
  /** VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY. */
  readonly caps: MigrationCaps = { stopCopy: true, p2p: true, preCopy: true };
  private readonly arcs: StreamArcs<SaveStream, ResumeStream, ParsedState>;

  constructor(private readonly dev: MigrationHost) {
    this.arcs = new StreamArcs(dev.name, {
      save: (precopy) => new SaveStream(dev, precopy),
      resume: () => new ResumeStream(dev),
      load: (state) => loadDeviceState(dev, state),
    });
  }

  reset(): void {
    this.arcs.reset();
  }

  stopCopySize(): number {
    const saving = this.arcs.saving;
    if (saving) return saving.remaining();
    const pages = this.dev.fbSize / MIG_PAGE_SIZE;
    return (
      STREAM_HEADER_SIZE +
      this.dev.fbSize +
      Math.ceil(pages / MAX_RUN_PAGES) * RECORD_HEADER_SIZE +
      bar3Bytes(this.dev, 0) +
      2 * RECORD_HEADER_SIZE +
      saveDeviceState(this.dev).length
    );
  }

  step(from: MigState, to: MigState): MigrationStream | undefined {
    const stream = this.arcs.step(from, to);
    this.dev.migState = to;
    // Work queued while the vGPU was stopped (in flight when the source stopped, or loaded from
    // the stream on the destination) runs again once the vGPU runs: nothing else would kick it.
    if (this.dev.running() && this.dev.hasPendingWork()) this.dev.gpu.kick();
    return stream;
  }
}

export {
  MAX_RUN_PAGES,
  MIG_FLAG_PAYLOAD_CRC,
  MIG_MAGIC,
  MIG_PAGE_SIZE,
  MIG_VERSION,
  type MigrationHost,
  RECORD_HEADER_SIZE,
  STREAM_HEADER_SIZE,
  TAG_BAR3,
  TAG_END,
  TAG_FB,
  TAG_STATE,
} from './migration/format.js';
export { ResumeStream } from './migration/resume.js';
export { SaveStream } from './migration/save.js';
