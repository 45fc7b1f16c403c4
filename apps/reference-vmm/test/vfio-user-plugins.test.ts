/**
 * `vfiokit serve` exposes each in-tree plugin: serve one device of it, connect a vfio-user
 * client, read the device info and config space through the socket, map what is mappable, and
 * disconnect. The GPU plugins are not dependencies of the VMM, so each is served from its own
 * package directory, where its package name resolves to itself (as in a plugin author's project).
 */
import { join } from 'node:path';
import { VFIO_PCI_CONFIG_REGION_INDEX } from '@vfiokit/core';
import { connectVfioUser } from '@vfiokit/vfio-user';
import { afterEach, describe, expect, it } from 'vitest';
import { MTTY, PACKAGES_DIR, ServeProcess } from './vfio-user-fixtures.js';

// PCI vendor IDs: 0x4348 WCH (mtty.c's CH352), 0x8086 Intel, 0x10de NVIDIA (pci_ids.h)
const PLUGINS = [
  { plugin: MTTY, type: 'mtty-2', dir: 'sample-mtty', vendor: 0x4348, baseClass: 0x07 },
  { plugin: '@vfiokit/gvt-g', type: 'i915-GVTg_V5_8', dir: 'gvt-g', vendor: 0x8086, baseClass: 0x03 },
  { plugin: '@vfiokit/nvidia-vgpu', type: 'nvidia-319', dir: 'nvidia-vgpu', vendor: 0x10de, baseClass: 0x03 },
  { plugin: '@vfiokit/gvt-d', type: 'gvt-d-igd', dir: 'gvt-d', vendor: 0x8086, baseClass: 0x03 },
] as const;

let server: ServeProcess | undefined;
afterEach(async () => {
  await server?.kill();
  server = undefined;
});

describe('vfiokit serve exposes each in-tree plugin', () => {
  for (const p of PLUGINS) {
    it(`serves ${p.plugin} ${p.type}: info, config space and mappable regions reach a client`, async () => {
      server = await ServeProcess.start(`${p.plugin}:${p.type}`, {
        cwd: join(PACKAGES_DIR, p.dir),
        source: true,
      });
      const client = await connectVfioUser(server.socketPath);
      try {
        const info = client.info();
        // vfio-pci: 9 fixed regions (BAR0-5, ROM, config, VGA) and 5 IRQ indexes (INTx, MSI, MSI-X, ERR, REQ)
        expect(info.numRegions).toBeGreaterThanOrEqual(9);
        expect(info.numIrqs).toBeGreaterThanOrEqual(5);
        const config = client.regionInfo(VFIO_PCI_CONFIG_REGION_INDEX);
        expect(config?.size).toBeGreaterThanOrEqual(256);
        const header = new Uint8Array(64);
        client.read(VFIO_PCI_CONFIG_REGION_INDEX, 0, header);
        const dv = new DataView(header.buffer);
        expect(dv.getUint16(0, true)).toBe(p.vendor);
        expect(dv.getUint16(2, true)).not.toBe(0xffff);
        expect(header[0x0b]).toBe(p.baseClass);
        for (let i = 0; i < info.numRegions; i++) {
          const r = client.regionInfo(i);
          if (!r?.mmap) continue;
          for (const area of r.sparseMmap ?? [{ offset: 0, size: r.size }]) {
            if (area.size === 0) continue;
            const m = client.mmap(i, area.offset, area.size);
            expect(m.memory.bytes.length - m.memoryOffset).toBeGreaterThanOrEqual(area.size);
          }
        }
      } finally {
        client.disconnect();
      }
      const exit = await server.stop('SIGTERM');
      expect(exit).toEqual({ code: 0, signal: null });
      // A region whose mmap memory the plugin did not take from host.allocateMemory is served
      // trapped, with a warning; nothing else may be reported.
      const problems = server.stderr
        .split('\n')
        .filter((l) => l !== '' && !/^vfiokit serve: warning: region \d+ is served without an fd/.test(l));
      expect(problems).toEqual([]);
      server = undefined;
    }, 60_000);
  }
});
