{
  "targets": [
    {
      "target_name": "vfiokit_native",
      "sources": ["native/vfiokit_native.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
