# timeout: 300
# The suite on a device bound to vfio-pci: config virtualisation, BAR regions, SET_IRQS rules
# for INTx and MSI, reset. vfio-pci is the kernel's reference, so every check must pass.
B=$(cat /tmp/edu.bdf 2>/dev/null) || skip "edu was not bound"
cd /vfk/project || fail "no project in the guest"
node node_modules/@vfiokit/conformance/dist/cli.js --vfio "$B" --runs "$RUNS" --seed "$SEED" --junit /tmp/conformance.xml >/tmp/conformance.out 2>&1
rc=$?
cat /tmp/conformance.out
[ -s /tmp/conformance.xml ] && sed 's/^/junit /' /tmp/conformance.xml
[ "$rc" = 0 ] || fail "vfiokit-conformance failed on vfio-pci (exit $rc)"
pass
