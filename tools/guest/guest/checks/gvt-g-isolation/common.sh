# What every check of the two-guest isolation suite starts from (/vfk/iso/common.sh).
# Which of the two guests this is: the one whose vGPU is attached (a at $VFK_DEV_a, b at
# $VFK_DEV_b), and the values it writes: $1 of "a"/"b" patterns, fence and plane-key values.
if [ -e "/sys/bus/pci/devices/$VFK_DEV_a" ]; then me=a; other=b; else me=b; other=a; fi
eval "addr=\$VFK_DEV_$me"
eval "fence=\$FENCE_$me"
eval "keyval=\$KEYVAL_$me"
eval "seed=\$SEED_$me"
# The last APERTURE_BYTES of this vGPU's mappable slice (i915 pins the fb and its objects low).
pv=$(vfk gvtg-pvinfo "$addr") || fail "$me: PVINFO has no vGT magic"
base=$(echo "$pv" | sed -n 's/^mappable_base=//p')
size=$(echo "$pv" | sed -n 's/^mappable_size=//p')
tail_at=$((base + size - APERTURE_BYTES))

# Everything this guest wrote reads back as its own value, none as the other guest's.
check_own() {
  stride=$(cat /sys/class/graphics/fb0/stride)
  dd if=/dev/fb0 bs="$stride" skip="$ROW" count="$ROWS" 2>/dev/null > /tmp/fb.bin
  cmp -s /tmp/fb.bin "/vfk/iso/pattern-$me.bin" || {
    cmp -s /tmp/fb.bin "/vfk/iso/pattern-$other.bin" && fail "$me: /dev/fb0 holds $other's pattern"
    fail "$me: /dev/fb0 lost its pattern"
  }
  out=$(vfk verify "$addr" 2 "$tail_at" "$APERTURE_BYTES" "$seed") || { echo "$out"; fail "$me: the aperture tail lost its pattern"; }
  eval "ofence=\$FENCE_$other"
  eval "okeyval=\$KEYVAL_$other"
  f=$(vfk rd "$addr" 0 "$FENCE_LO" 4)
  k=$(vfk rd "$addr" 0 "$KEYVAL_REG" 4)
  fact fence "$f"
  fact keyval "$k"
  [ "$((f))" = "$((fence))" ] || { [ "$((f))" = "$((ofence))" ] && fail "$me: its fence register holds $other's value $f"; fail "$me: its fence register reads $f, not $fence"; }
  [ "$((k))" = "$((keyval))" ] || { [ "$((k))" = "$((okeyval))" ] && fail "$me: PLANE_KEYVAL holds $other's value $k"; fail "$me: PLANE_KEYVAL reads $k, not $keyval"; }
}
