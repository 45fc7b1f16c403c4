# i915_detect_vgpu's first read: PVINFO at 0x78000 in BAR0, trapped to the server: the vGT
# magic, version 1.0, and the ranges intel_vgt_balloon() leaves to this vGPU.
for id in $VGPUS; do
  eval "addr=\$VFK_DEV_$id"
  out=$(vfk gvtg-pvinfo "$addr") || { echo "$out"; fail "$id: no vGT magic in PVINFO"; }
  echo "$out" | sed "s/^/$id./"
  echo "$out" | grep -q '^version=1.0$' || fail "$id: PVINFO version is not 1.0"
done
