# timeout: 240
# The kernel's side of the differential: facts and every recorded call, for the host to
# compare with @vfiokit/sample-mtty.
cd /vfk/project || fail "no project in the guest"
node kernel-side.mjs "$UUID" "$RUNS" "$SEED" kernel || fail "the kernel side did not run"
pass
