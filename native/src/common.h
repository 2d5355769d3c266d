// Shared helpers of the tsvs packet-I/O addon: typed errors thrown to JavaScript, poll, module init hooks.
#pragma once
#include <napi.h>
#include <cstdint>
#include <string>
#include <linux/bpf.h>

namespace tsvs {

// Throws a JS Error whose `code` is one of: EPERM (not root / missing capability), ENODEV (no such
// interface), ENETDOWN (interface down), ESETUP (ring or socket set-up failed), EINVAL (bad argument).
// `err` is the errno behind it (0 if none). Returns an undefined Value for convenient `return`.
// src/io/errors.ts turns it into an IoError with the same code.
Napi::Value ThrowIoError(Napi::Env env, const char* code, const std::string& message, int err);

// Blocks up to timeoutMs (0 = just check, <0 = forever) until fd is readable. Returns true when it is;
// EINTR and errors read as "not readable" so callers on the data path never throw.
bool PollReadable(int fd, int timeoutMs);

// Raw pointer + byte length of a JS Uint8Array/Uint32Array/Int32Array argument, without copying.
// Returns false when the value is not a typed array of the expected element type.
bool TypedArrayData(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* length);

// Interface facts shared by every port family. Fills ifindex, flags, MAC (6 bytes) and MTU; on failure
// throws the typed error (ENODEV for a missing interface) and returns false.
struct IfInfo {
  int ifindex = 0;
  unsigned flags = 0;
  uint8_t mac[6] = {0, 0, 0, 0, 0, 0};
  int mtu = 0;
};
bool GetIfInfo(Napi::Env env, const std::string& ifname, IfInfo* out);

// Registers pollFd(fd, timeoutMs) and pollFds(fds: Int32Array, timeoutMs) -> readiness bitmask.
void InitCommon(Napi::Env env, Napi::Object exports);
// An option of a port's constructor: `opts[key]` when it is a number (boolean), else `dflt`.
double OptNumber(const Napi::Object& opts, const char* key, double dflt);
bool OptBool(const Napi::Object& opts, const char* key, bool dflt);

// The raw bpf() syscall (no libbpf): used for the XDP program and map and the tcx drop program.
long Bpf(int cmd, union bpf_attr* attr);

// The arguments of a fd-based burst call, (fd, buf: Uint8Array, offsets: Uint32Array,
// lengths: Uint32Array, n, slot, stats: Float64Array), unpacked and checked (n is capped to the arrays).
struct Burst {
  int fd;
  uint8_t* buf;
  size_t bufLen;
  uint32_t* offsets;
  uint32_t* lengths;
  uint32_t n;
  uint32_t slot;
  double* stats;
};

// False when an argument is missing, of the wrong type, or stats holds fewer than `minStats` counters.
bool UnpackBurst(const Napi::CallbackInfo& info, Burst* b, size_t minStats);

void InitAfPacket(Napi::Env env, Napi::Object exports);
void InitTap(Napi::Env env, Napi::Object exports);
void InitIpip(Napi::Env env, Napi::Object exports);
void InitXdp(Napi::Env env, Napi::Object exports);
void InitBpf(Napi::Env env, Napi::Object exports);

}  // namespace tsvs
