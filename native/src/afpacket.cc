// (being written) afpacket port family of the tsvs packet-I/O addon.
#include "common.h"
namespace tsvs {
void InitAfPacket(Napi::Env env, Napi::Object exports) {}
}  // namespace tsvs
