/**
 * The far end of the round-trip benchmark, run with child_process.fork: accept one connection
 * on the path in argv[2] and send back every chunk as it arrives.
 */
import { UnixListener } from '../src/native/socket.js';

const path = process.argv[2];
if (!path) throw new Error('usage: echo-server <socket path>');
const listener = UnixListener.listen(path);
listener.onConnection((conn) => {
  conn.start({
    onData: (chunk) => {
      conn.send(chunk);
    },
    onClose: () => {
      listener.close();
      process.exit(0);
    },
  });
});
process.on('disconnect', () => {
  listener.close();
  process.exit(0);
});
process.send?.('ready');
