/** Every guest suite, in the order they start. Add a suite here. */
import type { GuestSuite } from '../suite.js';
import gvtD from './gvt-d.js';
import gvtG from './gvt-g.js';
import gvtGIsolation from './gvt-g-isolation.js';
import i915 from './i915.js';
import kernelMtty from './kernel-mtty/index.js';
import nvidiaVgpu from './nvidia-vgpu.js';
import sampleMtty from './sample-mtty.js';
import vfioPci from './vfio-pci.js';
import vfioUserClients from './vfio-user-clients.js';

export const SUITES: readonly GuestSuite[] = [
  sampleMtty,
  gvtG,
  i915,
  gvtGIsolation,
  nvidiaVgpu,
  gvtD,
  vfioUserClients,
  kernelMtty,
  vfioPci,
];
