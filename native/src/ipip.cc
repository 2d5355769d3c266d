// (being written) ipip port family of the tsvs packet-I/O addon.
#include "common.h"
namespace tsvs {
void InitIpip(Napi::Env env, Napi::Object exports) {}
}  // namespace tsvs
