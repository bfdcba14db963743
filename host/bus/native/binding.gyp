{
  "targets": [
    {
      "target_name": "vgw_can_raw",
      "sources": ["can_raw.c"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lpthread"]
    }
  ]
}
