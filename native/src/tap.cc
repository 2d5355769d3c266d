// TAP and macvtap port family of the tsvs packet-I/O addon: open with a virtio-net header and offloads, bursts, poll.
#include "common.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <linux/sockios.h>
#include <net/if_arp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace tsvs {

namespace {

// The only header size the data plane understands (src/io/port.ts VNET_HDR_LEN).
constexpr int kVnetHdrLen = 10;
// Large enough that 64 KB GSO writes never meet EAGAIN for want of socket buffer (macvtap's default
// is small; TAP fds already report INT_MAX).
constexpr int kSndBuf = 0x7fffffff;

// Counter slots shared with src/io/tap.ts (a Float64Array the native side bumps).
enum Stat { kRxFrames = 0, kRxBytes, kTxFrames, kTxBytes, kRxDropped, kTxErrors, kTxAgain, kStatCount };

// errno -> the addon's error codes.
const char* CodeOf(int err) {
  switch (err) {
    case EPERM:
    case EACCES:
      return "EPERM";
    case ENODEV:
    case ENOENT:
    case ENXIO:
      return "ENODEV";
    case ENETDOWN:
      return "ENETDOWN";
    case EINVAL:
      return "EINVAL";
    default:
      return "ESETUP";
  }
}

Napi::Value Fail(Napi::Env env, const std::string& what, int err) {
  return ThrowIoError(env, CodeOf(err), what, err);
}

bool ValidIfname(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) return false;
  for (char c : name) {
    if (c == '/' || c == '\0' || c == ' ') return false;
  }
  return name != "." && name != "..";
}

// One AF_INET datagram socket for interface ioctls (any family works; INET always exists).
int CtlSocket() { return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); }

// Sets the header size and the offloads explicitly: a persistent TAP keeps both across opens, so a
// previous owner's values would otherwise leak in. Returns 0 or an errno; `what` names the failed step.
int ConfigureVnet(int fd, unsigned offloads, bool setSndbuf, const char** what) {
  int sz = kVnetHdrLen;
  if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
    *what = "TUNSETVNETHDRSZ";
    return errno;
  }
  int back = 0;
  if (ioctl(fd, TUNGETVNETHDRSZ, &back) < 0) {
    *what = "TUNGETVNETHDRSZ";
    return errno;
  }
  if (back != kVnetHdrLen) {
    *what = "vnet header size read back differs from 10";
    return EINVAL;
  }
  if (ioctl(fd, TUNSETOFFLOAD, static_cast<unsigned long>(offloads)) < 0) {
    *what = "TUNSETOFFLOAD";
    return errno;
  }
  if (setSndbuf) {
    int sb = kSndBuf;
    if (ioctl(fd, TUNSETSNDBUF, &sb) < 0) {
      *what = "TUNSETSNDBUF";
      return errno;
    }
  }
  return 0;
}

unsigned OffloadsFrom(const Napi::Value& v) {
  // TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6|TUN_F_TSO_ECN unless told otherwise; TSO without CSUM is EINVAL.
  if (!v.IsNumber()) return TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
  return v.As<Napi::Number>().Uint32Value();
}

// tapOpen(name: string, offloads?: number) -> fd. Creates the TAP (not persistent) when absent.
Napi::Value TapOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowIoError(env, "EINVAL", "tapOpen(name, offloads?)", 0);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (!ValidIfname(name)) return ThrowIoError(env, "EINVAL", "bad interface name '" + name + "'", 0);
  unsigned offloads = OffloadsFrom(info.Length() > 1 ? info[1] : env.Undefined());

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Fail(env, "open /dev/net/tun", errno);
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    // EBUSY: another fd holds it; EINVAL: the name is a TUN or the flags differ from a persistent device's.
    return ThrowIoError(env, e == EPERM ? "EPERM" : "ESETUP", "TUNSETIFF " + name, e);
  }
  const char* what = "";
  int e = ConfigureVnet(fd, offloads, true, &what);
  if (e != 0) {
    close(fd);
    return Fail(env, std::string(what) + " on " + name, e);
  }
  return Napi::Number::New(env, fd);
}

bool ReadSmallFile(const std::string& path, std::string* out, int* err) {
  FILE* f = std::fopen(path.c_str(), "re");
  if (!f) {
    *err = errno;
    return false;
  }
  char buf[128];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  *out = buf;
  while (!out->empty() && (out->back() == '\n' || out->back() == ' ')) out->pop_back();
  return true;
}

// macvtapOpen(name: string, offloads?: number) -> fd. The char device is found through the current
// namespace's sysfs (devtmpfs names nodes by a namespace-local ifindex, so /dev/tapN can belong to
// another namespace); a node is made in a private directory, opened and removed at once.
Napi::Value MacvtapOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowIoError(env, "EINVAL", "macvtapOpen(name, offloads?)", 0);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (!ValidIfname(name)) return ThrowIoError(env, "EINVAL", "bad interface name '" + name + "'", 0);
  unsigned offloads = OffloadsFrom(info.Length() > 1 ? info[1] : env.Undefined());

  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) return ThrowIoError(env, "ENODEV", "no interface " + name + " in this namespace", errno);
  std::string s;
  int err = 0;
  std::string base = "/sys/class/net/" + name;
  if (!ReadSmallFile(base + "/ifindex", &s, &err)) return ThrowIoError(env, "ENODEV", base + "/ifindex", err);
  if (static_cast<unsigned>(std::strtoul(s.c_str(), nullptr, 10)) != idx) {
    return ThrowIoError(env, "ESETUP",
                        "/sys belongs to another network namespace (ifindex of " + name +
                            " differs); run inside the namespace with its own sysfs (ip netns exec)",
                        0);
  }
  std::string devPath = base + "/macvtap/tap" + std::to_string(idx) + "/dev";
  if (!ReadSmallFile(devPath, &s, &err)) {
    return ThrowIoError(env, "ENODEV", name + " is not a macvtap interface (" + devPath + ")", err);
  }
  unsigned maj = 0, min = 0;
  if (std::sscanf(s.c_str(), "%u:%u", &maj, &min) != 2) return ThrowIoError(env, "ESETUP", "bad " + devPath + ": " + s, 0);

  // A private directory: only root can reach the node during its short life. /tmp first; devtmpfs as a
  // fallback for systems whose /tmp is mounted nodev.
  const char* tmpdir = std::getenv("TMPDIR");
  std::string candidates[] = {tmpdir ? tmpdir : "/tmp", "/tmp", "/dev"};
  int fd = -1;
  int lastErr = 0;
  std::string lastStep;
  for (const std::string& dirBase : candidates) {
    std::string tmpl = dirBase + "/tsvs-macvtap-XXXXXX";
    char dir[256];
    if (tmpl.size() >= sizeof dir) continue;
    std::strcpy(dir, tmpl.c_str());
    if (!mkdtemp(dir)) {
      lastErr = errno;
      lastStep = "mkdtemp " + tmpl;
      continue;
    }
    std::string node = std::string(dir) + "/tap" + std::to_string(idx);
    if (mknod(node.c_str(), S_IFCHR | 0600, makedev(maj, min)) < 0) {
      lastErr = errno;
      lastStep = "mknod " + node;
      rmdir(dir);
      continue;
    }
    fd = open(node.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      lastErr = errno;
      lastStep = "open " + node;
    }
    unlink(node.c_str());
    rmdir(dir);
    if (fd >= 0) break;
  }
  if (fd < 0) return Fail(env, lastStep, lastErr);

  // The macvtap fd starts with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR; check rather than trust.
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  if (ioctl(fd, TUNGETIFF, &ifr) < 0 || !(ifr.ifr_flags & IFF_VNET_HDR)) {
    std::memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
      int e = errno;
      close(fd);
      return Fail(env, "TUNSETIFF (vnet header) on " + name, e);
    }
  }
  const char* what = "";
  int e = ConfigureVnet(fd, offloads, true, &what);
  if (e != 0) {
    close(fd);
    return Fail(env, std::string(what) + " on " + name, e);
  }
  return Napi::Number::New(env, fd);
}

// tapRxBurst(fd, buf, offsets, lengths, max, slot, stats) -> count. One read() per frame (a TAP fd
// hands out one frame per read); stops at the first EAGAIN. A slot that would run past the buffer is
// shortened to the buffer's end, never overrun.
Napi::Value TapRxBurst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Burst b;
  if (!UnpackBurst(info, &b, kStatCount)) return ThrowIoError(env, "EINVAL", "tapRxBurst(fd, buf, offsets, lengths, max, slot, stats)", 0);
  uint32_t got = 0;
  double bytes = 0;
  while (got < b.n) {
    size_t off = b.offsets[got];
    if (off >= b.bufLen) break;
    size_t room = b.bufLen - off;
    if (room > b.slot) room = b.slot;
    ssize_t r = read(b.fd, b.buf + off, room);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN: drained; anything else (device gone) shows up again at poll time
    }
    if (r == 0) break;
    if (r < kVnetHdrLen) continue;  // cannot happen with a vnet header on; not a frame
    b.lengths[got++] = static_cast<uint32_t>(r);
    bytes += static_cast<double>(r - kVnetHdrLen);
  }
  b.stats[kRxFrames] += got;
  b.stats[kRxBytes] += bytes;
  return Napi::Number::New(env, got);
}

// tapTxBurst(fd, buf, offsets, lengths, count, _unused, stats) -> accepted. One write() per frame
// (the TAP/macvtap write path takes one skb per call; writev would still be one frame per call).
// EAGAIN (macvtap socket buffer full) waits up to 1 ms for room once per burst, then drops and counts.
Napi::Value TapTxBurst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Burst b;
  if (!UnpackBurst(info, &b, kStatCount)) return ThrowIoError(env, "EINVAL", "tapTxBurst(fd, buf, offsets, lengths, count, 0, stats)", 0);
  uint32_t sent = 0;
  double bytes = 0;
  bool waited = false;
  for (uint32_t i = 0; i < b.n; i++) {
    size_t off = b.offsets[i];
    size_t len = b.lengths[i];
    if (len < kVnetHdrLen || off > b.bufLen || len > b.bufLen - off) {
      b.stats[kTxErrors] += 1;
      continue;
    }
    for (;;) {
      ssize_t w = write(b.fd, b.buf + off, len);
      if (w >= 0) {
        sent++;
        bytes += static_cast<double>(len - kVnetHdrLen);
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN && !waited) {
        waited = true;
        b.stats[kTxAgain] += 1;
        struct pollfd p = {b.fd, POLLOUT, 0};
        if (poll(&p, 1, 1) > 0 && (p.revents & POLLOUT)) continue;
      } else if (errno == EAGAIN) {
        b.stats[kTxAgain] += 1;
      }
      b.stats[kTxErrors] += 1;
      break;
    }
  }
  b.stats[kTxFrames] += sent;
  b.stats[kTxBytes] += bytes;
  return Napi::Number::New(env, sent);
}

// tapClose(fd): closes; a TAP this fd created (not persistent) disappears with it.
Napi::Value TapClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowIoError(env, "EINVAL", "tapClose(fd)", 0);
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd >= 0) close(fd);
  return env.Undefined();
}

// tapIfInfo(name) -> { ifindex, mac: Buffer(6), mtu, up, running } for any interface of this namespace.
Napi::Value IfInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowIoError(env, "EINVAL", "tapIfInfo(name)", 0);
  IfInfo ii;
  if (!GetIfInfo(env, info[0].As<Napi::String>().Utf8Value(), &ii)) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("ifindex", Napi::Number::New(env, ii.ifindex));
  o.Set("mac", Napi::Buffer<uint8_t>::Copy(env, ii.mac, 6));
  o.Set("mtu", Napi::Number::New(env, ii.mtu));
  o.Set("up", Napi::Boolean::New(env, (ii.flags & IFF_UP) != 0));
  o.Set("running", Napi::Boolean::New(env, (ii.flags & IFF_RUNNING) != 0));
  return o;
}

// ifSetUp(name, up: boolean): SIOCSIFFLAGS, so opening a port needs no `ip` process.
Napi::Value IfSetUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsBoolean()) return ThrowIoError(env, "EINVAL", "ifSetUp(name, up)", 0);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (!ValidIfname(name)) return ThrowIoError(env, "EINVAL", "bad interface name '" + name + "'", 0);
  int s = CtlSocket();
  if (s < 0) return Fail(env, "socket", errno);
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
    int e = errno;
    close(s);
    return Fail(env, "SIOCGIFFLAGS " + name, e);
  }
  if (info[1].As<Napi::Boolean>().Value()) ifr.ifr_flags |= IFF_UP;
  else ifr.ifr_flags &= ~IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
    int e = errno;
    close(s);
    return Fail(env, "SIOCSIFFLAGS " + name, e);
  }
  close(s);
  return env.Undefined();
}

// bridgeAddIf(bridge, name): makes `name` a port of `bridge` (SIOCBRADDIF), for the bridged-TAP set-up.
Napi::Value BridgeAddIf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) return ThrowIoError(env, "EINVAL", "bridgeAddIf(bridge, name)", 0);
  std::string br = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  if (!ValidIfname(br) || !ValidIfname(name)) return ThrowIoError(env, "EINVAL", "bad interface name", 0);
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) return ThrowIoError(env, "ENODEV", "no interface " + name, errno);
  int s = CtlSocket();
  if (s < 0) return Fail(env, "socket", errno);
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  std::strncpy(ifr.ifr_name, br.c_str(), IFNAMSIZ - 1);
  ifr.ifr_ifindex = static_cast<int>(idx);
  if (ioctl(s, SIOCBRADDIF, &ifr) < 0) {
    int e = errno;
    close(s);
    return Fail(env, "SIOCBRADDIF " + br + " " + name, e);
  }
  close(s);
  return env.Undefined();
}

}  // namespace

void InitTap(Napi::Env env, Napi::Object exports) {
  exports.Set("tapOpen", Napi::Function::New(env, TapOpen, "tapOpen"));
  exports.Set("macvtapOpen", Napi::Function::New(env, MacvtapOpen, "macvtapOpen"));
  exports.Set("tapRxBurst", Napi::Function::New(env, TapRxBurst, "tapRxBurst"));
  exports.Set("tapTxBurst", Napi::Function::New(env, TapTxBurst, "tapTxBurst"));
  exports.Set("tapClose", Napi::Function::New(env, TapClose, "tapClose"));
  exports.Set("tapIfInfo", Napi::Function::New(env, IfInfoJs, "tapIfInfo"));
  exports.Set("tapIfSetUp", Napi::Function::New(env, IfSetUp, "tapIfSetUp"));
  exports.Set("tapBridgeAddIf", Napi::Function::New(env, BridgeAddIf, "tapBridgeAddIf"));
  exports.Set("TAP_STAT_COUNT", Napi::Number::New(env, kStatCount));
}

}  // namespace tsvs
