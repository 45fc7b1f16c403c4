/**
 * @vfiokit/vfio-user/protocol — the vfio-user wire format: message header and commands,
 * version negotiation, region, device, DMA and feature messages with their codecs, the framing
 * of a byte stream into messages, and the message connection that pairs requests with replies.
 * For tools that speak the protocol themselves; serving and attaching devices is the root entry.
 */

export * from './protocol/index.js';
export { MessageConnection, type MessageConnectionOptions } from './transport.js';
