// bpf() syscall plumbing for the fast path: maps, program load, BPF_PROG_TEST_RUN and tcx links, as N-API calls.
//
// JS API (src/fastpath/bpf.ts wraps it; every layout and every instruction is TypeScript's):
//   bpfMapCreate(type, keySize, valueSize, maxEntries, name) -> fd        (throws IoError)
//   bpfMapUpdate(fd, key: Uint8Array, value: Uint8Array, flags) -> 0 | errno
//   bpfMapLookup(fd, key: Uint8Array, valueOut: Uint8Array) -> 0 | errno
//   bpfMapDelete(fd, key: Uint8Array) -> 0 | errno
//   bpfMapNextKey(fd, key: Uint8Array | null, nextOut: Uint8Array) -> 0 | errno (ENOENT at the end)
//   bpfMapLookupBatch(fd, inBatch: Uint8Array | null, outBatch: Uint8Array, keys, values, max)
//     -> { count, errno } (BPF_MAP_LOOKUP_BATCH: up to `max` elements; errno ENOENT: the map is done)
//   bpfProgLoad(type, insns: Uint8Array, name, expectedAttachType) -> fd  (throws, verifier log in the message)
//   bpfProgTestRun(fd, dataIn, dataOut, ctxIn | null, ctxOut | null) -> { retval, dataSizeOut, ctxSizeOut }
//   bpfTcxAttach(progFd, ifindex, egress: boolean, first?: boolean) -> link fd (throws; first: BPF_F_BEFORE all)
//   bpfAttachSocket(sockFd, progFd) -> 0 | errno  (SO_ATTACH_BPF: a socket filter; progFd -1: SO_DETACH_BPF)
//   bpfClose(fd)
// Map calls return an errno instead of throwing: E2BIG (map full) and ENOENT are answers the caller
// acts on, not failures, and the per-entry calls stay cheap.
#include "common.h"
#include <cerrno>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace tsvs {

static constexpr uint32_t kTcxIngress = 46;  // BPF_TCX_INGRESS (Linux 6.6), newer than some uapi headers
static constexpr uint32_t kTcxEgress = 47;
static constexpr uint32_t kBpfFBefore = 1u << 3;  // BPF_F_BEFORE (Linux 6.6)

static bool Bytes(const Napi::Value& v, uint8_t** data, size_t* len) {
  void* d;
  if (!TypedArrayData(v.Env(), v, napi_uint8_array, &d, len)) return false;
  *data = static_cast<uint8_t*>(d);
  return true;
}

static const char* ErrCode(int e) { return (e == EPERM || e == EACCES) ? "EPERM" : "ESETUP"; }

static Napi::Value MapCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() ||
      !info[3].IsNumber() || !info[4].IsString())
    return ThrowIoError(env, "EINVAL", "bpfMapCreate(type, keySize, valueSize, maxEntries, name)", 0);
  union bpf_attr a;
  std::memset(&a, 0, sizeof a);
  a.map_type = info[0].As<Napi::Number>().Uint32Value();
  a.key_size = info[1].As<Napi::Number>().Uint32Value();
  a.value_size = info[2].As<Napi::Number>().Uint32Value();
  a.max_entries = info[3].As<Napi::Number>().Uint32Value();
  std::string name = info[4].As<Napi::String>().Utf8Value();
  std::strncpy(a.map_name, name.c_str(), sizeof a.map_name - 1);
  int fd = static_cast<int>(Bpf(BPF_MAP_CREATE, &a));
  if (fd < 0) return ThrowIoError(env, ErrCode(errno), "BPF_MAP_CREATE " + name, errno);
  return Napi::Number::New(env, fd);
}

// Shared by update/lookup/delete/next-key: key and value pointers into the caller's typed arrays.
static Napi::Value MapElem(const Napi::CallbackInfo& info, int cmd) {
  Napi::Env env = info.Env();
  uint8_t *key = nullptr, *val = nullptr;
  size_t klen = 0, vlen = 0;
  if (info.Length() < 1 || !info[0].IsNumber()) return Napi::Number::New(env, EINVAL);
  bool keyOk = (cmd == BPF_MAP_GET_NEXT_KEY && (info[1].IsNull() || info[1].IsUndefined())) || Bytes(info[1], &key, &klen);
  if (!keyOk) return Napi::Number::New(env, EINVAL);
  if (cmd != BPF_MAP_DELETE_ELEM && !Bytes(info[2], &val, &vlen)) return Napi::Number::New(env, EINVAL);
  union bpf_attr a;
  std::memset(&a, 0, sizeof a);
  a.map_fd = info[0].As<Napi::Number>().Uint32Value();
  a.key = reinterpret_cast<uint64_t>(key);
  if (cmd == BPF_MAP_GET_NEXT_KEY) a.next_key = reinterpret_cast<uint64_t>(val);
  else a.value = reinterpret_cast<uint64_t>(val);
  if (cmd == BPF_MAP_UPDATE_ELEM) a.flags = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : static_cast<uint32_t>(BPF_ANY);
  return Napi::Number::New(env, Bpf(cmd, &a) < 0 ? errno : 0);
}

static Napi::Value MapUpdate(const Napi::CallbackInfo& info) { return MapElem(info, BPF_MAP_UPDATE_ELEM); }
static Napi::Value MapLookup(const Napi::CallbackInfo& info) { return MapElem(info, BPF_MAP_LOOKUP_ELEM); }
static Napi::Value MapDelete(const Napi::CallbackInfo& info) { return MapElem(info, BPF_MAP_DELETE_ELEM); }
static Napi::Value MapNextKey(const Napi::CallbackInfo& info) { return MapElem(info, BPF_MAP_GET_NEXT_KEY); }

static Napi::Value MapLookupBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t *inB = nullptr, *outB, *keys, *vals;
  size_t l0 = 0, l1, l2, l3;
  if (info.Length() < 6 || !info[0].IsNumber() || (!info[1].IsNull() && !Bytes(info[1], &inB, &l0)) ||
      !Bytes(info[2], &outB, &l1) || !Bytes(info[3], &keys, &l2) || !Bytes(info[4], &vals, &l3) || !info[5].IsNumber() ||
      l1 < 8)
    return ThrowIoError(env, "EINVAL", "bpfMapLookupBatch(fd, inBatch | null, outBatch (8 bytes), keys, values, max)", 0);
  union bpf_attr a;
  std::memset(&a, 0, sizeof a);
  a.batch.map_fd = info[0].As<Napi::Number>().Uint32Value();
  a.batch.in_batch = reinterpret_cast<uint64_t>(inB);
  a.batch.out_batch = reinterpret_cast<uint64_t>(outB);
  a.batch.keys = reinterpret_cast<uint64_t>(keys);
  a.batch.values = reinterpret_cast<uint64_t>(vals);
  a.batch.count = info[5].As<Napi::Number>().Uint32Value();
  int e = Bpf(BPF_MAP_LOOKUP_BATCH, &a) < 0 ? errno : 0;
  Napi::Object r = Napi::Object::New(env);
  // On ENOENT (the end) count still says how many elements this last call copied.
  r.Set("count", Napi::Number::New(env, e == 0 || e == ENOENT ? a.batch.count : 0));
  r.Set("errno", Napi::Number::New(env, e));
  return r;
}

static Napi::Value ProgLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* insns;
  size_t len;
  if (info.Length() < 4 || !info[0].IsNumber() || !Bytes(info[1], &insns, &len) || len % 8 != 0 ||
      !info[2].IsString() || !info[3].IsNumber())
    return ThrowIoError(env, "EINVAL", "bpfProgLoad(type, insns: Uint8Array (8-byte instructions), name, expectedAttachType)", 0);
  static const char license[] = "GPL";
  std::vector<char> log(1 << 20);
  std::string name = info[2].As<Napi::String>().Utf8Value();
  union bpf_attr a;
  std::memset(&a, 0, sizeof a);
  a.prog_type = info[0].As<Napi::Number>().Uint32Value();
  a.insn_cnt = static_cast<uint32_t>(len / 8);
  a.insns = reinterpret_cast<uint64_t>(insns);
  a.license = reinterpret_cast<uint64_t>(license);
  a.expected_attach_type = info[3].As<Napi::Number>().Uint32Value();
  std::strncpy(a.prog_name, name.c_str(), sizeof a.prog_name - 1);
  // The log is asked for only on failure (a second load), so a good load costs no log formatting.
  int fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &a));
  if (fd >= 0) return Napi::Number::New(env, fd);
  int e = errno;
  a.log_level = 1;
  a.log_size = static_cast<uint32_t>(log.size());
  a.log_buf = reinterpret_cast<uint64_t>(log.data());
  fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &a));
  if (fd >= 0) return Napi::Number::New(env, fd);  // loaded the second time (a transient failure)
  log.back() = 0;
  std::string text(log.data());
  // The verifier's last lines say why; the start of a long log is only the trace leading there.
  if (text.size() > 4000) text = "..." + text.substr(text.size() - 4000);
  return ThrowIoError(env, ErrCode(e), "BPF_PROG_LOAD " + name + "; verifier: " + text, e);
}

static Napi::Value ProgTestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t *din, *dout, *cin = nullptr, *cout = nullptr;
  size_t lin, lout, lcin = 0, lcout = 0;
  if (info.Length() < 5 || !info[0].IsNumber() || !Bytes(info[1], &din, &lin) || !Bytes(info[2], &dout, &lout) ||
      (!info[3].IsNull() && !Bytes(info[3], &cin, &lcin)) || (!info[4].IsNull() && !Bytes(info[4], &cout, &lcout)))
    return ThrowIoError(env, "EINVAL", "bpfProgTestRun(fd, dataIn, dataOut, ctxIn | null, ctxOut | null)", 0);
  union bpf_attr a;
  std::memset(&a, 0, sizeof a);
  a.test.prog_fd = info[0].As<Napi::Number>().Uint32Value();
  a.test.data_in = reinterpret_cast<uint64_t>(din);
  a.test.data_size_in = static_cast<uint32_t>(lin);
  a.test.data_out = reinterpret_cast<uint64_t>(dout);
  a.test.data_size_out = static_cast<uint32_t>(lout);
  a.test.ctx_in = reinterpret_cast<uint64_t>(cin);
  a.test.ctx_size_in = static_cast<uint32_t>(lcin);
  a.test.ctx_out = reinterpret_cast<uint64_t>(cout);
  a.test.ctx_size_out = static_cast<uint32_t>(lcout);
  a.test.repeat = 1;
  if (Bpf(BPF_PROG_TEST_RUN, &a) < 0) return ThrowIoError(env, ErrCode(errno), "BPF_PROG_TEST_RUN", errno);
  Napi::Object r = Napi::Object::New(env);
  r.Set("retval", Napi::Number::New(env, static_cast<int32_t>(a.test.retval)));
  r.Set("dataSizeOut", Napi::Number::New(env, a.test.data_size_out));
  r.Set("ctxSizeOut", Napi::Number::New(env, a.test.ctx_size_out));
  return r;
}

static Napi::Value TcxAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsBoolean())
    return ThrowIoError(env, "EINVAL", "bpfTcxAttach(progFd, ifindex, egress)", 0);
  union bpf_attr a;
  std::memset(&a, 0, sizeof a);
  a.link_create.prog_fd = info[0].As<Napi::Number>().Uint32Value();
  a.link_create.target_ifindex = info[1].As<Napi::Number>().Uint32Value();
  a.link_create.attach_type = info[2].As<Napi::Boolean>().Value() ? kTcxEgress : kTcxIngress;
  // Before every program already there (with no relative fd: the first), e.g. the kernelDrop program.
  if (info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value()) a.link_create.flags = kBpfFBefore;
  int fd = static_cast<int>(Bpf(BPF_LINK_CREATE, &a));
  if (fd < 0) return ThrowIoError(env, ErrCode(errno), "BPF_LINK_CREATE (tcx)", errno);
  return Napi::Number::New(env, fd);
}

static Napi::Value AttachSocket(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) return Napi::Number::New(info.Env(), EINVAL);
  int sock = info[0].As<Napi::Number>().Int32Value();
  int prog = info[1].As<Napi::Number>().Int32Value();
  int r = prog < 0 ? setsockopt(sock, SOL_SOCKET, SO_DETACH_BPF, &prog, sizeof prog)
                   : setsockopt(sock, SOL_SOCKET, SO_ATTACH_BPF, &prog, sizeof prog);
  return Napi::Number::New(info.Env(), r < 0 ? errno : 0);
}

static Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsNumber()) {
    int fd = info[0].As<Napi::Number>().Int32Value();
    if (fd >= 0) close(fd);
  }
  return info.Env().Undefined();
}

void InitBpf(Napi::Env env, Napi::Object exports) {
  exports.Set("bpfMapCreate", Napi::Function::New(env, MapCreate, "bpfMapCreate"));
  exports.Set("bpfMapUpdate", Napi::Function::New(env, MapUpdate, "bpfMapUpdate"));
  exports.Set("bpfMapLookup", Napi::Function::New(env, MapLookup, "bpfMapLookup"));
  exports.Set("bpfMapDelete", Napi::Function::New(env, MapDelete, "bpfMapDelete"));
  exports.Set("bpfMapNextKey", Napi::Function::New(env, MapNextKey, "bpfMapNextKey"));
  exports.Set("bpfMapLookupBatch", Napi::Function::New(env, MapLookupBatch, "bpfMapLookupBatch"));
  exports.Set("bpfProgLoad", Napi::Function::New(env, ProgLoad, "bpfProgLoad"));
  exports.Set("bpfProgTestRun", Napi::Function::New(env, ProgTestRun, "bpfProgTestRun"));
  exports.Set("bpfTcxAttach", Napi::Function::New(env, TcxAttach, "bpfTcxAttach"));
  exports.Set("bpfAttachSocket", Napi::Function::New(env, AttachSocket, "bpfAttachSocket"));
  exports.Set("bpfClose", Napi::Function::New(env, CloseFd, "bpfClose"));
}

}  // namespace tsvs
