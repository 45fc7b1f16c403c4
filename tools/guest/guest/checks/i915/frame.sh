# Console text on tty1 (fbcon), then a known image into /dev/fb0 at row $ROW, left for the
# server's --save-frames to see. The cursor stops blinking so nothing draws over either.
echo 0 > /sys/class/graphics/fbcon/cursor_blink 2>/dev/null
printf '\033[2J\033[H%s' "$TEXT" > /dev/tty1 || fail "cannot write to /dev/tty1"
stride=$(cat /sys/class/graphics/fb0/stride)
dd if=/vfk/i915/pattern.bin of=/dev/fb0 bs="$stride" seek="$ROW" 2>/dev/null || fail "cannot write /dev/fb0"
# What the guest reads back is what it wrote.
dd if=/dev/fb0 bs="$stride" skip="$ROW" count="$ROWS" 2>/dev/null | cmp -s - /vfk/i915/pattern.bin ||
  fail "/dev/fb0 does not read back the pattern"
sleep 2
pass
