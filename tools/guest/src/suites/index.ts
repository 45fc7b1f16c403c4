/** Every guest suite, in the order they start. Add a suite here. */
import type { GuestSuite } from '../suite.js';
import sampleMtty from './sample-mtty.js';

export const SUITES: readonly GuestSuite[] = [sampleMtty];
