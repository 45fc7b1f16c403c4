# How the card interrupts: MSI when its config space offers the capability (then Linux must
# use it), else INTx through the IO-APIC, whose line lspci names. 8250 requests its IRQ when
# a port opens, so one port is held open while /proc/interrupts is read.
d=$(dev mtty)
slot=${VFK_DEV_mtty#0000:}
tty=$(function_ttys "$d" | head -n 1)
[ -n "$tty" ] || fail "no port of the card is bound"
exec 4<>"/dev/$tty" || fail "cannot open /dev/$tty"
lspci -vv -s "$slot" | grep -E 'Interrupt:|MSI' || true
irq=$(cat "/sys/class/tty/$tty/irq")
fact irq "$irq"
line=$(grep "^ *$irq:" /proc/interrupts)
echo "$line"
if lspci -vv -s "$slot" | grep -q 'MSI: Enable'; then
  fact msi offered
  lspci -vv -s "$slot" | grep -q 'MSI: Enable+' || fail "MSI is offered but Linux did not enable it"
  echo "$line" | grep -q 'PCI-MSI' || fail "IRQ $irq is not an MSI vector"
  pass
fi
fact msi absent
lspci -vv -s "$slot" | grep -q "Interrupt: pin A routed to IRQ $irq" || fail "lspci does not show pin A routed to IRQ $irq"
echo "$line" | grep -q 'IO-APIC' || fail "IRQ $irq is not an IO-APIC line"
echo "$line" | grep -q "$tty" || fail "IRQ $irq does not serve $tty"
echo "no MSI capability (as the kernel's mtty): INTx on IO-APIC IRQ $irq"
