/**
 * The argsz rule of the device section's query messages (DEVICE_GET_INFO, GET_REGION_INFO,
 * GET_REGION_IO_FDS, GET_IRQ_INFO), and the four-u32 request most of them are.
 *
 * argsz: in a request it is the largest reply payload the client accepts; in a reply it is the
 * size the full payload needs, which may be more than was sent (docs/interop/vfio-user.rst,
 * "Message sizes"). A request whose argsz cannot hold the fixed reply struct is refused (EINVAL),
 * as libvfio-user does.
 */
import { allocMessage, checkU32, protocolError } from './wire.js';

/** The field names of the {argsz, flags, index, count} requests and replies (GET_REGION_IO_FDS, GET_IRQ_INFO). */
export const INDEX_COUNT_NAMES = ['argsz', 'flags', 'index', 'count'] as const;

/** The common {argsz, flags, index, count}-style request: four u32s. */
export function encodeFourU32(
  msgId: number,
  command: number,
  flags: number,
  values: readonly [number, number, number, number],
  names: readonly string[],
): Uint8Array {
  const { bytes, dv } = allocMessage(msgId, command, flags, 16);
  for (let i = 0; i < 4; i++) dv.setUint32(16 + 4 * i, checkU32(values[i], command, names[i]), true);
  return bytes;
}

export function checkArgsz(argsz: number, min: number, command: number): void {
  if (argsz < min)
    throw protocolError(
      'EINVAL',
      command,
      `argsz ${argsz} is smaller than the ${min}-byte reply struct.`,
      `Send argsz >= ${min}.`,
    );
}
