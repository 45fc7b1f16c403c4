{
  "targets": [
    {
      "target_name": "vfiokit_native",
      "sources": ["native/vfiokit_native.c", "native/args.c", "native/memory.c", "native/descriptors.c", "native/socket.c", "native/poll.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
