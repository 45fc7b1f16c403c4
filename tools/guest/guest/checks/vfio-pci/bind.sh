# QEMU's edu behind intel-iommu: before it is bound to vfio-pci the suite says what to do;
# bound, it has an IOMMU group of its own and a /dev/vfio node, and a user without access to
# that node is told how to get it.
B=$(for d in /sys/bus/pci/devices/*; do [ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x1234:0x11e8 ] && basename "$d"; done)
[ -n "$B" ] || fail "no edu device (1234:11e8) on the bus"
fact bdf "$B"
dmesg | grep -q "Enabled IRQ remapping" || fail "the IOMMU did not come up with interrupt remapping"
cd /vfk/project || fail "no project in the guest"
msg=$(node node_modules/@vfiokit/conformance/dist/cli.js --vfio "$B" --check device.info 2>&1)
rc=$?
echo "$msg"
[ "$rc" = 2 ] || fail "an unbound device did not exit 2 (exit $rc)"
echo "$msg" | grep -q "not bound to any driver" || fail "the message does not say the device is unbound"
echo "$msg" | grep -q "driver_override" || fail "the message does not say how to bind it"
echo vfio-pci > "/sys/bus/pci/devices/$B/driver_override"
echo "$B" > /sys/bus/pci/drivers_probe
[ "$(basename "$(readlink "/sys/bus/pci/devices/$B/driver")")" = vfio-pci ] || fail "vfio-pci did not bind $B"
g=$(basename "$(readlink "/sys/bus/pci/devices/$B/iommu_group")")
fact group "$g"
fact group_members "$(ls "/sys/kernel/iommu_groups/$g/devices" | tr '\n' ' ')"
[ -c "/dev/vfio/$g" ] || fail "/dev/vfio/$g is missing"
if [ -c /dev/iommu ]; then fact iommufd present; else fact iommufd "absent (no CONFIG_IOMMUFD): the container/group path"; fi
mkdir -p /etc
grep -q '^vfk:' /etc/passwd 2>/dev/null || echo 'vfk:x:1000:1000:vfk:/tmp:/bin/sh' >>/etc/passwd
msg=$(su vfk -c "cd /vfk/project && node node_modules/@vfiokit/conformance/dist/cli.js --vfio $B --check device.info" 2>&1)
rc=$?
echo "$msg"
[ "$rc" = 2 ] || fail "a user without access to /dev/vfio/$g did not exit 2 (exit $rc)"
echo "$msg" | grep -q "EACCES: device $B: permission denied opening /dev/vfio/$g" || fail "the message does not name the group node that was refused"
echo "$msg" | grep -q "chown <user> /dev/vfio/$g" || fail "the message does not say how to get access"
echo "$B" > /tmp/edu.bdf
pass
