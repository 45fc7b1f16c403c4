# timeout: 120
# The typed layer as a VMM uses it: mmap of BAR0, DMA through type1, MSI and INTx eventfds.
B=$(cat /tmp/edu.bdf 2>/dev/null) || skip "edu was not bound"
cd /vfk/project || fail "no project in the guest"
node edu-dma.mjs "$B" || fail "the edu program failed"
pass
