export { arcOpensStream, MigrationController } from './controller.js';
export {
  isSavingState,
  isStateSupported,
  migNextState,
  migPath,
  migrationFlags,
  migStateName,
} from './fsm.js';
