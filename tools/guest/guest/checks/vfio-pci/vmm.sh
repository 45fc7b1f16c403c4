# timeout: 240
# The reference VMM on the kernel's device: vfiokit lspci with a vfio: device (guest RAM
# DMA-mapped through type1), then vfiokit serve --vfio and a vfio-user client of it.
B=$(cat /tmp/edu.bdf 2>/dev/null) || skip "edu was not bound"
cd /vfk/project || fail "no project in the guest"
V="node node_modules/@vfiokit/reference-vmm/dist/cli.js"
printf 'plugins: []\nmachine:\n  ramSize: 16M\ndevices:\n  - vfio: "%s"\n    slot: "00:05.0"\n' "$B" > /tmp/vfio.yaml
out=$($V lspci -nn -v /tmp/vfio.yaml 2>&1) || { echo "$out"; fail "vfiokit lspci with a vfio: device failed"; }
echo "$out"
echo "$out" | grep -q "^00:05.0 .*\[1234:11e8\]" || fail "vfiokit lspci does not show the edu at 00:05.0"
$V serve --socket /tmp/edu.sock --vfio "$B" >/tmp/serve.log 2>&1 &
pid=$!
i=0
while [ ! -S /tmp/edu.sock ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
[ -S /tmp/edu.sock ] || { cat /tmp/serve.log; fail "vfiokit serve --vfio did not listen"; }
printf 'plugins: []\nmachine:\n  ramSize: 16M\ndevices:\n  - vfioUser: /tmp/edu.sock\n    slot: "00:05.0"\n' > /tmp/client.yaml
out=$($V lspci -nn /tmp/client.yaml 2>&1)
rc=$?
kill -INT $pid
wait $pid
cat /tmp/serve.log
echo "$out"
[ "$rc" = 0 ] || fail "the vfio-user client of vfiokit serve --vfio failed"
echo "$out" | grep -q "^00:05.0 .*\[1234:11e8\]" || fail "a vfio-user client of vfiokit serve --vfio does not see the edu"
pass
