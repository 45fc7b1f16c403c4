/**
 * A device bound to vfio-pci in a real guest: QEMU's edu (1234:11e8, BAR0 MMIO, MSI, INTx and a
 * DMA engine) behind a PCIe root port and intel-iommu with interrupt remapping, booted with
 * intel_iommu=on. The guest binds it to vfio-pci (after checking the suite's answer for an
 * unbound device), runs vfiokit-conformance --vfio on it (config virtualisation, BAR regions,
 * SET_IRQS rules for INTx and MSI, reset: every check must pass on the kernel's reference
 * driver), and drives it through the backend's typed layer: BAR0 mmapped, DMA into process
 * memory mapped through type1, MSI and INTx on eventfds; and the reference VMM boots it as a
 * vfio: device of a configuration file (run), prints it (lspci --vfio) and serves it over
 * vfio-user (serve --vfio) to a client that sees it. Debian's 6.12 kernel has no
 * CONFIG_IOMMUFD, so this proves the container/group path (the guest records iommufd=absent).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { GUEST_PROJECT, NODE_GUEST_QEMU_ARGS, projectFiles } from '../assets/project.js';
import { PACKAGE_DIR } from '../env.js';
import { checkScript, defineSuite } from '../suite.js';
import { saveJunit } from './kernel-mtty/index.js';

export default defineSuite({
  name: 'vfio-pci',
  boots: [
    {
      name: 'edu',
      devices: [],
      modules: ['vfio', 'vfio_iommu_type1', 'vfio_pci'],
      memoryMiB: 1024,
      append: ['intel_iommu=on'],
      qemuArgs: [
        '-device',
        'intel-iommu,intremap=on',
        '-device',
        'pcie-root-port,id=rp1,bus=pcie.0,chassis=1,addr=06.0',
        '-device',
        'edu,bus=rp1',
        ...NODE_GUEST_QEMU_ARGS,
      ],
      env: { RUNS: '25', SEED: '1' },
      async prepare(p) {
        const stage = join(p.workDir, 'project');
        mkdirSync(stage, { recursive: true });
        return [
          ...projectFiles(p.root, stage, [
            '@vfiokit/conformance',
            '@vfiokit/linux-vfio',
            '@vfiokit/vfio-user',
            '@vfiokit/reference-vmm',
          ]),
          { path: `${GUEST_PROJECT}/edu-dma.mjs`, from: join(PACKAGE_DIR, 'guest', 'node', 'edu-dma.mjs') },
        ];
      },
      checks: [
        {
          name: 'vfio-pci: edu behind intel-iommu is refused with how to bind it, then bound to vfio-pci in its own IOMMU group; a user without access to the group node is told how to get it',
          script: checkScript('vfio-pci/bind.sh'),
          timeoutSec: 90,
        },
        {
          name: 'vfio-pci: vfiokit-conformance --vfio <bdf> passes every check that applies, with JUnit',
          script: checkScript('vfio-pci/conformance.sh'),
          timeoutSec: 300,
          host: (ctx) => {
            const file = saveJunit(ctx, 'conformance.xml');
            return file ? { note: `JUnit: ${file}` } : { fail: 'the guest printed no JUnit' };
          },
        },
        {
          name: 'vfio-pci: the typed layer mmaps BAR0, DMAs through type1 into process memory, and takes MSI and INTx on eventfds',
          script: checkScript('vfio-pci/dma.sh'),
          timeoutSec: 120,
        },
        {
          name: 'vfio-pci: vfiokit run boots with the edu as a vfio: device of its configuration file, vfiokit lspci --vfio shows it, and a vfio-user client sees it through vfiokit serve --vfio',
          script: checkScript('vfio-pci/vmm.sh'),
          timeoutSec: 240,
        },
      ],
    },
  ],
});
