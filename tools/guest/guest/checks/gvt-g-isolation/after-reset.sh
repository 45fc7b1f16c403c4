# Guest a powers off now: its vGPU is reset when its QEMU leaves. Guest b waits until the host
# saw that reset, then reads everything back again.
. /vfk/iso/common.sh
if [ "$me" = a ]; then echo "a: done; its vGPU is reset when QEMU leaves"; pass; fi
await_host a-reset
check_own
echo "b: after a's reset its framebuffer rows, aperture tail, fence and plane register are intact"
pass
