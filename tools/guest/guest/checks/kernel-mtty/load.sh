# The kernel's own mtty sample, built on the host against this kernel's headers, loads beside
# vfio, vfio_iommu_type1 and mdev (the boot's modules) and registers its mdev types.
insmod /vfk/mtty.ko || fail "insmod mtty.ko failed"
T=/sys/class/mdev_bus/mtty/mdev_supported_types
[ -d "$T" ] || fail "mtty registered no mdev_supported_types ($T is missing)"
for t in mtty-1 mtty-2; do
  [ -d "$T/$t" ] || fail "mtty offers no $t type"
  fact "$t" "$(cat "$T/$t/name") api=$(cat "$T/$t/device_api") available=$(cat "$T/$t/available_instances")"
done
[ "$(cat "$T/mtty-2/device_api")" = vfio-pci ] || fail "mtty-2 does not speak vfio-pci"
[ -c /dev/vfio/vfio ] || fail "/dev/vfio/vfio is missing"
pass
