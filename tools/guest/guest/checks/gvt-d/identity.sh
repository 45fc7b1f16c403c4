# The IGD served at 00:02.0 as the guest enumerated it: IDs, BARs and the expansion ROM.
d=$(dev igd)
slot=${VFK_DEV_igd#0000:}
lspci -nn -s "$slot"
lspci -vv -s "$slot"
lspci -nn -s "$slot" | grep -q "VGA compatible controller \[0300\]: Intel Corporation .*\[$IDS\]" || fail "00:02.0 is not an Intel VGA controller [$IDS]"
fact ids "$(cat "$d/vendor"):$(cat "$d/device") sub $(cat "$d/subsystem_vendor"):$(cat "$d/subsystem_device") rev $(cat "$d/revision")"
for i in 0 1 2 3 4 5 6; do
  start=$(bar_field "$d" "$i" 0)
  end=$(bar_field "$d" "$i" 1)
  flags=$(bar_field "$d" "$i" 2)
  [ "$(hex "$end")" -eq 0 ] && continue
  fact "bar$i" "$(( end - start + 1 )) bytes flags $flags"
done
if [ -e "$d/rom" ]; then
  echo 1 >"$d/rom" 2>/dev/null
  sig=$(dd if="$d/rom" bs=2 count=1 2>/dev/null | od -A n -t x1 | tr -d ' ')
  echo 0 >"$d/rom" 2>/dev/null
  fact rom_signature "${sig:-unreadable}"
else
  fact rom_signature none
fi
fact asls "$(setpci -s "$slot" 0xfc.l)"
size() { echo $(( $(bar_field "$d" "$1" 1) - $(bar_field "$d" "$1" 0) + 1 )); }
[ "$(size 0)" -eq $((16 << 20)) ] || fail "BAR0 is $(size 0) bytes, not 16 MiB"
[ "$(size 2)" -eq $((256 << 20)) ] || fail "BAR2 is $(size 2) bytes, not 256 MiB"
[ "$(size 4)" -eq 64 ] || fail "BAR4 is $(size 4) I/O ports, not 64"
lspci -vv -s "$slot" | grep -q 'Region 2: Memory at .* (64-bit, prefetchable)' || fail "BAR2 is not 64-bit prefetchable"
fact rom_at "$(bar_field "$d" 6 0)"
