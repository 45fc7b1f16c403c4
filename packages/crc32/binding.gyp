{
  "targets": [
    {
      "target_name": "vfiokit_crc32",
      "sources": ["native/crc32.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
