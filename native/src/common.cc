// Shared helpers of the tsvs packet-I/O addon: typed errors, poll over one or many fds, interface facts.
#include "common.h"
#include <sys/syscall.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

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

bool PollReadable(int fd, int timeoutMs) {
  struct pollfd p = {fd, POLLIN, 0};
  int r = poll(&p, 1, timeoutMs);
  return r > 0 && (p.revents & POLLIN);
}

bool TypedArrayData(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* length) {
  napi_typedarray_type type;
  size_t len;
  void* ptr;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, &len, &ptr, &ab, &off) != napi_ok) return false;
  if (type != want && !(want == napi_uint8_array && type == napi_uint8_clamped_array)) return false;
  *data = ptr;
  *length = len;  // elements
  return true;
}

bool GetIfInfo(Napi::Env env, const std::string& ifname, IfInfo* out) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) {
    ThrowIoError(env, "EINVAL", "bad interface name '" + ifname + "'", 0);
    return false;
  }
  unsigned idx = if_nametoindex(ifname.c_str());
  if (idx == 0) {
    ThrowIoError(env, "ENODEV", "no such interface '" + ifname + "'", errno);
    return false;
  }
  // Any socket answers these ioctls, and a datagram socket needs no privilege.
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    ThrowIoError(env, "ESETUP", "socket(AF_INET) for interface ioctls failed", errno);
    return false;
  }
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
    int e = errno;
    close(s);
    ThrowIoError(env, e == ENODEV ? "ENODEV" : "ESETUP", "SIOCGIFFLAGS on '" + ifname + "' failed", e);
    return false;
  }
  out->flags = static_cast<unsigned short>(ifr.ifr_flags);
  if (ioctl(s, SIOCGIFHWADDR, &ifr) == 0) std::memcpy(out->mac, ifr.ifr_hwaddr.sa_data, 6);
  if (ioctl(s, SIOCGIFMTU, &ifr) == 0) out->mtu = ifr.ifr_mtu;
  close(s);
  out->ifindex = static_cast<int>(idx);
  return true;
}

static Napi::Value PollFdJs(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  int timeout = info[1].As<Napi::Number>().Int32Value();
  return Napi::Boolean::New(info.Env(), PollReadable(fd, timeout));
}

// Waits on up to 32 fds at once; bit i of the result is set when fds[i] is readable. A loop over
// several ports sleeps in one syscall instead of round-robin polling each.
static Napi::Value PollFdsJs(const Napi::CallbackInfo& info) {
  void* data;
  size_t n;
  if (info.Length() < 2 || !TypedArrayData(info.Env(), info[0], napi_int32_array, &data, &n) || n > 32)
    return ThrowIoError(info.Env(), "EINVAL", "pollFds(fds: Int32Array (<= 32), timeoutMs)", 0);
  int timeout = info[1].As<Napi::Number>().Int32Value();
  const int32_t* fds = static_cast<const int32_t*>(data);
  struct pollfd p[32];
  for (size_t i = 0; i < n; i++) p[i] = {fds[i], POLLIN, 0};
  uint32_t mask = 0;
  int r = poll(p, n, timeout);
  if (r > 0)
    for (size_t i = 0; i < n; i++)
      if (p[i].revents & POLLIN) mask |= 1u << i;
  return Napi::Number::New(info.Env(), mask);
}

void InitCommon(Napi::Env env, Napi::Object exports) {
  exports.Set("pollFd", Napi::Function::New(env, PollFdJs, "pollFd"));
  exports.Set("pollFds", Napi::Function::New(env, PollFdsJs, "pollFds"));
}

double OptNumber(const Napi::Object& opts, const char* key, double dflt) {
  Napi::Value v = opts.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : dflt;
}

long Bpf(int cmd, union bpf_attr* attr) {
  return syscall(__NR_bpf, cmd, attr, sizeof *attr);
}

bool OptBool(const Napi::Object& opts, const char* key, bool dflt) {
  Napi::Value v = opts.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : dflt;
}

bool UnpackBurst(const Napi::CallbackInfo& info, Burst* b, size_t minStats) {
  if (info.Length() < 7 || !info[0].IsNumber() || !info[1].IsTypedArray() || !info[2].IsTypedArray() ||
      !info[3].IsTypedArray() || !info[4].IsNumber() || !info[5].IsNumber() || !info[6].IsTypedArray()) {
    return false;
  }
  auto buf = info[1].As<Napi::TypedArray>();
  auto off = info[2].As<Napi::TypedArray>();
  auto len = info[3].As<Napi::TypedArray>();
  auto st = info[6].As<Napi::TypedArray>();
  if (buf.TypedArrayType() != napi_uint8_array || off.TypedArrayType() != napi_uint32_array ||
      len.TypedArrayType() != napi_uint32_array || st.TypedArrayType() != napi_float64_array ||
      st.ElementLength() < minStats) {
    return false;
  }
  auto u8 = buf.As<Napi::Uint8Array>();
  b->fd = info[0].As<Napi::Number>().Int32Value();
  b->buf = u8.Data();
  b->bufLen = u8.ElementLength();
  b->offsets = off.As<Napi::Uint32Array>().Data();
  b->lengths = len.As<Napi::Uint32Array>().Data();
  uint32_t n = info[4].As<Napi::Number>().Uint32Value();
  size_t cap = off.ElementLength() < len.ElementLength() ? off.ElementLength() : len.ElementLength();
  b->n = n < cap ? n : static_cast<uint32_t>(cap);
  b->slot = info[5].As<Napi::Number>().Uint32Value();
  b->stats = st.As<Napi::Float64Array>().Data();
  return true;
}

}  // namespace tsvs
