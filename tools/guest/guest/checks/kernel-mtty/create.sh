# An mtty-2 instance made the sysfs way; VFIO gives it an (emulated) IOMMU group and a node.
T=/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2
before=$(cat "$T/available_instances")
echo "$UUID" > "$T/create" || fail "writing $UUID to $T/create failed"
D=/sys/bus/mdev/devices/$UUID
[ -d "$D" ] || fail "$D did not appear"
g=$(basename "$(readlink "$D/iommu_group")")
[ -n "$g" ] || fail "the instance has no IOMMU group"
[ -c "/dev/vfio/$g" ] || fail "/dev/vfio/$g is missing"
fact group "$g"
fact available "$before -> $(cat "$T/available_instances")"
[ "$(cat "$T/available_instances")" -lt "$before" ] || fail "available_instances did not fall"
pass
