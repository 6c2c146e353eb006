{
  "targets": [
    {
      "target_name": "vrouter_native",
      "sources": ["src/native/vrouter_native.c", "src/native/offload.c", "src/native/pktring.c"],
      "cflags": ["-std=c99", "-Wall", "-Wextra", "-O2"],
      "cflags!": []
    }
  ]
}
