// Raw IPIP socket and TUN calls of the tsvs packet-I/O addon, for the real-server-side IPIP decapsulator.
#include "common.h"

#include <cerrno>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace tsvs {

namespace {

// Counter slots shared with src/io/ipip.ts (a Float64Array the native side bumps).
enum Stat { kRxPackets = 0, kRxBytes, kTxPackets, kTxBytes, kTxErrors, kRxTruncated, kStatCount };

// recvmmsg batch ceiling: the arrays live on the stack, so no allocation per call.
constexpr uint32_t kMaxBatch = 256;

const char* CodeOf(int err) {
  switch (err) {
    case EPERM:
    case EACCES:
      return "EPERM";
    case ENODEV:
    case ENOENT:
    case ENXIO:
      return "ENODEV";
    case EINVAL:
      return "EINVAL";
    default:
      return "ESETUP";
  }
}

// ipipRawOpen(rcvbuf?: number) -> fd. AF_INET/SOCK_RAW/IPPROTO_IPIP: IPv4 raw sockets hand over whole
// datagrams, outer header included, after the kernel has verified and reassembled them; and with a raw
// socket listening the kernel sends no protocol-unreachable for protocol 4.
Napi::Value IpipRawOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_IPIP);
  if (fd < 0) {
    int e = errno;
    return ThrowIoError(env, CodeOf(e), "socket(AF_INET, SOCK_RAW, IPPROTO_IPIP)", e);
  }
  if (info.Length() > 0 && info[0].IsNumber()) {
    int rb = info[0].As<Napi::Number>().Int32Value();
    // FORCE lifts the rmem_max cap (we are root); plain SO_RCVBUF as the fallback.
    if (rb > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof rb) < 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
    }
  }
  return Napi::Number::New(env, fd);
}

// tunOpen(name) -> fd. IFF_TUN|IFF_NO_PI: each write is one bare IP packet, delivered as if received on
// the TUN interface. Creates the TUN (not persistent) when absent.
Napi::Value TunOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowIoError(env, "EINVAL", "tunOpen(name, vnetHdr?)", 0);
  const bool vnet = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() >= IFNAMSIZ || name.find('/') != std::string::npos) {
    return ThrowIoError(env, "EINVAL", "bad interface name '" + name + "'", 0);
  }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return ThrowIoError(env, CodeOf(e), "open /dev/net/tun", e);
  }
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    return ThrowIoError(env, e == EPERM ? "EPERM" : "ESETUP", "TUNSETIFF " + name, e);
  }
  return Napi::Number::New(env, fd);
}

// ipipRecvBurst(fd, buf, offsets, lengths, max, slot, stats) -> count. One recvmmsg per up to 256
// packets; each lands at offsets[i] (whole IPv4 packet, outer header first). A packet longer than its
// slot is truncated by the kernel (MSG_TRUNC) and reported with length 0 so the caller drops it.
Napi::Value IpipRecvBurst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Burst b;
  if (!UnpackBurst(info, &b, kStatCount)) return ThrowIoError(env, "EINVAL", "ipipRecvBurst(fd, buf, offsets, lengths, max, slot, stats)", 0);
  if (b.n > kMaxBatch) b.n = kMaxBatch;
  struct mmsghdr msgs[kMaxBatch];
  struct iovec iov[kMaxBatch];
  uint32_t k = 0;
  for (; k < b.n; k++) {
    size_t off = b.offsets[k];
    if (off >= b.bufLen) break;
    size_t room = b.bufLen - off;
    if (room > b.slot) room = b.slot;
    iov[k].iov_base = b.buf + off;
    iov[k].iov_len = room;
    std::memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
    msgs[k].msg_hdr.msg_iov = &iov[k];
    msgs[k].msg_hdr.msg_iovlen = 1;
    msgs[k].msg_len = 0;
  }
  if (k == 0) return Napi::Number::New(env, 0);
  int r;
  do {
    r = recvmmsg(b.fd, msgs, k, MSG_DONTWAIT, nullptr);
  } while (r < 0 && errno == EINTR);
  if (r <= 0) return Napi::Number::New(env, 0);
  double bytes = 0;
  for (int i = 0; i < r; i++) {
    if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
      b.lengths[i] = 0;
      b.stats[kRxTruncated] += 1;
    } else {
      b.lengths[i] = msgs[i].msg_len;
      bytes += msgs[i].msg_len;
    }
  }
  b.stats[kRxPackets] += r;
  b.stats[kRxBytes] += bytes;
  return Napi::Number::New(env, r);
}

// tunWriteBurst(fd, buf, offsets, lengths, count, 0, stats) -> written. One write() per IP packet (the
// TUN write path takes one packet per call). Zero-length entries are skipped silently: the caller marks
// dropped packets that way. Failures are counted, never thrown.
Napi::Value TunWriteBurst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Burst b;
  if (!UnpackBurst(info, &b, kStatCount)) return ThrowIoError(env, "EINVAL", "tunWriteBurst(fd, buf, offsets, lengths, count, 0, stats)", 0);
  uint32_t sent = 0;
  double bytes = 0;
  for (uint32_t i = 0; i < b.n; i++) {
    size_t off = b.offsets[i];
    size_t len = b.lengths[i];
    if (len == 0) continue;
    if (off > b.bufLen || len > b.bufLen - off) {
      b.stats[kTxErrors] += 1;
      continue;
    }
    ssize_t w;
    do {
      w = write(b.fd, b.buf + off, len);
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
      b.stats[kTxErrors] += 1;
      continue;
    }
    sent++;
    bytes += static_cast<double>(len);
  }
  b.stats[kTxPackets] += sent;
  b.stats[kTxBytes] += bytes;
  return Napi::Number::New(env, sent);
}

// ipipSend(fd, buf, offset, length, dst: number) -> bool. Sends one inner IPv4 packet to `dst` (host
// order) through the raw socket; the kernel adds the outer header (protocol 4, source by route). Used by
// tests and tools that play the encapsulating side without the kernel's ipip module. Errors -> false.
Napi::Value IpipSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* p;
  size_t len;
  if (info.Length() < 5 || !info[0].IsNumber() || !TypedArrayData(env, info[1], napi_uint8_array, &p, &len) ||
      !info[2].IsNumber() || !info[3].IsNumber() || !info[4].IsNumber()) {
    return ThrowIoError(env, "EINVAL", "ipipSend(fd, buf, offset, length, dst)", 0);
  }
  size_t off = info[2].As<Napi::Number>().Uint32Value();
  size_t n = info[3].As<Napi::Number>().Uint32Value();
  if (off > len || n > len - off) return ThrowIoError(env, "EINVAL", "ipipSend: range outside the buffer", 0);
  struct sockaddr_in sin;
  std::memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(info[4].As<Napi::Number>().Uint32Value());
  ssize_t w;
  do {
    w = sendto(info[0].As<Napi::Number>().Int32Value(), static_cast<uint8_t*>(p) + off, n, 0,
               reinterpret_cast<struct sockaddr*>(&sin), sizeof sin);
  } while (w < 0 && errno == EINTR);
  return Napi::Boolean::New(env, w == static_cast<ssize_t>(n));
}

// ipipClose(fd): closes a raw socket or TUN fd; a TUN this fd created disappears with it.
Napi::Value IpipClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowIoError(env, "EINVAL", "ipipClose(fd)", 0);
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd >= 0) close(fd);
  return env.Undefined();
}

}  // namespace

void InitIpip(Napi::Env env, Napi::Object exports) {
  exports.Set("ipipRawOpen", Napi::Function::New(env, IpipRawOpen, "ipipRawOpen"));
  exports.Set("ipipRecvBurst", Napi::Function::New(env, IpipRecvBurst, "ipipRecvBurst"));
  exports.Set("tunOpen", Napi::Function::New(env, TunOpen, "tunOpen"));
  exports.Set("tunWriteBurst", Napi::Function::New(env, TunWriteBurst, "tunWriteBurst"));
  exports.Set("ipipSend", Napi::Function::New(env, IpipSend, "ipipSend"));
  exports.Set("ipipClose", Napi::Function::New(env, IpipClose, "ipipClose"));
  exports.Set("IPIP_STAT_COUNT", Napi::Number::New(env, kStatCount));
}

}  // namespace tsvs
