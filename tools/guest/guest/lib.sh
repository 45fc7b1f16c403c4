# Helpers every guest check has (sourced before the check runs, with /vfk/env).
# A check prints what it saw, one fact per line where a host check reads it ("key=value"),
# and ends with `pass`, `skip <why>` or `fail <why>` (or any non-zero exit).

pass() { exit 0; }
fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
fact() { echo "$1=$2"; }

# The sysfs directory of a served device, by the id the suite gave it: dev mtty.
dev() {
  eval "addr=\${VFK_DEV_$1}"
  [ -n "$addr" ] || fail "the boot has no device \"$1\""
  echo "/sys/bus/pci/devices/$addr"
}

# Field N (0-based) of BAR N's line in a device's sysfs resource file: start, end, flags.
bar_field() { sed -n "$(($2 + 1))p" "$1/resource" | awk -v f="$3" '{ print $(f + 1) }'; }

# The interrupt count of IRQ $1 summed over CPUs (0 when the line is absent).
irq_count() {
  awk -v irq="$1:" '$1 == irq { n = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i; print n; found = 1 }
    END { if (!found) print 0 }' /proc/interrupts
}

# Hex (0x...) to decimal.
hex() { printf '%d\n' "$1"; }

# Give a command $1 seconds; fail with the message $2 if it has not finished.
within() {
  t=$1
  shift
  timeout "$t" "$@" || fail "\"$*\" did not finish within ${t}s"
}

# lspci from pciutils, without its one complaint about the kernel module index the initramfs
# does not carry (lspci -k looks modules up through libkmod; the driver in use still shows).
lspci() { command lspci "$@" 2>&1 | grep -v 'Unable to load libkmod resources'; }

# The ttyS ports whose serial-core port device sits under the PCI function in $1 (sysfs dir).
function_ttys() {
  real=$(readlink -f "$1")
  for t in /sys/class/tty/ttyS*; do
    case "$(readlink -f "$t/device")" in "$real"/*) basename "$t" ;; esac
  done
}

# Meet the boot's other guests that run at the same time (its companions), through the host on
# the third UART: `meet NAME` returns once every guest still running has met NAME (one that
# has powered off counts as arrived); `await_host NAME` once a host check released NAME. The
# check's own timeout bounds the wait.
rendezvous() {
  [ -c /dev/ttyS2 ] || fail "no rendezvous port (/dev/ttyS2): the boot has no companions"
  stty -F /dev/ttyS2 raw -echo 115200 2>/dev/null
  exec 5<>/dev/ttyS2
  echo "$1 $2" >&5
  while read -r _word _name <&5; do
    [ "$_word $_name" = "go $2" ] && break
  done
  exec 5<&-
}
meet() { rendezvous meet "$1"; }
await_host() { rendezvous wait "$1"; }
