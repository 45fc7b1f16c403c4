# Each board's vGPU attached: lspci sees an NVIDIA 3D/VGA controller with the board's device
# ID, BAR0 (16 MiB registers), BAR1 (the framebuffer aperture, 64-bit prefetchable), BAR3
# (64-bit prefetchable) and MSI.
for id in $VGPUS; do
  d=$(dev "$id")
  eval "addr=\$VFK_DEV_$id"
  eval "want=\$IDS_$id"
  eval "class=\$CLASS_$id"
  slot=${addr#0000:}
  lspci -nn -s "$slot"
  lspci -vv -s "$slot" | grep -E 'Subsystem|Region|MSI:|Kernel'
  lspci -nn -s "$slot" | grep -qF "$class: NVIDIA Corporation " || fail "$id is not an NVIDIA $class"
  lspci -nn -s "$slot" | grep -qF "[$want]" || fail "$id is not [$want]"
  fact "$id.subsystem" "$(cat "$d/subsystem_vendor"):$(cat "$d/subsystem_device")"
  for i in 0 1 3; do fact "$id.bar${i}_bytes" $(( $(bar_field "$d" "$i" 1) - $(bar_field "$d" "$i" 0) + 1 )); done
  [ $(( $(bar_field "$d" 0 1) - $(bar_field "$d" 0 0) + 1 )) -eq $((16 << 20)) ] || fail "$id: BAR0 is not 16 MiB"
  lspci -vv -s "$slot" | grep -q 'Region 1: Memory at .* (64-bit, prefetchable)' || fail "$id: BAR1 is not 64-bit prefetchable"
  lspci -vv -s "$slot" | grep -q 'Region 3: Memory at .* (64-bit, prefetchable) \[size=32M\]' || fail "$id: BAR3 is not 32 MiB, 64-bit prefetchable"
  lspci -vv -s "$slot" | grep -q 'MSI: Enable' || fail "$id has no MSI capability"
done
