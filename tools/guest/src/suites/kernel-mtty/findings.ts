/** What running the suite on the kernel's own devices changed in vfiokit (kept in the differential report). */
import type { Finding } from '@vfiokit/linux-vfio';

export const KERNEL_FINDINGS: readonly Finding[] = [
  {
    title: 'DEVICE_GET_INFO takes argsz 16.',
    text: 'vfio_pci_ioctl_get_info and mtty both read minsz = offsetofend(struct vfio_device_info, num_irqs) = 16 bytes and copy back only those. The core refused argsz 16 to 19 (it used the 20-byte struct) and wrote cap_offset; it now answers as vfio-pci, and the suite checks that argsz 15 is refused and 16 answered.',
  },
  {
    title: 'A loopback trigger needs an enabled index.',
    text: 'DATA_NONE or DATA_BOOL with ACTION_TRIGGER on an index without an eventfd is EINVAL in vfio-pci (vfio_pci_set_intx_trigger, vfio_pci_set_msi_trigger, vfio_pci_set_ctx_trigger_single) and in mtty. The core answered 0 and counted a dropped interrupt; it now answers EINVAL.',
  },
  {
    title: 'Accesses past a region.',
    text: "vfio-pci answers config space past its end with EFAULT and cuts a BAR access short at the end of the BAR; the suite demanded EINVAL and now accepts every answer that moves no byte past the region. The core still refuses them with EINVAL (a stricter answer than vfio-pci's short count, which no VMM relies on).",
  },
  {
    title: 'The VGA region of a device without VGA.',
    text: 'vfio-pci answers GET_REGION_INFO of index 8 with EINVAL when the device has no VGA; the suite failed every region check on it and now accepts it.',
  },
  {
    title: 'VFIO_DEVICE_RESET of a vfio-pci device keeps config space.',
    text: 'vfio_pci_ioctl_reset resets through pci_try_reset_function, which saves config space and restores it around the reset: COMMAND and the interrupt line keep what was written. The suite expected the state after open; for a vfio-pci device it now checks that the identity stays and notes what was kept. An mdev (and ours) still resets to power-on.',
  },
  {
    title: "A kernel device's migration stream does not carry config space.",
    text: "mtty_save_state saves the UARTs only: config space is the VMM's to migrate (QEMU saves it itself, vfio_pci_save_config). The save/resume check compares config space after resume for plugins only and notes the difference for kernel devices.",
  },
  {
    title: "The kernel's mtty reads config space without a bound.",
    text: 'mdev_access copies from vconfig + offset for any offset, so a config read far past the region would read (or fault on) kernel memory: on kernel devices the random accesses stay within 16 bytes of a region, and on a vfio-pci device they only read, since writes reach the hardware.',
  },
  {
    title: 'The type1 IOMMU needs interrupt remapping.',
    text: 'vfio_iommu_type1 refuses a group (VFIO_SET_IOMMU answers EPERM, "No interrupt remapping support" in dmesg) on an IOMMU without interrupt remapping; the backend\'s error now says so and names both ways out (intremap, or allow_unsafe_interrupts). The vfio-pci boot uses intel-iommu,intremap=on.',
  },
];
