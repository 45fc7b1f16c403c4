# A request the vGPU's command audit refuses is the guest's error: `vfk i915-hang` submits one
# on rcs0, i915 finds the engine hung and resets it, and a new request then completes. The
# heartbeat that finds the hang beats every 250 ms here (2500 by default), as intel-gpu-tools'
# hang tests set it, so the check takes about a second; it is restored afterwards.
hb=/sys/class/drm/card0/engine/rcs0/heartbeat_interval_ms
[ -w "$hb" ] || fail "$hb is missing"
was=$(cat "$hb")
echo 250 > "$hb"
echo "vfk: i915-hang start" > /dev/kmsg
out=$(vfk i915-hang /dev/dri/card0 2>&1)
rc=$?
echo "$was" > "$hb"
echo "$out"
dmesg | sed -n '/vfk: i915-hang start/,$p' | sed 's/^/dmesg: /'
[ $rc -eq 0 ] || fail "vfk i915-hang exited $rc: $(echo "$out" | grep -m1 '^vfk:' || echo "$out" | tail -1)"
pass
