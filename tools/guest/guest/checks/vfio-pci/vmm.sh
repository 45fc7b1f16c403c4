# timeout: 240
# The reference VMM on the kernel's device: vfiokit run with a vfio: device in a configuration
# file (guest RAM DMA-mapped at IOVA 0 through type1, the edu probed, BAR0 mapped straight to
# the device), vfiokit lspci --vfio, then vfiokit serve --vfio and a vfio-user client of it.
B=$(cat /tmp/edu.bdf 2>/dev/null) || skip "edu was not bound"
cd /vfk/project || fail "no project in the guest"
V="node node_modules/@vfiokit/reference-vmm/dist/cli.js"
printf 'plugins: []\nmachine:\n  ramSize: 16M\ndevices:\n  - vfio: "%s"\n    slot: "00:05.0"\n' "$B" > /tmp/vfio.yaml
out=$($V run /tmp/vfio.yaml 2>&1) || { echo "$out"; fail "vfiokit run with a vfio: device in its configuration failed"; }
echo "$out"
echo "$out" | grep -q "^  0000:00:05.0 .* 1234:11e8 .*a device of the host kernel, $B" || fail "vfiokit run did not probe the edu at 00:05.0 as a device of the host kernel"
echo "$out" | grep -q "transport: kernel VFIO, device $B" || fail "vfiokit run does not report the edu as a kernel VFIO device"
echo "$out" | grep -q "^    BAR0 .* direct " || fail "vfiokit run did not map BAR0 straight to the device"
out=$($V lspci -nn -v --vfio "$B" 2>&1) || { echo "$out"; fail "vfiokit lspci --vfio failed"; }
echo "$out"
echo "$out" | grep -q "^00:03.0 .*\[1234:11e8\]" || fail "vfiokit lspci --vfio does not show the edu"
$V serve --socket /tmp/edu.sock --vfio "$B" >/tmp/serve.log 2>&1 &
pid=$!
i=0
while [ ! -S /tmp/edu.sock ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
[ -S /tmp/edu.sock ] || { cat /tmp/serve.log; fail "vfiokit serve --vfio did not listen"; }
out=$($V lspci -nn --device vfio-user:/tmp/edu.sock@00:05.0 2>&1)
rc=$?
kill -INT $pid
wait $pid
cat /tmp/serve.log
echo "$out"
[ "$rc" = 0 ] || fail "the vfio-user client of vfiokit serve --vfio failed"
echo "$out" | grep -q "^00:05.0 .*\[1234:11e8\]" || fail "a vfio-user client of vfiokit serve --vfio does not see the edu"
pass
