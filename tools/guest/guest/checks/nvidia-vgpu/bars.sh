# BAR$BAR through its mapping: a pattern written over $BYTES bytes, then read back. With
# STRICT=1 a difference fails here; otherwise the host part judges "readback" (pattern, zeros
# or other) against how QEMU served the BAR.
for id in $VGPUS; do
  eval "addr=\$VFK_DEV_$id"
  out=$(vfk fill "$addr" "$BAR" 0 "$BYTES" 0x33) || fail "$id: writing BAR$BAR failed: $out"
  echo "$out" | sed "s/^/$id./"
  if out=$(vfk verify "$addr" "$BAR" 0 "$BYTES" 0x33); then
    fact "$id.readback" pattern
  else
    [ "$STRICT" -eq 1 ] && fail "$id: BAR$BAR does not read back what was written ($(echo "$out" | tr '\n' ' '))"
    if [ "$(vfk rd "$addr" "$BAR" 0 4)" = 0x00000000 ] && [ "$(vfk rd "$addr" "$BAR" $((BYTES - 4)) 4)" = 0x00000000 ]; then
      fact "$id.readback" zeros
    else
      fact "$id.readback" other
    fi
  fi
  echo "$out" | sed "s/^/$id./"
done
