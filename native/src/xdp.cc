// AF_XDP port family of the tsvs packet-I/O addon: an XSK socket over a UMEM, fed by a tiny XDP program.
//
// JS API (src/io/xdp.ts wraps it):
//   new Xdp(ifname, { mode?: 'auto'|'drv'|'skb', queue?, frames?, ringSize? })
//   .rxBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, max) -> count
//   .txBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count, first = 0) -> accepted
//   .wait(timeoutMs) -> bool, .stats() -> object, .close(), and fd/ifindex/mac/mtu/maxFrame/mode/zerocopy.
// No libbpf: the XSKMAP, the program (6 instructions written out below) and its attachment (a BPF link,
// so the program goes away with the process even if it is killed) are raw bpf() calls.
// Frames cross this API with a 10-byte virtio_net_hdr like every port: zeros on receive (XDP carries no
// checksum or GSO state), and on transmit the header is skipped. Completing partial checksums and
// segmenting GSO frames before txBurst is the TypeScript wrapper's job (packet logic stays in TS).
// docs/xdp.md has what was measured with it.
#include "common.h"
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif

namespace tsvs {

static constexpr unsigned kVnetLen = 10;
// One UMEM chunk per frame. In copy mode the kernel keeps XDP_PACKET_HEADROOM (256) in front of the
// data, so a 4 KB chunk holds frames up to 3,840 bytes: enough for MTU 1500 plus tags, not for GSO.
static constexpr unsigned kChunk = 4096;
static constexpr unsigned kXdpHeadroom = 256;

struct Ring {
  uint32_t* producer = nullptr;
  uint32_t* consumer = nullptr;
  uint32_t* flags = nullptr;
  void* desc = nullptr;
  void* map = nullptr;
  size_t mapLen = 0;
  uint32_t size = 0, mask = 0;
};

class Xdp : public Napi::ObjectWrap<Xdp> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Xdp",
                       {InstanceMethod<&Xdp::RxBurst>("rxBurst"), InstanceMethod<&Xdp::TxBurst>("txBurst"),
                        InstanceMethod<&Xdp::Wait>("wait"), InstanceMethod<&Xdp::Stats>("stats"),
                        InstanceMethod<&Xdp::Close>("close")});
  }

  Xdp(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Xdp>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) {
      ThrowIoError(env, "EINVAL", "Xdp(ifname, opts)", 0);
      return;
    }
    std::string ifname = info[0].As<Napi::String>().Utf8Value();
    Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    auto num = [&](const char* k, double d) { return OptNumber(opts, k, d); };
    std::string mode = "auto";
    if (opts.Get("mode").IsString()) mode = opts.Get("mode").As<Napi::String>().Utf8Value();
    queue_ = static_cast<unsigned>(num("queue", 0));
    frames_ = static_cast<unsigned>(num("frames", 4096));
    ringSize_ = static_cast<unsigned>(num("ringSize", 1024));
    auto pow2 = [](unsigned v) { return v != 0 && (v & (v - 1)) == 0; };
    if ((mode != "auto" && mode != "drv" && mode != "skb") || !pow2(ringSize_) || ringSize_ < 64 ||
        ringSize_ > 16384 || frames_ < 2 * ringSize_ || frames_ > 262144 || queue_ > 1023) {
      ThrowIoError(env, "EINVAL",
                   "bad Xdp options (mode auto|drv|skb, ringSize power of two 64..16384, frames >= 2*ringSize)", 0);
      return;
    }

    IfInfo ifi;
    if (!GetIfInfo(env, ifname, &ifi)) return;
    if (!(ifi.flags & IFF_UP)) {
      ThrowIoError(env, "ENETDOWN", "interface '" + ifname + "' is down", 0);
      return;
    }
    ifindex_ = ifi.ifindex;
    mtu_ = ifi.mtu;
    std::memcpy(mac_, ifi.mac, 6);

    fd_ = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      int e = errno;
      ThrowIoError(env, (e == EPERM || e == EACCES) ? "EPERM" : "ESETUP",
                   e == EPERM || e == EACCES ? "AF_XDP socket needs root or CAP_NET_RAW"
                                             : "AF_XDP socket (kernel built without CONFIG_XDP_SOCKETS?)",
                   e);
      return;
    }

    // UMEM: frames_ chunks; the first half feeds the fill ring (receive), the rest is the TX pool.
    umemLen_ = static_cast<size_t>(frames_) * kChunk;
    void* um = mmap(nullptr, umemLen_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (um == MAP_FAILED) { Fail(env, "mmap of the UMEM"); return; }
    umem_ = static_cast<uint8_t*>(um);
    struct xdp_umem_reg reg;
    std::memset(&reg, 0, sizeof reg);
    reg.addr = reinterpret_cast<uint64_t>(umem_);
    reg.len = umemLen_;
    reg.chunk_size = kChunk;
    reg.headroom = 0;
    if (setsockopt(fd_, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg) < 0) { Fail(env, "XDP_UMEM_REG"); return; }
    unsigned rs = ringSize_;
    // Fill and completion rings hold every chunk of their half so neither can overflow.
    unsigned half = frames_ / 2;
    unsigned fillSize = 1, compSize = 1;
    while (fillSize < half) fillSize <<= 1;
    while (compSize < frames_ - half) compSize <<= 1;
    if (setsockopt(fd_, SOL_XDP, XDP_UMEM_FILL_RING, &fillSize, sizeof fillSize) < 0) { Fail(env, "XDP_UMEM_FILL_RING"); return; }
    if (setsockopt(fd_, SOL_XDP, XDP_UMEM_COMPLETION_RING, &compSize, sizeof compSize) < 0) { Fail(env, "XDP_UMEM_COMPLETION_RING"); return; }
    if (setsockopt(fd_, SOL_XDP, XDP_RX_RING, &rs, sizeof rs) < 0) { Fail(env, "XDP_RX_RING"); return; }
    if (setsockopt(fd_, SOL_XDP, XDP_TX_RING, &rs, sizeof rs) < 0) { Fail(env, "XDP_TX_RING"); return; }
    struct xdp_mmap_offsets off;
    socklen_t olen = sizeof off;
    if (getsockopt(fd_, SOL_XDP, XDP_MMAP_OFFSETS, &off, &olen) < 0) { Fail(env, "XDP_MMAP_OFFSETS"); return; }
    if (!MapRing(&fill_, off.fr, fillSize, sizeof(uint64_t), XDP_UMEM_PGOFF_FILL_RING) ||
        !MapRing(&comp_, off.cr, compSize, sizeof(uint64_t), XDP_UMEM_PGOFF_COMPLETION_RING) ||
        !MapRing(&rx_, off.rx, rs, sizeof(struct xdp_desc), XDP_PGOFF_RX_RING) ||
        !MapRing(&tx_, off.tx, rs, sizeof(struct xdp_desc), XDP_PGOFF_TX_RING)) {
      Fail(env, "mmap of an XDP ring");
      return;
    }
    uint64_t* fdesc = static_cast<uint64_t*>(fill_.desc);
    for (unsigned i = 0; i < half; i++) fdesc[i & fill_.mask] = static_cast<uint64_t>(i) * kChunk;
    __atomic_store_n(fill_.producer, half, __ATOMIC_RELEASE);
    fillProd_ = half;
    txFree_.reserve(frames_ - half);
    for (unsigned i = half; i < frames_; i++) txFree_.push_back(static_cast<uint64_t>(i) * kChunk);

    struct sockaddr_xdp sxdp;
    std::memset(&sxdp, 0, sizeof sxdp);
    sxdp.sxdp_family = AF_XDP;
    sxdp.sxdp_ifindex = ifindex_;
    sxdp.sxdp_queue_id = queue_;
    sxdp.sxdp_flags = XDP_USE_NEED_WAKEUP;  // the kernel picks zero-copy when the driver has it
    // A socket closed a moment ago still holds the queue: the kernel releases its buffer pool from a
    // workqueue. EBUSY is retried for up to a second; past that the queue really is taken.
    int br;
    for (int tries = 0; (br = bind(fd_, reinterpret_cast<struct sockaddr*>(&sxdp), sizeof sxdp)) < 0 &&
                        errno == EBUSY && tries < 50;
         tries++)
      usleep(20000);
    if (br < 0) {
      int e = errno;
      if (e == ENETDOWN) {
        Release();
        ThrowIoError(env, "ENETDOWN", "interface '" + ifname + "' is down", e);
        return;
      }
      Fail(env, e == EBUSY ? "bind of the XDP socket (another XDP socket owns this queue)"
                : e == EINVAL ? "bind of the XDP socket (queue id beyond the device's queues?)"
                              : "bind of the XDP socket");
      return;
    }
    struct xdp_options xo;
    socklen_t xolen = sizeof xo;
    if (getsockopt(fd_, SOL_XDP, XDP_OPTIONS, &xo, &xolen) == 0) zerocopy_ = (xo.flags & XDP_OPTIONS_ZEROCOPY) != 0;

    // The XSKMAP: one slot per RX queue index, ours set to this socket.
    union bpf_attr a;
    std::memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_XSKMAP;
    a.key_size = 4;
    a.value_size = 4;
    a.max_entries = queue_ + 1;
    std::strncpy(a.map_name, "tsvs_xsks", sizeof a.map_name - 1);
    mapFd_ = static_cast<int>(Bpf(BPF_MAP_CREATE, &a));
    if (mapFd_ < 0) { Fail(env, "BPF_MAP_CREATE XSKMAP"); return; }
    uint32_t key = queue_;
    uint32_t val = static_cast<uint32_t>(fd_);
    std::memset(&a, 0, sizeof a);
    a.map_fd = mapFd_;
    a.key = reinterpret_cast<uint64_t>(&key);
    a.value = reinterpret_cast<uint64_t>(&val);
    a.flags = BPF_ANY;
    if (Bpf(BPF_MAP_UPDATE_ELEM, &a) < 0) { Fail(env, "BPF_MAP_UPDATE_ELEM (socket into the XSKMAP)"); return; }

    // return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS): frames of queues without a
    // socket (and everything when the slot is empty) go on to the kernel stack.
    struct bpf_insn prog[6];
    std::memset(prog, 0, sizeof prog);
    prog[0].code = BPF_LDX | BPF_MEM | BPF_W;  // r2 = ctx->rx_queue_index
    prog[0].dst_reg = BPF_REG_2;
    prog[0].src_reg = BPF_REG_1;
    prog[0].off = offsetof(struct xdp_md, rx_queue_index);
    prog[1].code = BPF_LD | BPF_DW | BPF_IMM;  // r1 = map (two-slot ld_imm64, fd resolved by the kernel)
    prog[1].dst_reg = BPF_REG_1;
    prog[1].src_reg = BPF_PSEUDO_MAP_FD;
    prog[1].imm = mapFd_;
    prog[3].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r3 = XDP_PASS (action when the key has no socket)
    prog[3].dst_reg = BPF_REG_3;
    prog[3].imm = XDP_PASS;
    prog[4].code = BPF_JMP | BPF_CALL;
    prog[4].imm = BPF_FUNC_redirect_map;
    prog[5].code = BPF_JMP | BPF_EXIT;
    static char license[] = "GPL";
    std::memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_XDP;
    a.insn_cnt = 6;
    a.insns = reinterpret_cast<uint64_t>(prog);
    a.license = reinterpret_cast<uint64_t>(license);
    a.expected_attach_type = BPF_XDP;
    a.log_level = 1;
    a.log_size = sizeof log_;
    a.log_buf = reinterpret_cast<uint64_t>(log_);
    std::strncpy(a.prog_name, "tsvs_xsk", sizeof a.prog_name - 1);
    progFd_ = static_cast<int>(Bpf(BPF_PROG_LOAD, &a));
    if (progFd_ < 0) {
      int e = errno;
      std::string msg = std::string("BPF_PROG_LOAD of the XDP program; verifier: ") + log_;
      errno = e;
      Fail(env, msg.c_str());
      return;
    }

    // Attach through a BPF link: native (driver) mode first, generic (skb) mode as the fallback.
    int drvErr = 0;
    if (mode != "skb") {
      linkFd_ = Link(XDP_FLAGS_DRV_MODE);
      if (linkFd_ >= 0) mode_ = "drv";
      else drvErr = errno;
    }
    if (linkFd_ < 0 && mode != "drv") {
      linkFd_ = Link(XDP_FLAGS_SKB_MODE);
      if (linkFd_ >= 0) mode_ = "skb";
    }
    if (linkFd_ < 0) {
      std::string msg = "BPF_LINK_CREATE (attach XDP to '" + ifname + "' in " + mode + " mode";
      if (drvErr && mode == "auto") msg += std::string("; driver mode said: ") + std::strerror(drvErr);
      msg += "; another XDP program already attached?)";
      Fail(env, msg.c_str());
      return;
    }
    Napi::Object self = info.This().As<Napi::Object>();
    self.Set("fd", Napi::Number::New(env, fd_));
    self.Set("ifindex", Napi::Number::New(env, ifindex_));
    self.Set("mtu", Napi::Number::New(env, mtu_));
    self.Set("mac", Napi::Buffer<uint8_t>::Copy(env, mac_, 6));
    self.Set("maxFrame", Napi::Number::New(env, kChunk - kXdpHeadroom + kVnetLen));
    self.Set("mode", Napi::String::New(env, mode_));
    self.Set("zerocopy", Napi::Boolean::New(env, zerocopy_));
    self.Set("drvErrno", Napi::Number::New(env, drvErr));
    self.Set("queue", Napi::Number::New(env, queue_));
  }

  ~Xdp() override { Release(); }

 private:
  int Link(uint32_t flags) {
    union bpf_attr a;
    std::memset(&a, 0, sizeof a);
    a.link_create.prog_fd = progFd_;
    a.link_create.target_ifindex = ifindex_;
    a.link_create.attach_type = BPF_XDP;
    a.link_create.flags = flags;
    return static_cast<int>(Bpf(BPF_LINK_CREATE, &a));
  }

  bool MapRing(Ring* r, const struct xdp_ring_offset& o, uint32_t size, size_t descSize, off_t pgoff) {
    r->mapLen = o.desc + static_cast<size_t>(size) * descSize;
    void* m = mmap(nullptr, r->mapLen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, pgoff);
    if (m == MAP_FAILED) {
      r->mapLen = 0;
      return false;
    }
    uint8_t* b = static_cast<uint8_t*>(m);
    r->map = m;
    r->producer = reinterpret_cast<uint32_t*>(b + o.producer);
    r->consumer = reinterpret_cast<uint32_t*>(b + o.consumer);
    r->flags = reinterpret_cast<uint32_t*>(b + o.flags);
    r->desc = b + o.desc;
    r->size = size;
    r->mask = size - 1;
    return true;
  }

  void Fail(Napi::Env env, const char* what) {
    int e = errno;
    Release();
    ThrowIoError(env, (e == EPERM || e == EACCES) ? "EPERM" : "ESETUP", std::string("AF_XDP set-up: ") + what, e);
  }

  void Release() {
    // The link goes first: once it is closed the program is off the interface.
    if (linkFd_ >= 0) close(linkFd_);
    linkFd_ = -1;
    if (progFd_ >= 0) close(progFd_);
    progFd_ = -1;
    if (mapFd_ >= 0) close(mapFd_);
    mapFd_ = -1;
    for (Ring* r : {&fill_, &comp_, &rx_, &tx_}) {
      if (r->map) munmap(r->map, r->mapLen);
      *r = Ring();
    }
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    if (umem_) munmap(umem_, umemLen_);
    umem_ = nullptr;
  }

  // Returns finished TX chunks to the pool.
  inline void Reap() {
    uint32_t cons = *comp_.consumer;
    uint32_t prod = __atomic_load_n(comp_.producer, __ATOMIC_ACQUIRE);
    if (cons == prod) return;
    const uint64_t* d = static_cast<const uint64_t*>(comp_.desc);
    for (uint32_t c = cons; c != prod; c++) txFree_.push_back(d[c & comp_.mask]);
    __atomic_store_n(comp_.consumer, prod, __ATOMIC_RELEASE);
  }

  // Hot path: never throws for traffic; bad arguments are programming errors and read as 0 frames.
  Napi::Value RxBurst(const Napi::CallbackInfo& info) {
    napi_env env = info.Env();
    void *b, *o, *l;
    size_t blen, olen, llen;
    if (fd_ < 0 || !TypedArrayData(env, info[0], napi_uint8_array, &b, &blen) ||
        !TypedArrayData(env, info[1], napi_uint32_array, &o, &olen) ||
        !TypedArrayData(env, info[2], napi_uint32_array, &l, &llen))
      return Napi::Number::New(env, 0);
    uint32_t max = info[3].As<Napi::Number>().Uint32Value();
    if (max > olen) max = olen;
    if (max > llen) max = llen;
    uint8_t* buf = static_cast<uint8_t*>(b);
    const uint32_t* offsets = static_cast<const uint32_t*>(o);
    uint32_t* lengths = static_cast<uint32_t*>(l);
    uint32_t cons = *rx_.consumer;
    uint32_t avail = __atomic_load_n(rx_.producer, __ATOMIC_ACQUIRE) - cons;
    if (avail > max) avail = max;
    const struct xdp_desc* d = static_cast<const struct xdp_desc*>(rx_.desc);
    uint64_t* fdesc = static_cast<uint64_t*>(fill_.desc);
    uint32_t n = 0;
    for (uint32_t k = 0; k < avail; k++) {
      const struct xdp_desc& x = d[(cons + k) & rx_.mask];
      size_t flen = static_cast<size_t>(x.len) + kVnetLen;
      if (static_cast<size_t>(offsets[n]) + flen > blen) {
        rxTooBig_++;
      } else {
        uint8_t* dst = buf + offsets[n];
        std::memset(dst, 0, kVnetLen);
        std::memcpy(dst + kVnetLen, umem_ + x.addr, x.len);
        lengths[n] = static_cast<uint32_t>(flen);
        rxBytes_ += flen;
        n++;
      }
      // The chunk goes straight back to the fill ring (its base address: the kernel adds the headroom).
      fdesc[fillProd_++ & fill_.mask] = x.addr - (x.addr % kChunk);
    }
    if (avail) {
      __atomic_store_n(rx_.consumer, cons + avail, __ATOMIC_RELEASE);
      __atomic_store_n(fill_.producer, fillProd_, __ATOMIC_RELEASE);
      if (__atomic_load_n(fill_.flags, __ATOMIC_ACQUIRE) & XDP_RING_NEED_WAKEUP)
        recvfrom(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
    }
    rxFrames_ += n;
    return Napi::Number::New(env, n);
  }

  // Frames are copied into TX chunks (vnet header skipped) and the kernel is kicked once; in copy mode
  // one sendto() sends at most a small batch (32 on 6.x) and says EAGAIN while more wait, so the kick
  // repeats until the ring is drained or the device pushes back.
  Napi::Value TxBurst(const Napi::CallbackInfo& info) {
    napi_env env = info.Env();
    void *b, *o, *l;
    size_t blen, olen, llen;
    if (fd_ < 0 || !TypedArrayData(env, info[0], napi_uint8_array, &b, &blen) ||
        !TypedArrayData(env, info[1], napi_uint32_array, &o, &olen) ||
        !TypedArrayData(env, info[2], napi_uint32_array, &l, &llen))
      return Napi::Number::New(env, 0);
    uint32_t count = info[3].As<Napi::Number>().Uint32Value();
    // Optional first index, so the wrapper can send part of a burst without a subarray per call.
    uint32_t first = info.Length() > 4 && info[4].IsNumber() ? info[4].As<Napi::Number>().Uint32Value() : 0;
    if (first > olen || first > llen) return Napi::Number::New(env, 0);
    olen -= first;
    llen -= first;
    if (count > olen) count = olen;
    if (count > llen) count = llen;
    const uint8_t* buf = static_cast<const uint8_t*>(b);
    const uint32_t* offsets = static_cast<const uint32_t*>(o) + first;
    const uint32_t* lengths = static_cast<const uint32_t*>(l) + first;
    Reap();
    uint32_t prod = *tx_.producer;
    uint32_t room = tx_.size - (prod - __atomic_load_n(tx_.consumer, __ATOMIC_ACQUIRE));
    struct xdp_desc* d = static_cast<struct xdp_desc*>(tx_.desc);
    const uint32_t maxData = kChunk - kXdpHeadroom;
    uint32_t sent = 0, refused = 0;
    for (uint32_t i = 0; i < count; i++) {
      size_t off = offsets[i], len = lengths[i];
      // A GSO or partial-checksum frame reaching here was not prepared by the wrapper: refuse it
      // rather than put a wrong checksum or an oversized frame on the wire.
      if (len <= kVnetLen + 14 || off + len > blen || len - kVnetLen > maxData || buf[off] != 0 ||
          buf[off + 1] != 0 || room == 0 || txFree_.empty()) {
        refused++;
        continue;
      }
      uint64_t addr = txFree_.back();
      txFree_.pop_back();
      std::memcpy(umem_ + addr, buf + off + kVnetLen, len - kVnetLen);
      struct xdp_desc& x = d[prod & tx_.mask];
      x.addr = addr;
      x.len = static_cast<uint32_t>(len - kVnetLen);
      x.options = 0;
      prod++;
      room--;
      sent++;
      txBytes_ += len;
    }
    if (sent) {
      __atomic_store_n(tx_.producer, prod, __ATOMIC_RELEASE);
      Kick();
    }
    txFrames_ += sent;
    txErrors_ += refused;
    return Napi::Number::New(env, sent);
  }

  void Kick() {
    for (int tries = 0; tries < 64; tries++) {
      if (__atomic_load_n(tx_.consumer, __ATOMIC_ACQUIRE) == *tx_.producer) break;
      // Copy mode transmits only inside sendto(); a zero-copy driver says when it needs the kick.
      if (zerocopy_ && !(__atomic_load_n(tx_.flags, __ATOMIC_ACQUIRE) & XDP_RING_NEED_WAKEUP)) break;
      kicks_++;
      if (sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) continue;
      int e = errno;
      if (e == EAGAIN || e == EINTR) continue;
      if (e == EBUSY || e == ENOBUFS) {
        // The device pushed back: frames stay in the ring and go with the next kick.
        kickBusy_++;
        break;
      }
      kickErrors_++;
      break;
    }
    Reap();
  }

  Napi::Value Wait(const Napi::CallbackInfo& info) {
    int timeout = info.Length() > 0 ? info[0].As<Napi::Number>().Int32Value() : 0;
    if (fd_ < 0) return Napi::Boolean::New(info.Env(), false);
    if (__atomic_load_n(rx_.producer, __ATOMIC_ACQUIRE) != *rx_.consumer) return Napi::Boolean::New(info.Env(), true);
    return Napi::Boolean::New(info.Env(), PollReadable(fd_, timeout));
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    struct xdp_statistics st;
    std::memset(&st, 0, sizeof st);
    socklen_t len = sizeof st;
    if (fd_ >= 0) getsockopt(fd_, SOL_XDP, XDP_STATISTICS, &st, &len);
    Napi::Object o = Napi::Object::New(env);
    auto set = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
    set("rxFrames", rxFrames_);
    set("rxBytes", rxBytes_);
    set("txFrames", txFrames_);
    set("txBytes", txBytes_);
    // Frames the kernel could not hand over: no room in the RX ring, no free chunk, or too long.
    set("rxDropped", st.rx_dropped + st.rx_ring_full);
    set("rxRingFull", st.rx_ring_full);
    set("rxFillEmpty", st.rx_fill_ring_empty_descs);
    set("rxKernelDropped", st.rx_dropped);
    set("rxInvalid", st.rx_invalid_descs);
    set("txInvalid", st.tx_invalid_descs);
    set("rxTooBig", rxTooBig_);
    set("txErrors", txErrors_);
    set("txKicks", kicks_);
    set("txKickBusy", kickBusy_);
    set("txKickErrors", kickErrors_);
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  int fd_ = -1, mapFd_ = -1, progFd_ = -1, linkFd_ = -1;
  int ifindex_ = 0, mtu_ = 0;
  uint8_t mac_[6] = {0, 0, 0, 0, 0, 0};
  unsigned queue_ = 0, frames_ = 4096, ringSize_ = 1024;
  bool zerocopy_ = false;
  const char* mode_ = "none";
  uint8_t* umem_ = nullptr;
  size_t umemLen_ = 0;
  Ring fill_, comp_, rx_, tx_;
  uint32_t fillProd_ = 0;
  std::vector<uint64_t> txFree_;
  char log_[4096] = {0};
  uint64_t rxFrames_ = 0, rxBytes_ = 0, txFrames_ = 0, txBytes_ = 0, txErrors_ = 0, rxTooBig_ = 0;
  uint64_t kicks_ = 0, kickBusy_ = 0, kickErrors_ = 0;
};

void InitXdp(Napi::Env env, Napi::Object exports) {
  exports.Set("Xdp", Xdp::Define(env));
}

}  // namespace tsvs
