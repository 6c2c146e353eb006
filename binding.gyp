{
  "targets": [
    {
      "target_name": "vrouter_native",
      "sources": [
        "src/native/vrouter_native.c", "src/native/napi-util.c", "src/native/tap.c",
        "src/native/packet.c", "src/native/sys.c", "src/native/offload.c", "src/native/pktring.c"
      ],
      "cflags": ["-std=c99", "-Wall", "-Wextra", "-O2", "-fvisibility=hidden"],
      "cflags!": []
    }
  ]
}
