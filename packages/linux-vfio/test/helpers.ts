import { createMttyParent } from '@vfiokit/sample-mtty';
import { FakeKernel } from '../src/testing/fake-kernel.js';

export const UUID = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
export const BDF = '0000:00:03.0';

/** A fake host with one mtty-2 mdev (UUID, group 7) and one vfio-pci function (BDF, group 5) backed by sample-mtty. */
export function fakeHost(): FakeKernel {
  const parent = createMttyParent();
  const k = new FakeKernel();
  k.addMdev({ uuid: UUID, group: 7, device: parent.create('mtty-2', UUID).device });
  k.addPciDevice({
    name: BDF,
    group: 5,
    device: parent.create('mtty-1', '83b8f4f2-509f-382f-3c1e-e6bfe0fa1002').device,
  });
  k.createMdev = (type, uuid) => parent.create(type, uuid).device;
  return k;
}
