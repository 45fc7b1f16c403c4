# 64 KiB of random bytes through each port in raw mode at $BAUD: mtty loops its transmitter
# back to its receiver, so every byte must come back, in order, and the port's interrupt line
# must count the interrupts 8250 waited for.
d=$(dev mtty)
BYTES=65536
dd if=/dev/urandom of=/tmp/tx bs=1024 count=$((BYTES / 1024)) 2>/dev/null
n=0
for tty in $(function_ttys "$d"); do
  irq=$(cat "/sys/class/tty/$tty/irq")
  exec 4<>"/dev/$tty" || fail "cannot open /dev/$tty"
  stty -F "/dev/$tty" raw -echo -ixon -ixoff -crtscts clocal cread "$BAUD" || fail "stty $BAUD on $tty failed"
  speed=$(stty -F "/dev/$tty" speed)
  [ "$speed" = "$BAUD" ] || fail "$tty runs at $speed baud, not $BAUD"
  before=$(irq_count "$irq")
  rm -f /tmp/rx
  cat <&4 >/tmp/rx &
  reader=$!
  t0=$(awk '{ print int($1 * 1000) }' /proc/uptime)
  cat /tmp/tx >&4
  # Wait for the last byte; give up when nothing arrived for 15 s.
  last=-1
  idle=0
  while :; do
    got=$(stat -c %s /tmp/rx 2>/dev/null || echo 0)
    [ "$got" -ge "$BYTES" ] && break
    if [ "$got" -eq "$last" ]; then idle=$((idle + 1)); else idle=0; fi
    [ "$idle" -ge 75 ] && break
    last=$got
    sleep 0.2
  done
  t1=$(awk '{ print int($1 * 1000) }' /proc/uptime)
  after=$(irq_count "$irq")
  kill "$reader" 2>/dev/null
  wait "$reader" 2>/dev/null
  exec 4<&-
  got=$(stat -c %s /tmp/rx)
  ms=$((t1 - t0))
  fact "$tty.bytes" "$got"
  fact "$tty.ms" "$ms"
  fact "$tty.irqs" "$((after - before))"
  [ "$got" -eq "$BYTES" ] || fail "$tty at $BAUD: $got of $BYTES bytes came back"
  if ! cmp /tmp/tx /tmp/rx; then
    od -A x -t x1 /tmp/tx | head -n 2
    od -A x -t x1 /tmp/rx | head -n 2
    fail "$tty at $BAUD: the bytes that came back differ from those sent"
  fi
  [ "$after" -gt "$before" ] || fail "$tty at $BAUD: IRQ $irq did not count an interrupt ($before before, $after after)"
  echo "$tty at $BAUD baud: $BYTES bytes back intact in $ms ms, $((after - before)) interrupts on IRQ $irq"
  n=$((n + 1))
done
[ "$n" -eq "$PORTS" ] || fail "looped $n ports, not $PORTS"
