# BAR$BAR through its mapping: a pattern written over $BYTES bytes reads back.
for id in $VGPUS; do
  eval "addr=\$VFK_DEV_$id"
  out=$(vfk fill "$addr" "$BAR" 0 "$BYTES" 0x33) || fail "$id: writing BAR$BAR failed: $out"
  echo "$out" | sed "s/^/$id./"
  out=$(vfk verify "$addr" "$BAR" 0 "$BYTES" 0x33) || {
    echo "$out" | sed "s/^/$id./"
    fail "$id: BAR$BAR does not read back what was written ($(echo "$out" | tr '\n' ' '))"
  }
  echo "$out" | sed "s/^/$id./"
done
