# i915 bound the vGPU and made its DRM and framebuffer devices.
d=$(dev vgpu)
drv=$(basename "$(readlink "$d/driver")")
fact driver "$drv"
[ "$drv" = i915 ] || fail "the vGPU is bound to \"$drv\", not i915"
[ -c /dev/dri/card0 ] || fail "/dev/dri/card0 is missing"
[ -c /dev/fb0 ] || fail "/dev/fb0 is missing"
fact fb_name "$(cat /sys/class/graphics/fb0/name)"
fact fb_size "$(cat /sys/class/graphics/fb0/virtual_size)"
fact fb_stride "$(cat /sys/class/graphics/fb0/stride)"
fact fb_bpp "$(cat /sys/class/graphics/fb0/bits_per_pixel)"
pass
