/**
 * The message header (src/protocol/header.ts): the 16-byte layout of the spec, error replies and
 * their errno, No_reply, and the names of commands.
 */
import { describe, expect, it } from 'vitest';
import * as P from '../src/protocol/index.js';
import { expectVfioError } from './helpers.js';

describe('header', () => {
  it('puts msg id, command, size, flags and errno at the offsets of the spec', () => {
    const m = P.encodeErrorReply(0x1234, P.VFIO_USER_REGION_READ, 22);
    expect(Array.from(m)).toEqual([0x34, 0x12, 9, 0, 16, 0, 0, 0, 0x21, 0, 0, 0, 22, 0, 0, 0]);
    const h = P.decodeHeader(m);
    expect(P.isReply(h) && P.isErrorReply(h)).toBe(true);
    expect(P.replyErrno(h)).toBe(22);
  });

  it('reads an errno of 0 or above 4096 in an error reply as EINVAL, as libvfio-user does', () => {
    expect(P.replyErrno(P.decodeHeader(P.encodeErrorReply(1, 4, 0)))).toBe(22);
    expect(P.replyErrno(P.decodeHeader(P.encodeErrorReply(1, 4, 5000)))).toBe(22);
    expect(P.replyErrno(P.decodeHeader(P.encodeErrorReply(1, 4, 14)))).toBe(14);
  });

  it('sets No_reply only when asked', () => {
    expect(P.wantsReply(P.decodeHeader(P.encodeEmptyRequest(1, P.VFIO_USER_DEVICE_RESET)))).toBe(true);
    const h = P.decodeHeader(P.encodeEmptyRequest(1, P.VFIO_USER_DEVICE_RESET, { noReply: true }));
    expect(P.wantsReply(h)).toBe(false);
    expect(P.isCommand(h)).toBe(true);
  });

  it('refuses a header shorter than 16 bytes with EPROTO', () => {
    expectVfioError(() => P.decodeHeader(new Uint8Array(15)), 'EPROTO');
  });

  it('refuses a msg id that does not fit 16 bits', () => {
    expectVfioError(() => P.encodeEmptyRequest(0x10000, P.VFIO_USER_DEVICE_RESET), 'EINVAL', /msg_id/);
  });

  it('names commands as the spec does', () => {
    expect(P.commandName(P.VFIO_USER_DEVICE_FEATURE)).toBe('VFIO_USER_DEVICE_FEATURE');
    expect(P.commandName(14)).toBe('command 14');
    // Every number names a known command or says it is none, out of range and non-integers too.
    expect(P.commandName(P.VFIO_USER_VERSION)).toBe('VFIO_USER_VERSION');
    expect(P.commandName(P.VFIO_USER_MIG_DATA_WRITE)).toBe('VFIO_USER_MIG_DATA_WRITE');
    for (const bad of [0, -1, 1.5, 31, 32, 0xffff, Number.NaN])
      expect(P.commandName(bad)).toBe(`command ${bad}`);
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18].every(P.isKnownCommand)).toBe(true);
    expect(P.isKnownCommand(14)).toBe(false);
  });
});
