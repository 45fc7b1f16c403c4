export { arcOpensStream, MigrationController } from './controller.js';
export {
  isSavingState,
  isStateSupported,
  migNextState,
  migPath,
  migrationFlags,
  migStateName,
} from './fsm.js';
export type { ResumingStream, SavingStream, StreamEnds } from './streams.js';
export { StreamArcs, StreamQueue, StreamRefusal } from './streams.js';
