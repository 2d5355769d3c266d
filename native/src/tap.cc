// (being written) tap port family of the tsvs packet-I/O addon.
#include "common.h"
namespace tsvs {
void InitTap(Napi::Env env, Napi::Object exports) {}
}  // namespace tsvs
