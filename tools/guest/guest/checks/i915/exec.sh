# Requests on every engine i915 exposes: $REQUESTS execbufs per engine, each storing a distinct
# value (every odd one through a chained batch), waited for and read back by `vfk i915-exec`.
# The kernel's messages from the start of the run on are kept for the host side.
echo "vfk: i915-exec start" > /dev/kmsg
out=$(vfk i915-exec /dev/dri/card0 "$REQUESTS" 2>&1)
rc=$?
echo "$out"
dmesg | sed -n '/vfk: i915-exec start/,$p' | sed 's/^/dmesg: /'
[ $rc -eq 0 ] || fail "vfk i915-exec exited $rc: $(echo "$out" | grep -m1 -E '^(vfk:|first_bad=)' || echo "$out" | tail -1)"
pass
