import { describeConformance } from '@vfiokit/conformance';
import plugin from '../src/index.js';

await describeConformance(plugin);
