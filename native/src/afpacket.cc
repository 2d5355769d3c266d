// AF_PACKET port family of the tsvs packet-I/O addon: TPACKET_V2 RX ring + vnet headers, sendmmsg TX.
//
// JS API (src/io/afpacket.ts wraps it):
//   new AfPacket(ifname, { ringFrames?, frameSize?, promisc?, qdiscBypass?, sndbuf?, fanout?, maxBurst?, txRing?, kernelDrop? })
//   .rxBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, max) -> count
//   .txBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count) -> accepted
//   .wait(timeoutMs) -> bool, .stats() -> object, .close(), and fd/ifindex/mac/mtu/maxFrame/frameSize/ringFrames.
//   .multicast(mac: Uint8Array, join: bool) -> errno (0 ok): PACKET_ADD/DROP_MEMBERSHIP, PACKET_MR_MULTICAST.
// Standalone, for ports whose own socket is not AF_PACKET (AF_XDP):
//   packetMcOpen() -> fd of a receive-less AF_PACKET socket (it only holds memberships), throws on failure
//   packetMcChange(fd, ifindex, mac, join) -> errno (0 ok); packetMcClose(fd)
// Every frame crossing this API starts with the 10-byte virtio_net_hdr (PACKET_VNET_HDR), so checksum
// and GSO state travel with it; GSO frames are up to 64 KB, hence the ring's frame size. TX goes out with
// PACKET_QDISC_BYPASS, except GSO frames the device must segment in software (dev_direct_xmit drops
// those), which take a second, qdisc-path socket. docs/io.md has the measurements behind each choice.
#include "common.h"
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

namespace tsvs {

// sizeof(struct virtio_net_hdr); linux/virtio_net.h does not compile as C++ here.
static constexpr unsigned kVnetLen = 10;
// Where the kernel puts the MAC header inside a V2 frame when the vnet header is on (tpacket_rcv):
// TPACKET_ALIGN(hdrlen + 16) + vnet_hdr_sz - 14 for a 14-byte link header.
static constexpr unsigned kV2HdrLen = TPACKET_ALIGN(sizeof(struct tpacket2_hdr)) + sizeof(struct sockaddr_ll);
static constexpr unsigned kNetOff = TPACKET_ALIGN(kV2HdrLen + 16) + kVnetLen;
// A GSO skb from a local TCP sender is at most 64 KB of IP packet plus the link header (veth's
// gso_max_size is 65536); 65536 + 128 leaves room for the ring's own header in front of it.
static constexpr unsigned kDefaultFrameSize = 65536 + 128;
static constexpr unsigned kBlockSize = 1u << 20;
// TX ring slots: 2 KB holds any wire-sized frame at MTU 1500 (GSO frames bypass the ring).
static constexpr unsigned kTxSlot = 2048;
// Frame data starts right after the V2 header in a TX slot (no PACKET_TX_HAS_OFF).
static constexpr unsigned kTxDataOff = TPACKET_ALIGN(sizeof(struct tpacket2_hdr));

// PACKET_ADD_MEMBERSHIP / PACKET_DROP_MEMBERSHIP of a link-layer multicast address; returns 0 or an errno.
static int PacketMcChange(int fd, int ifindex, const uint8_t* mac, bool join) {
  struct packet_mreq mr;
  std::memset(&mr, 0, sizeof mr);
  mr.mr_ifindex = ifindex;
  mr.mr_type = PACKET_MR_MULTICAST;
  mr.mr_alen = 6;
  std::memcpy(mr.mr_address, mac, 6);
  int r = setsockopt(fd, SOL_PACKET, join ? PACKET_ADD_MEMBERSHIP : PACKET_DROP_MEMBERSHIP, &mr, sizeof mr);
  return r < 0 ? errno : 0;
}

class AfPacket : public Napi::ObjectWrap<AfPacket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AfPacket",
                       {InstanceMethod<&AfPacket::RxBurst>("rxBurst"), InstanceMethod<&AfPacket::TxBurst>("txBurst"),
                        InstanceMethod<&AfPacket::Wait>("wait"), InstanceMethod<&AfPacket::Stats>("stats"),
                        InstanceMethod<&AfPacket::Close>("close"), InstanceMethod<&AfPacket::Multicast>("multicast")});
  }

  AfPacket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AfPacket>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) {
      ThrowIoError(env, "EINVAL", "AfPacket(ifname, opts)", 0);
      return;
    }
    std::string ifname = info[0].As<Napi::String>().Utf8Value();
    Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    auto num = [&](const char* k, double d) { return OptNumber(opts, k, d); };
    auto flag = [&](const char* k, bool d) { return OptBool(opts, k, d); };
    unsigned wantFrames = static_cast<unsigned>(num("ringFrames", 256));
    frameSize_ = static_cast<unsigned>(num("frameSize", kDefaultFrameSize));
    maxBurst_ = static_cast<unsigned>(num("maxBurst", 1024));
    if (wantFrames < 8 || wantFrames > 65536 || frameSize_ < 2048 || frameSize_ > kBlockSize ||
        frameSize_ % TPACKET_ALIGNMENT != 0 || maxBurst_ < 1 || maxBurst_ > 65536) {
      ThrowIoError(env, "EINVAL", "bad AfPacket options (ringFrames 8..65536, frameSize 2048..1M aligned 16)", 0);
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

    // Protocol 0 until bind: no frame is queued before the ring and options are in place.
    fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) {
      int e = errno;
      ThrowIoError(env, (e == EPERM || e == EACCES) ? "EPERM" : "ESETUP",
                   "AF_PACKET socket needs root or CAP_NET_RAW", e);
      return;
    }
    int one = 1;
    int v2 = TPACKET_V2;
    if (setsockopt(fd_, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2) < 0) { Fail(env, "PACKET_VERSION V2"); return; }
    // Must precede the ring: the kernel refuses PACKET_VNET_HDR once a ring exists.
    if (setsockopt(fd_, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) { Fail(env, "PACKET_VNET_HDR"); return; }

    unsigned perBlock = kBlockSize / frameSize_;
    unsigned blocks = (wantFrames + perBlock - 1) / perBlock;
    frameNr_ = blocks * perBlock;
    struct tpacket_req req;
    req.tp_block_size = kBlockSize;
    req.tp_block_nr = blocks;
    req.tp_frame_size = frameSize_;
    req.tp_frame_nr = frameNr_;
    if (setsockopt(fd_, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) { Fail(env, "PACKET_RX_RING"); return; }
    ringBytes_ = static_cast<size_t>(kBlockSize) * blocks;
    void* m = mmap(nullptr, ringBytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, 0);
    if (m == MAP_FAILED) { Fail(env, "mmap of the RX ring"); return; }
    ring_ = static_cast<uint8_t*>(m);
    perBlock_ = perBlock;

    // Slots smaller than a GSO frame: PACKET_COPY_THRESH has the kernel queue a frame that does not fit
    // to the socket as well (its slot says TP_STATUS_COPY), and RxBurst reads it whole with recv(). Small
    // slots keep the ring dense (a 60-byte frame no longer takes a page of its own); the receive buffer
    // must hold a few 64 KB skbs.
    copyBig_ = frameSize_ < kDefaultFrameSize;
    if (copyBig_) {
      if (setsockopt(fd_, SOL_PACKET, PACKET_COPY_THRESH, &one, sizeof one) < 0) { Fail(env, "PACKET_COPY_THRESH"); return; }
      int rcvbuf = static_cast<int>(num("rcvbuf", 8 << 20));
      if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
        setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }

    if (flag("qdiscBypass", true) &&
        setsockopt(fd_, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0)
      { Fail(env, "PACKET_QDISC_BYPASS"); return; }
    // Our own transmissions would otherwise come back through the tap on the same interface.
    if (setsockopt(fd_, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0)
      { Fail(env, "PACKET_IGNORE_OUTGOING"); return; }
    int sndbuf = static_cast<int>(num("sndbuf", 4 << 20));
    if (sndbuf > 0 && setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
      setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

    if (flag("promisc", false)) {
      struct packet_mreq mr;
      std::memset(&mr, 0, sizeof mr);
      mr.mr_ifindex = ifindex_;
      mr.mr_type = PACKET_MR_PROMISC;
      if (setsockopt(fd_, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
        { Fail(env, "PACKET_ADD_MEMBERSHIP promisc"); return; }
    }

    struct sockaddr_ll sll;
    std::memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex_;
    if (bind(fd_, reinterpret_cast<struct sockaddr*>(&sll), sizeof sll) < 0) {
      int e = errno;
      if (e == ENETDOWN) {
        Release();
        ThrowIoError(env, "ENETDOWN", "interface '" + ifname + "' is down", e);
        return;
      }
      { Fail(env, "bind to the interface"); return; }
    }
    // Several sockets (one per worker) may share an interface's load: fanout hashed on the flow.
    int fanout = static_cast<int>(num("fanout", -1));
    if (fanout >= 0) {
      int arg = (fanout & 0xffff) | (PACKET_FANOUT_HASH << 16);
      if (setsockopt(fd_, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) < 0) { Fail(env, "PACKET_FANOUT"); return; }
    }

    // A second, receive-less socket (protocol 0) for GSO frames the device cannot take directly.
    qfd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (qfd_ < 0 || setsockopt(qfd_, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) { Fail(env, "GSO socket"); return; }
    if (sndbuf > 0 && setsockopt(qfd_, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
      setsockopt(qfd_, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    sll.sll_protocol = 0;
    if (bind(qfd_, reinterpret_cast<struct sockaddr*>(&sll), sizeof sll) < 0) { Fail(env, "bind of the GSO socket"); return; }

    // Optional TX ring (txRing: true): small frames are copied into mmapped slots and sent with one
    // send() per run, instead of one skb copy per frame in sendmmsg. A separate socket keeps the RX
    // ring's layout simple; it binds with protocol 0 so it receives nothing.
    if (flag("txRing", false)) {
      tfd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (tfd_ < 0) { Fail(env, "TX ring socket"); return; }
      if (setsockopt(tfd_, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2) < 0) { Fail(env, "TX PACKET_VERSION"); return; }
      if (setsockopt(tfd_, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) { Fail(env, "TX PACKET_VNET_HDR"); return; }
      if (setsockopt(tfd_, SOL_PACKET, PACKET_LOSS, &one, sizeof one) < 0) { Fail(env, "TX PACKET_LOSS"); return; }
      struct tpacket_req treq;
      treq.tp_block_size = kBlockSize;
      treq.tp_block_nr = 1;
      treq.tp_frame_size = kTxSlot;
      treq.tp_frame_nr = kBlockSize / kTxSlot;
      if (setsockopt(tfd_, SOL_PACKET, PACKET_TX_RING, &treq, sizeof treq) < 0) { Fail(env, "PACKET_TX_RING"); return; }
      void* tm = mmap(nullptr, kBlockSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, tfd_, 0);
      if (tm == MAP_FAILED) { Fail(env, "mmap of the TX ring"); return; }
      txRing_ = static_cast<uint8_t*>(tm);
      txSlots_ = treq.tp_frame_nr;
      txSlotData_ = kTxSlot - kTxDataOff;
      if (flag("qdiscBypass", true) && setsockopt(tfd_, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0) { Fail(env, "TX PACKET_QDISC_BYPASS"); return; }
      if (bind(tfd_, reinterpret_cast<struct sockaddr*>(&sll), sizeof sll) < 0) { Fail(env, "bind of the TX ring socket"); return; }
    }

    // kernelDrop: a tcx ingress program that drops every frame, so the kernel's own stack never handles
    // what arrives on an interface the director owns (no ip_rcv work, no kernel forwarding of a frame
    // the director forwards too). Packet sockets are taps, served before tc ingress, so this ring still
    // sees every frame. Held by a BPF link fd: it goes away with the port, also when the process dies.
    // Not fatal when the kernel lacks tcx: kernelDrop reads false and kernelDropErrno says why.
    int dropErr = 0;
    if (flag("kernelDrop", false)) dropErr = AttachKernelDrop();

    msgs_.resize(maxBurst_);
    iovs_.resize(maxBurst_);
    std::memset(msgs_.data(), 0, sizeof(struct mmsghdr) * maxBurst_);
    for (unsigned i = 0; i < maxBurst_; i++) {
      msgs_[i].msg_hdr.msg_iov = &iovs_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
    }

    Napi::Object self = info.This().As<Napi::Object>();
    self.Set("fd", Napi::Number::New(env, fd_));
    self.Set("ifindex", Napi::Number::New(env, ifindex_));
    self.Set("mtu", Napi::Number::New(env, mtu_));
    self.Set("mac", Napi::Buffer<uint8_t>::Copy(env, mac_, 6));
    self.Set("frameSize", Napi::Number::New(env, frameSize_));
    self.Set("kernelDrop", Napi::Boolean::New(env, dropLinkFd_ >= 0));
    self.Set("kernelDropErrno", Napi::Number::New(env, dropErr));
    self.Set("ringFrames", Napi::Number::New(env, frameNr_));
    // Largest vnet header + frame delivered whole (through recv() beyond the slot when copyBig_); bigger
    // ones arrive truncated and are dropped.
    self.Set("maxFrame", Napi::Number::New(env, MaxFrame()));
    self.Set("copyBig", Napi::Boolean::New(env, copyBig_));
  }

  ~AfPacket() override { Release(); }

 private:
  void Fail(Napi::Env env, const char* what) {
    int e = errno;
    Release();
    ThrowIoError(env, (e == EPERM || e == EACCES) ? "EPERM" : "ESETUP", std::string("AF_PACKET set-up: ") + what, e);
  }

  // Loads `r0 = TCX_DROP; exit` and links it to the interface's tcx ingress; returns 0 or an errno.
  int AttachKernelDrop() {
    static constexpr uint32_t kTcxIngress = 46;  // BPF_TCX_INGRESS (Linux 6.6), newer than some uapi headers
    static constexpr int32_t kTcxDrop = 2;
    struct bpf_insn prog[2];
    std::memset(prog, 0, sizeof prog);
    prog[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = TCX_DROP
    prog[0].dst_reg = BPF_REG_0;
    prog[0].imm = kTcxDrop;
    prog[1].code = BPF_JMP | BPF_EXIT;
    static const char license[] = "GPL";
    union bpf_attr a;
    std::memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_SCHED_CLS;
    a.insn_cnt = 2;
    a.insns = reinterpret_cast<uint64_t>(prog);
    a.license = reinterpret_cast<uint64_t>(license);
    int pfd = static_cast<int>(Bpf(BPF_PROG_LOAD, &a));
    if (pfd < 0) return errno;
    std::memset(&a, 0, sizeof a);
    a.link_create.prog_fd = static_cast<uint32_t>(pfd);
    a.link_create.target_ifindex = static_cast<uint32_t>(ifindex_);
    a.link_create.attach_type = kTcxIngress;
    int lfd = static_cast<int>(Bpf(BPF_LINK_CREATE, &a));
    int e = errno;
    close(pfd);  // the link holds the program
    if (lfd < 0) return e;
    dropLinkFd_ = lfd;
    return 0;
  }

  void Release() {
    if (dropLinkFd_ >= 0) close(dropLinkFd_);
    dropLinkFd_ = -1;
    if (ring_) munmap(ring_, ringBytes_);
    ring_ = nullptr;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    if (qfd_ >= 0) close(qfd_);
    qfd_ = -1;
    if (txRing_) munmap(txRing_, kBlockSize);
    txRing_ = nullptr;
    if (tfd_ >= 0) close(tfd_);
    tfd_ = -1;
  }

  unsigned MaxFrame() const { return (copyBig_ ? kDefaultFrameSize : frameSize_) - (kNetOff - 14) + kVnetLen; }

  inline struct tpacket2_hdr* Frame(unsigned i) const {
    unsigned block = i / perBlock_, inBlock = i % perBlock_;
    return reinterpret_cast<struct tpacket2_hdr*>(ring_ + static_cast<size_t>(block) * kBlockSize +
                                                  static_cast<size_t>(inBlock) * frameSize_);
  }

  // Hot path: never throws for traffic; bad arguments are programming errors and read as 0 frames.
  Napi::Value RxBurst(const Napi::CallbackInfo& info) {
    napi_env env = info.Env();
    void *b, *o, *l;
    size_t blen, olen, llen;
    if (!ring_ || !TypedArrayData(env, info[0], napi_uint8_array, &b, &blen) ||
        !TypedArrayData(env, info[1], napi_uint32_array, &o, &olen) ||
        !TypedArrayData(env, info[2], napi_uint32_array, &l, &llen))
      return Napi::Number::New(env, 0);
    uint32_t max = info[3].As<Napi::Number>().Uint32Value();
    if (max > olen) max = olen;
    if (max > llen) max = llen;
    uint8_t* buf = static_cast<uint8_t*>(b);
    const uint32_t* offsets = static_cast<const uint32_t*>(o);
    uint32_t* lengths = static_cast<uint32_t*>(l);
    uint32_t n = 0;
    while (n < max) {
      struct tpacket2_hdr* h = Frame(rxHead_);
      uint32_t status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
      if (!(status & TP_STATUS_USER)) break;
      uint32_t snap = h->tp_snaplen;
      size_t flen = static_cast<size_t>(snap) + kVnetLen;
      if (status & TP_STATUS_COPY) {
        // The whole frame waits in the socket queue, in ring order: take it (or discard it) now.
        size_t room = blen > offsets[n] ? blen - offsets[n] : 0;
        if (room > MaxFrame()) room = MaxFrame();
        uint8_t sink[16];
        ssize_t r = room >= sizeof sink ? recv(fd_, buf + offsets[n], room, MSG_DONTWAIT | MSG_TRUNC)
                                        : recv(fd_, sink, sizeof sink, MSG_DONTWAIT | MSG_TRUNC);
        if (r > static_cast<ssize_t>(kVnetLen) && static_cast<size_t>(r) <= room) {
          lengths[n] = static_cast<uint32_t>(r);
          rxBytes_ += static_cast<uint64_t>(r);
          rxCopied_++;
          n++;
        } else {
          rxTruncated_++;
        }
      } else if (snap < h->tp_len || h->tp_mac < kVnetLen) {
        rxTruncated_++;  // larger than a ring frame: a GSO frame cut short is useless
      } else if (static_cast<size_t>(offsets[n]) + flen > blen) {
        rxTruncated_++;
      } else {
        std::memcpy(buf + offsets[n], reinterpret_cast<uint8_t*>(h) + h->tp_mac - kVnetLen, flen);
        lengths[n] = static_cast<uint32_t>(flen);
        rxBytes_ += flen;
        n++;
      }
      __atomic_store_n(&h->tp_status, static_cast<uint32_t>(TP_STATUS_KERNEL), __ATOMIC_RELEASE);
      if (++rxHead_ == frameNr_) rxHead_ = 0;
    }
    rxFrames_ += n;
    return Napi::Number::New(env, n);
  }

  Napi::Value TxBurst(const Napi::CallbackInfo& info) {
    napi_env env = info.Env();
    void *b, *o, *l;
    size_t blen, olen, llen;
    if (fd_ < 0 || !TypedArrayData(env, info[0], napi_uint8_array, &b, &blen) ||
        !TypedArrayData(env, info[1], napi_uint32_array, &o, &olen) ||
        !TypedArrayData(env, info[2], napi_uint32_array, &l, &llen))
      return Napi::Number::New(env, 0);
    uint32_t count = info[3].As<Napi::Number>().Uint32Value();
    if (count > olen) count = olen;
    if (count > llen) count = llen;
    uint8_t* buf = static_cast<uint8_t*>(b);
    const uint32_t* offsets = static_cast<const uint32_t*>(o);
    const uint32_t* lengths = static_cast<const uint32_t*>(l);
    uint32_t refused = 0;
    uint32_t i = 0;
    while (i < count) {
      // Gather one run of valid frames that take the same socket; iovecs point straight into the
      // caller's buffer (the kernel copies once, into the skb). Runs keep the burst's order.
      // Route: 0 = TX ring (small non-GSO frames, when enabled), 1 = sendmmsg on the bypass socket,
      // 2 = the qdisc socket (GSO frames once the device proved it cannot take them directly).
      unsigned m = 0;
      int route = -1;
      while (i < count && m < maxBurst_) {
        size_t off = offsets[i], len = lengths[i];
        if (len <= kVnetLen + 14 || off + len > blen) {
          refused++;
          i++;
          continue;
        }
        bool gso = buf[off + 1] != 0;
        int r = gso ? (gsoViaQdisc_ ? 2 : 1) : (txRing_ && len <= txSlotData_ ? 0 : 1);
        if (m > 0 && r != route) break;
        route = r;
        iovs_[m].iov_base = buf + off;
        iovs_[m].iov_len = len;
        m++;
        i++;
      }
      if (m == 0) break;
      unsigned r = route == 0 ? SendRing(m) : SendRun(route == 2 ? qfd_ : fd_, m);
      if (route == 2) txGsoFallback_ += m - r;
      refused += r;
    }
    txErrors_ += refused;
    txFrames_ += count - refused;
    return Napi::Number::New(env, count - refused);
  }

  // Copies frames iovs_[0..m) into the TX ring and kicks the kernel once; returns frames refused
  // because their slot was still in flight (the ring is full).
  unsigned SendRing(unsigned m) {
    unsigned refused = 0;
    for (unsigned k = 0; k < m; k++) {
      uint8_t* slot = txRing_ + static_cast<size_t>(txHead_) * kTxSlot;
      struct tpacket2_hdr* h = reinterpret_cast<struct tpacket2_hdr*>(slot);
      uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
      if (st != TP_STATUS_AVAILABLE && !(st & TP_STATUS_WRONG_FORMAT)) {
        refused++;
        continue;
      }
      std::memcpy(slot + kTxDataOff, iovs_[k].iov_base, iovs_[k].iov_len);
      h->tp_len = static_cast<uint32_t>(iovs_[k].iov_len);
      __atomic_store_n(&h->tp_status, static_cast<uint32_t>(TP_STATUS_SEND_REQUEST), __ATOMIC_RELEASE);
      txBytes_ += iovs_[k].iov_len;
      if (++txHead_ == txSlots_) txHead_ = 0;
    }
    if (refused < m) {
      while (send(tfd_, nullptr, 0, MSG_DONTWAIT) < 0 && errno == EINTR) {
      }
    }
    return refused;
  }

  // Sends msgs_[0..m) on fd; returns how many frames were refused. A GSO frame refused by the bypass
  // socket is retried once through the qdisc socket: dev_direct_xmit (PACKET_QDISC_BYPASS) drops any
  // skb that validate_xmit_skb had to segment in software, which happens as soon as the egress device
  // lacks TSO or checksum offload (ethtool -K DEV tx off). From then on GSO frames take the qdisc path.
  unsigned SendRun(int fd, unsigned m) {
    unsigned done = 0, refused = 0;
    bool retried = false;
    while (done < m) {
      int r = sendmmsg(fd, msgs_.data() + done, m - done, MSG_DONTWAIT);
      if (r > 0) {
        for (int k = 0; k < r; k++) txBytes_ += iovs_[done + k].iov_len;
        done += r;
        continue;
      }
      int e = errno;
      if (e == EINTR) continue;
      const uint8_t* frame = static_cast<const uint8_t*>(iovs_[done].iov_base);
      if (fd == fd_ && qfd_ >= 0 && frame[1] != 0) {
        struct msghdr one;
        std::memset(&one, 0, sizeof one);
        one.msg_iov = &iovs_[done];
        one.msg_iovlen = 1;
        if (sendmsg(qfd_, &one, MSG_DONTWAIT) >= 0) {
          if (!gsoViaQdisc_) gsoViaQdisc_ = true;
          txGsoFallback_++;
          txBytes_ += iovs_[done].iov_len;
          done++;
          continue;
        }
      }
      if ((e == EAGAIN || e == ENOBUFS) && !retried) {
        // Send buffer full: give the device one short moment, then drop what still does not fit.
        struct pollfd p = {fd, POLLOUT, 0};
        poll(&p, 1, 1);
        retried = true;
        continue;
      }
      refused++;  // bad vnet header, too large, no buffer: skip this frame
      done++;
    }
    return refused;
  }

  Napi::Value Wait(const Napi::CallbackInfo& info) {
    int timeout = info.Length() > 0 ? info[0].As<Napi::Number>().Int32Value() : 0;
    if (!ring_) return Napi::Boolean::New(info.Env(), false);
    // The ring may already hold frames the kernel signalled earlier: check before sleeping.
    if (__atomic_load_n(&Frame(rxHead_)->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)
      return Napi::Boolean::New(info.Env(), true);
    return Napi::Boolean::New(info.Env(), PollReadable(fd_, timeout));
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ >= 0) {
      struct tpacket_stats st;
      socklen_t len = sizeof st;
      // The kernel resets these counters on every read, so they are accumulated here.
      if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
        kernelPackets_ += st.tp_packets;
        kernelDrops_ += st.tp_drops;
      }
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("rxFrames", Napi::Number::New(env, static_cast<double>(rxFrames_)));
    o.Set("rxBytes", Napi::Number::New(env, static_cast<double>(rxBytes_)));
    o.Set("txFrames", Napi::Number::New(env, static_cast<double>(txFrames_)));
    o.Set("txBytes", Napi::Number::New(env, static_cast<double>(txBytes_)));
    o.Set("rxDropped", Napi::Number::New(env, static_cast<double>(kernelDrops_)));
    o.Set("rxTruncated", Napi::Number::New(env, static_cast<double>(rxTruncated_)));
    o.Set("rxCopied", Napi::Number::New(env, static_cast<double>(rxCopied_)));
    o.Set("txErrors", Napi::Number::New(env, static_cast<double>(txErrors_)));
    o.Set("txGsoViaQdisc", Napi::Number::New(env, static_cast<double>(txGsoFallback_)));
    o.Set("kernelPackets", Napi::Number::New(env, static_cast<double>(kernelPackets_)));
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  // Joins or leaves a link-layer multicast address on the interface, so a NIC's filter passes frames
  // for it (an IPv4 group's 01:00:5e:...). The kernel counts joins per socket and drops what is left
  // when the socket closes.
  Napi::Value Multicast(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return Napi::Number::New(env, EBADF);
    void* data = nullptr;
    size_t len = 0;
    if (info.Length() < 2 || !TypedArrayData(env, info[0], napi_uint8_array, &data, &len) || len != 6)
      return Napi::Number::New(env, EINVAL);
    return Napi::Number::New(env, PacketMcChange(fd_, ifindex_, static_cast<const uint8_t*>(data), info[1].ToBoolean()));
  }


  int fd_ = -1;
  int qfd_ = -1;
  int tfd_ = -1;
  int dropLinkFd_ = -1;  // tcx link of the kernelDrop program
  uint8_t* txRing_ = nullptr;
  unsigned txSlots_ = 0, txHead_ = 0, txSlotData_ = 0;
  bool gsoViaQdisc_ = false;
  uint64_t txGsoFallback_ = 0;
  int ifindex_ = 0;
  int mtu_ = 0;
  uint8_t mac_[6] = {0, 0, 0, 0, 0, 0};
  uint8_t* ring_ = nullptr;
  size_t ringBytes_ = 0;
  unsigned frameSize_ = kDefaultFrameSize, frameNr_ = 0, perBlock_ = 1, rxHead_ = 0, maxBurst_ = 1024;
  std::vector<struct mmsghdr> msgs_;
  std::vector<struct iovec> iovs_;
  uint64_t rxFrames_ = 0, rxBytes_ = 0, txFrames_ = 0, txBytes_ = 0, txErrors_ = 0;
  uint64_t rxTruncated_ = 0, rxCopied_ = 0, kernelDrops_ = 0, kernelPackets_ = 0;
  bool copyBig_ = false;
};

static Napi::Value PacketMcOpen(const Napi::CallbackInfo& info) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    int e = errno;
    return ThrowIoError(info.Env(), (e == EPERM || e == EACCES) ? "EPERM" : "ESETUP", "AF_PACKET membership socket", e);
  }
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Value PacketMcChangeJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* data = nullptr;
  size_t len = 0;
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() ||
      !TypedArrayData(env, info[2], napi_uint8_array, &data, &len) || len != 6)
    return Napi::Number::New(env, EINVAL);
  return Napi::Number::New(env, PacketMcChange(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(),
                                                         static_cast<const uint8_t*>(data), info[3].ToBoolean()));
}

static Napi::Value PacketMcClose(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsNumber()) {
    int fd = info[0].As<Napi::Number>().Int32Value();
    if (fd >= 0) close(fd);
  }
  return info.Env().Undefined();
}

void InitAfPacket(Napi::Env env, Napi::Object exports) {
  exports.Set("AfPacket", AfPacket::Define(env));
  exports.Set("packetMcOpen", Napi::Function::New(env, PacketMcOpen, "packetMcOpen"));
  exports.Set("packetMcChange", Napi::Function::New(env, PacketMcChangeJs, "packetMcChange"));
  exports.Set("packetMcClose", Napi::Function::New(env, PacketMcClose, "packetMcClose"));
}

}  // namespace tsvs
