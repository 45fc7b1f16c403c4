{
  "targets": [
    {
      "target_name": "linux_vfio",
      "sources": ["native/linux_vfio.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
