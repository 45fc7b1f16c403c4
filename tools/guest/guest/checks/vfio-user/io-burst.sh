# $WRITES back-to-back writes to the card's scratch register (UART_SCR, BAR0 + 7, an I/O port),
# then one read of it: QEMU posts each write (the card has no mmapped region), so the burst
# fills its send queue; the read must see the last value written, whatever QEMU coalesced.
d=$(dev mtty)
start=$(hex "$(bar_field "$d" 0 0)")
[ "$start" -gt 0 ] || fail "BAR0 of $d has no I/O address"
out=$(vfk io-burst $((start + 7)) "$WRITES") || { echo "$out"; fail "the scratch register did not read back the last of $WRITES writes"; }
echo "$out"
