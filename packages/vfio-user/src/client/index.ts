export {
  type ConnectOptions,
  connectVfioUser,
  connectVfioUserSync,
  VfioUserClientDevice,
} from './client-device.js';
