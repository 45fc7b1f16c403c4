# The aperture is guest memory mapped straight from the server's memfd: a pattern written
# through BAR2 at the vGPU's mappable range reads back, and the vGPU itself executes a ring
# and a batch the guest wrote there (its stores land in guest RAM through hidden GM) and blits
# into an aperture page the guest then reads.
for id in $VGPUS; do
  eval "addr=\$VFK_DEV_$id"
  setpci -s "${addr#0000:}" COMMAND=0x0006:0x0006 || fail "$id: setpci could not enable memory and bus mastering"
  out=$(vfk gvtg-aperture "$addr" "$BYTES" 0x1234) || { echo "$out" | sed "s/^/$id./"; fail "$id: $(echo "$out" | sed -n 's/^FAIL: //p')"; }
  echo "$out" | sed "s/^/$id./"
done
