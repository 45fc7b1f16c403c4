# Linux's own 8250_pci drives every port: a ttyS whose device is this function sits at each
# I/O BAR's address, and the kernel logged it as a 16550A.
d=$(dev mtty)
[ "$(basename "$(readlink -f "$d/driver")")" = serial ] || fail "the function is bound to $(readlink "$d/driver"), not serial"
n=0
for i in 0 1 2 3 4 5; do
  flags=$(bar_field "$d" "$i" 2)
  [ $((flags & 0x100)) -ne 0 ] || continue
  start=$(bar_field "$d" "$i" 0)
  tty=
  for t in $(function_ttys "$d"); do
    [ "$(hex "$(cat "/sys/class/tty/$t/port")")" -eq "$(hex "$start")" ] && tty=$t
  done
  [ -n "$tty" ] || fail "no ttyS of this function sits at BAR$i's I/O address $start"
  irq=$(cat "/sys/class/tty/$tty/irq")
  line=$(dmesg | grep "$VFK_DEV_mtty: $tty at I/O" | tail -n 1)
  echo "$line"
  echo "$line" | grep -qi "at I/O 0x$(printf '%x' "$(hex "$start")") (irq = $irq" || fail "dmesg does not show $tty at I/O $start"
  echo "$line" | grep -q 'is a 16550A' || fail "$tty is not detected as a 16550A"
  fact "port$n" "$tty@$start/irq$irq"
  n=$((n + 1))
done
[ "$n" -eq "$PORTS" ] || fail "$n ports bound, not $PORTS"
