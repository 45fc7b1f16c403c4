/**
 * UUIDs for devices that do not name one. A generated UUID is derived from what identifies the
 * device in the configuration (plugin, parent, type and slot), so the same configuration gives
 * the same UUIDs on every run — the guest sees the same devices, and reports can be compared.
 */
import { createHash } from 'node:crypto';

// RFC 9562 §5.5: name-based UUID with SHA-1 (version 5); this namespace is vfiokit's own
const VFIOKIT_NAMESPACE = Buffer.from('5f1c3a0e6b2d4c8e9a7b0d1e2f3a4b5c', 'hex');

export function stableUuid(name: string): string {
  const hash = createHash('sha1').update(VFIOKIT_NAMESPACE).update(name).digest();
  hash[6] = (hash[6] & 0x0f) | 0x50; // version 5
  hash[8] = (hash[8] & 0x3f) | 0x80; // RFC variant
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
