# This guest's pattern into its framebuffer (through the aperture i915 maps it by) and the tail
# of its aperture slice, and its values into a fence register and a plane register; each reads
# back. Then it waits for the other guest to have written its own.
. /vfk/iso/common.sh
echo 0 > /sys/class/graphics/fbcon/cursor_blink 2>/dev/null
stride=$(cat /sys/class/graphics/fb0/stride)
dd if="/vfk/iso/pattern-$me.bin" of=/dev/fb0 bs="$stride" seek="$ROW" 2>/dev/null || fail "$me: cannot write /dev/fb0"
vfk fill "$addr" 2 "$tail_at" "$APERTURE_BYTES" "$seed" >/dev/null || fail "$me: cannot fill the aperture tail"
vfk wr "$addr" 0 "$FENCE_LO" 4 "$fence" || fail "$me: cannot write the fence register"
vfk wr "$addr" 0 "$((FENCE_LO + 4))" 4 "$((fence ^ 0x0f0f0f0f))" || fail "$me: cannot write the fence register"
vfk wr "$addr" 0 "$KEYVAL_REG" 4 "$keyval" || fail "$me: cannot write PLANE_KEYVAL"
dd if=/dev/fb0 bs="$stride" skip="$ROW" count="$ROWS" 2>/dev/null | cmp -s - "/vfk/iso/pattern-$me.bin" ||
  fail "$me: /dev/fb0 does not read back its pattern"
fact fence "$(vfk rd "$addr" 0 "$FENCE_LO" 4)"
fact keyval "$(vfk rd "$addr" 0 "$KEYVAL_REG" 4)"
fact aperture_tail "$(printf '0x%x' "$tail_at")"
# The server saves the plane every 500 ms: let it see this frame.
sleep 2
meet written
pass
