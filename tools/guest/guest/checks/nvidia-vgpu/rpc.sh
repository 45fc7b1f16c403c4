# A driver's first steps on the vGPU from the guest: the BAR0 ID registers (trapped), the host
# RPC handshake through the mailbox page mapped from BAR0, framebuffer allocation, and a
# channel that copies, fills and releases a semaphore in framebuffer memory seen through BAR1.
for id in $VGPUS; do
  eval "addr=\$VFK_DEV_$id"
  setpci -s "${addr#0000:}" COMMAND=0x0006:0x0006 || fail "$id: setpci could not enable memory and bus mastering"
  out=$(vfk nvidia "$addr" 0x4e56) || { echo "$out" | sed "s/^/$id./"; fail "$id: $(echo "$out" | sed -n 's/^FAIL: //p')"; }
  echo "$out" | sed "s/^/$id./"
done
