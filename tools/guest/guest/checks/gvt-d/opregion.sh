# An OpRegion where ASLS points, as i915's intel_opregion_setup() looks for it: the signature
# in guest RAM at the address config register 0xfc holds.
slot=${VFK_DEV_igd#0000:}
asls=$(setpci -s "$slot" 0xfc.l)
fact asls "0x$asls"
if [ "$((0x$asls))" -eq 0 ]; then
  fact opregion_at_asls none
  pass
fi
sig=$(dd if=/dev/mem bs=1 skip=$((0x$asls)) count=16 2>/dev/null)
fact opregion_at_asls "${sig:-unreadable}"
