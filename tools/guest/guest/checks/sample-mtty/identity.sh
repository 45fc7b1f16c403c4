# lspci (pciutils) sees the card as Linux enumerated it: a 16550 serial controller with
# mtty's IDs and one 8-byte I/O BAR per port.
d=$(dev mtty)
slot=${VFK_DEV_mtty#0000:}
lspci -nn -s "$slot"
lspci -vv -s "$slot"
lspci -nn -s "$slot" | grep -q 'Serial controller \[0700\]' || fail "class is not a serial controller [0700]"
lspci -nn -s "$slot" | grep -q "\[$VENDOR_DEVICE\]" || fail "IDs are not [$VENDOR_DEVICE]"
ports=0
for i in 0 1 2 3 4 5; do
  flags=$(bar_field "$d" "$i" 2)
  [ $((flags & 0x100)) -ne 0 ] || continue
  start=$(bar_field "$d" "$i" 0)
  end=$(bar_field "$d" "$i" 1)
  [ $((end - start + 1)) -eq 8 ] || fail "BAR$i spans $((end - start + 1)) I/O ports, not 8"
  ports=$((ports + 1))
done
fact io_bars "$ports"
[ "$ports" -eq "$PORTS" ] || fail "$ports I/O BARs, not $PORTS"
