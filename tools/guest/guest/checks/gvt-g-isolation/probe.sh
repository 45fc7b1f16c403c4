# i915 drives this guest's vGPU; PVINFO names its share of the one host GPU.
. /vfk/iso/common.sh
fact me "$me"
drv=$(basename "$(readlink "/sys/bus/pci/devices/$addr/driver")")
fact driver "$drv"
[ "$drv" = i915 ] || fail "$me: the vGPU is bound to \"$drv\", not i915"
[ -c /dev/fb0 ] || fail "$me: /dev/fb0 is missing"
[ -e "/sys/bus/pci/devices/$(eval "echo \$VFK_DEV_$other")" ] && fail "$me: the other guest's vGPU is attached here too"
echo "$pv"
fact fb_size "$(cat /sys/class/graphics/fb0/virtual_size)"
pass
