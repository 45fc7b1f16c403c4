/**
 * Where the shared VBT/OpRegion fixtures live. They stay in the shared folder beside the
 * repository (never copied in): <repo root>/../shared/fixtures/vbt, or $VFIOKIT_SHARED/fixtures/vbt.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root: packages/gvt-d/test -> three levels up. */
export const repoRoot = resolve(here, '../../..');
export const sharedDir = process.env.VFIOKIT_SHARED
  ? resolve(process.env.VFIOKIT_SHARED)
  : resolve(repoRoot, '../shared');
export const fixturesDir = join(sharedDir, 'fixtures', 'vbt');
export const haveFixtures =
  existsSync(fixturesDir) && readdirSync(fixturesDir).some((f) => f.endsWith('.facts.json'));
/** Title for a describe block that only runs with fixtures; says plainly why it was skipped. */
export function fixtureSuite(what: string): string {
  return haveFixtures ? what : `${what} — fixtures not found at ${fixturesDir}: skipped`;
}

export interface FixtureBlock {
  id: number;
  size: number;
  offset_in_bdb: number;
  offset_in_vbt: number;
  ends_within_bdb_size: boolean;
  found_by_i915_style_walk: boolean;
}

export interface Facts {
  file: string;
  file_size: number;
  vbt_header: {
    signature: string;
    version: number;
    header_size: number;
    vbt_size: number;
    checksum_byte: string;
    bdb_offset: number;
    aim_offsets: number[];
  };
  checksum: { sum_mod_256: number; ok: boolean; checksum_byte_that_would_make_it_ok: number };
  bdb_header: { signature: string; version: number; header_size: number; bdb_size: number };
  layout: {
    vbt_offset_in_file: number;
    file_size: number;
    bytes_after_vbt_size_in_file: number | null;
    fits_opregion_mailbox4_6KiB: boolean;
  };
  blocks_in_file_order: FixtureBlock[];
  decoder: {
    blocks_present_as_printed: number[];
    blocks_in_file_but_not_seen_by_decoder: number[];
    blocks_whose_last_byte_lies_past_bdb_size: number[];
    blocks_seen_by_decoder_but_not_in_file: number[];
    key_fields: Record<string, Record<string, string> | number>;
    all_top_level_fields_by_block: Record<string, Record<string, string | string[]>>;
  };
}

export interface Fixture {
  name: string;
  bytes: Uint8Array;
  facts: Facts;
  decodeText: string;
}

export function loadFixtures(): Fixture[] {
  if (!haveFixtures) return [];
  return readdirSync(fixturesDir)
    .filter((f) => f.endsWith('.facts.json'))
    .sort()
    .map((f) => {
      const name = f.slice(0, -'.facts.json'.length);
      return {
        name,
        bytes: new Uint8Array(readFileSync(join(fixturesDir, name))),
        facts: JSON.parse(readFileSync(join(fixturesDir, f), 'utf8')) as Facts,
        decodeText: readFileSync(join(fixturesDir, `${name}.decode.txt`), 'utf8'),
      };
    });
}

export function loadOpRegionJson(name: string): Record<string, Record<string, unknown>> | undefined {
  const p = join(fixturesDir, `${name}.opregion.json`);
  return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : undefined;
}
