# Every vGPU attached: lspci sees an Intel VGA controller with GVT-g's BARs (GTTMMADR: 16 MiB
# 64-bit MMIO; GMADR: the aperture, 64-bit prefetchable) and an MSI capability.
for id in $VGPUS; do
  d=$(dev "$id")
  eval "addr=\$VFK_DEV_$id"
  slot=${addr#0000:}
  lspci -nn -s "$slot"
  [ "$id" = "${VGPUS%% *}" ] && lspci -vv -s "$slot"
  lspci -nn -s "$slot" | grep -q 'VGA compatible controller \[0300\]: Intel Corporation .*\[8086:' ||
    fail "$id is not an Intel VGA controller"
  fact "$id.ids" "$(cat "$d/vendor"):$(cat "$d/device") sub $(cat "$d/subsystem_vendor"):$(cat "$d/subsystem_device")"
  b0=$(( $(bar_field "$d" 0 1) - $(bar_field "$d" 0 0) + 1 ))
  b2=$(( $(bar_field "$d" 2 1) - $(bar_field "$d" 2 0) + 1 ))
  fact "$id.bar0_bytes" "$b0"
  fact "$id.bar2_bytes" "$b2"
  [ "$b0" -eq $((16 << 20)) ] || fail "$id: BAR0 is $b0 bytes, not 16 MiB"
  lspci -vv -s "$slot" | grep -q 'Region 0: Memory at .* (64-bit, non-prefetchable) \[size=16M\]' || fail "$id: BAR0 is not 64-bit non-prefetchable"
  lspci -vv -s "$slot" | grep -q 'Region 2: Memory at .* (64-bit, prefetchable)' || fail "$id: BAR2 is not 64-bit prefetchable"
  lspci -vv -s "$slot" | grep -q 'MSI: Enable. Count=1/1' || fail "$id has no MSI capability"
done
