# timeout: 240
# What a vendor's pipeline runs: the suite's CLI on the kernel's own device, with JUnit. The
# kernel's sample fails some checks (the differential explains each); exit 2 (could not run)
# fails this check. The JUnit goes to the host as `junit` lines.
cd /vfk/project || fail "no project in the guest"
node node_modules/@vfiokit/conformance/dist/cli.js --vfio "$UUID" --runs "$RUNS" --seed "$SEED" --junit /tmp/conformance.xml >/tmp/conformance.out 2>&1
rc=$?
tail -n 3 /tmp/conformance.out
fact exit "$rc"
[ "$rc" -le 1 ] && [ -s /tmp/conformance.xml ] || { cat /tmp/conformance.out; fail "vfiokit-conformance could not run (exit $rc)"; }
sed 's/^/junit /' /tmp/conformance.xml
pass
