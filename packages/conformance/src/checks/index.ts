import type { ConformanceCheck } from '../types.js';
import { capacityChecks } from './capacity.js';
import { configChecks } from './config.js';
import { deviceChecks } from './device.js';
import { irqChecks } from './irq.js';
import { migrationChecks } from './migration.js';
import { randomChecks } from './random.js';
import { regionChecks } from './region.js';
import { resetChecks } from './reset.js';

export {
  capacityChecks,
  configChecks,
  deviceChecks,
  irqChecks,
  migrationChecks,
  randomChecks,
  regionChecks,
  resetChecks,
};

/** Every check, in the order a report lists them. */
export const ALL_CHECKS: readonly ConformanceCheck[] = [
  ...deviceChecks,
  ...regionChecks,
  ...configChecks,
  ...irqChecks,
  ...resetChecks,
  ...randomChecks,
  ...capacityChecks,
  ...migrationChecks,
];
