// Shared helpers of the tsvs packet-I/O addon: typed errors thrown to JavaScript, module init hooks.
#pragma once
#include <napi.h>
#include <string>

namespace tsvs {

// Throws a JS Error whose `code` is one of: EPERM (not root / missing capability), ENODEV (no such
// interface), ENETDOWN (interface down), ESETUP (ring or socket set-up failed), EINVAL (bad argument).
// `err` is the errno behind it (0 if none). Returns an undefined Value for convenient `return`.
Napi::Value ThrowIoError(Napi::Env env, const char* code, const std::string& message, int err);

void InitAfPacket(Napi::Env env, Napi::Object exports);
void InitTap(Napi::Env env, Napi::Object exports);
void InitIpip(Napi::Env env, Napi::Object exports);

}  // namespace tsvs
