export { CAPACITY_PROBE_LIMIT } from './checks/capacity.js';
export {
  ALL_CHECKS,
  capacityChecks,
  configChecks,
  deviceChecks,
  irqChecks,
  migrationChecks,
  randomChecks,
  regionChecks,
  resetChecks,
} from './checks/index.js';
export { type FormatOptions, formatReport, formatResult, formatSummary } from './format.js';
export {
  type CountingTrigger,
  createFakeClock,
  createRecordingLogger,
  createTestHost,
  type FakeClock,
  type LogEntry,
  type LogLevel,
  type RecordingLogger,
  type TestHost,
  type TestHostOptions,
} from './host.js';
export { escapeXml, toJUnitXml, toXmlChars } from './junit.js';
export { loadPlugin, validatePlugin } from './load.js';
export {
  activeConditions,
  findWorkspace,
  globMatch,
  isPackageName,
  type PluginSource,
  packageEntries,
  packageEntry,
  parsePnpmWorkspace,
  type ResolvedPlugin,
  resolvePlugin,
  workspaceDirs,
} from './resolve.js';
export {
  type ConformanceOptions,
  type DeviceTarget,
  describeConformance,
  formatDevice,
  type OpenedTarget,
  PLUGIN_LEVEL,
  type ProbedPlugin,
  probePlugin,
  registerConformance,
  runCheck,
  runConformance,
  runTargetConformance,
  selectChecks,
  type VitestApi,
} from './suite.js';
export type * from './types.js';
