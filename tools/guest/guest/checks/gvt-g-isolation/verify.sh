# Both guests have written: each reads back only its own values, none of the other's.
. /vfk/iso/common.sh
check_own
echo "$me: framebuffer rows, aperture tail, fence and plane register hold its own values"
meet checked
pass
