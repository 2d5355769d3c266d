{
  "targets": [
    {
      "target_name": "tsvs_io",
      "sources": [
        "native/src/addon.cc",
        "native/src/common.cc",
        "native/src/afpacket.cc",
        "native/src/tap.cc",
        "native/src/ipip.cc",
        "native/src/xdp.cc",
        "native/src/bpf.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=9", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
