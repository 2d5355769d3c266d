// Entry point of the tsvs packet-I/O addon: registers each port family's functions.
#include "common.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  tsvs::InitCommon(env, exports);
  tsvs::InitAfPacket(env, exports);
  tsvs::InitTap(env, exports);
  tsvs::InitIpip(env, exports);
  tsvs::InitXdp(env, exports);
  tsvs::InitBpf(env, exports);
  return exports;
}

NODE_API_MODULE(tsvs_io, Init)
