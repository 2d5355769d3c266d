// Typed error construction for the tsvs packet-I/O addon.
#include "common.h"
#include <cstring>

namespace tsvs {

Napi::Value ThrowIoError(Napi::Env env, const char* code, const std::string& message, int err) {
  std::string text = message;
  if (err != 0) {
    text += ": ";
    text += std::strerror(err);
  }
  Napi::Error e = Napi::Error::New(env, text);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, err));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace tsvs
