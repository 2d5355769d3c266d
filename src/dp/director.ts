// The director's packet path: PREROUTING → INPUT (ipvs) / FORWARD (NAT replies) → POSTROUTING, per burst.
import type { Port } from '../io/port.ts';
import { VNET_HDR_LEN } from '../io/port.ts';
import { ParsedFrame, parseFrame, Verdict, PF, VERDICT_COUNT } from '../packet/parse.ts';
import { copyMac, macEquals, macIsBroadcast, writeEthHeader, ETH_P } from '../packet/ethernet.ts';
import { ipv4DecTtl, writeIpv4Header } from '../packet/ipv4.ts';
import { buildFragNeeded, buildTimeExceeded, buildPortUnreachable, icmpErrorAllowed } from '../packet/icmp.ts';
import { readU32, writeU32, icmpSetChecksum, ipv4SetChecksum } from '../packet/checksum.ts';
import { RouteTable } from '../stack/route.ts';
import { NeighbourCache } from '../stack/neigh.ts';
import { Hook, Tracer, TraceVerdict } from '../stack/hooks.ts';
import { Drop, DROP_COUNT } from './drops.ts';

/** True for an IPv4 multicast destination MAC (01:00:5e, top bit of the 4th byte clear). */
function isIpv4MulticastMac(buf: Uint8Array, eth: number): boolean {
  return buf[eth] === 0x01 && buf[eth + 1] === 0x00 && buf[eth + 2] === 0x5e && (buf[eth + 3]! & 0x80) === 0;
}

/** The Ethernet address of IPv4 group `g` (RFC 1112: 01:00:5e and its low 23 bits). */
export function groupMac(g: number): Uint8Array {
  return Uint8Array.of(0x01, 0x00, 0x5e, (g >>> 16) & 0x7f, (g >>> 8) & 0xff, g & 0xff);
}

/** Bytes kept free before each received frame so IPIP encapsulation can grow it in place. */
export const HEADROOM = 64;
/** Frames read per port per burst. */
export const DEFAULT_BURST = 64;
const SCRATCH_SLOTS = 64;
const ARP_FRAME = 42;
const ZERO_MAC = new Uint8Array(6);
/** ICMP errors the director sends: at most this many per second, in bursts of at most ICMP_BURST (the kernel's defaults). */
const ICMP_PER_SEC = 1000;
const ICMP_BURST = 50;

/** One of the director's own addresses. */
export interface LocalAddress {
  addr: number;
  prefix: number;
  port: number;
}

/**
 * What the director asks of ipvs for TCP/UDP frames. `input` handles a frame to a local address
 * (client → VIP), `forward` a frame to someone else (a NAT reply RS → client). Both rewrite the
 * frame in place and return the next hop to send to, or a negative Drop reason, or NOT_MINE.
 */
export interface IpvsHook {
  input(buf: Uint8Array, p: ParsedFrame, now: number, out: XmitResult): number;
  forward(buf: Uint8Array, p: ParsedFrame, now: number, out: XmitResult): number;
  icmpError(buf: Uint8Array, p: ParsedFrame, now: number, out: XmitResult, local: boolean): number;
  tick(now: number): void;
}

/**
 * A protocol the director itself speaks (VRRP, IPVS connection sync): the IPv4 datagrams it takes for
 * local delivery, as the kernel hands a datagram to a bound socket. It matches by IP protocol, UDP
 * destination port (0 for other protocols), arrival port (-1: any) and destination: a multicast group
 * it joined, or any of the director's own addresses. `deliver` reads the datagram during the call
 * only (the buffer is reused afterwards); it runs on the data-plane thread, so it must be quick.
 */
export interface LocalProtocol {
  proto: number;
  udpPort: number;
  port: number;
  /** Multicast groups joined (host-order uint32). */
  groups: readonly number[];
  deliver(port: number, buf: Uint8Array, p: ParsedFrame, now: number): void;
  /**
   * Optional: an IP fragment that would have been delivered (the first one, whose UDP port shows).
   * The director does not reassemble; this lets the protocol count it as its own drop.
   */
  fragment?(port: number): void;
}

/** Where --pcap writes frames (Ethernet onward). */
export interface FrameSink {
  write(buf: Uint8Array, eth: number, len: number, nowMs: number): void;
  close(): void;
}

/** Reused result of an ipvs decision: where the (possibly re-framed) packet goes. */
export class XmitResult {
  /** Frame start (vnet header) after the transmitter ran; IPIP moves it 20 bytes left. */
  frame = 0;
  end = 0;
  /** Next-hop address; the route decides the port unless `port` >= 0. */
  nextHop = 0;
  port = -1;
  /** The frame is on the FORWARD path: decrement TTL. */
  forwarded = false;

  /** Fills every field; returns XMIT_SEND so transmitters can `return out.set(...)`. */
  set(frame: number, end: number, nextHop: number, forwarded: boolean): number {
    this.frame = frame;
    this.end = end;
    this.nextHop = nextHop;
    this.port = -1;
    this.forwarded = forwarded;
    return XMIT_SEND;
  }
}

/** Kinds of ICMP error `Director.sendIcmpError` builds. */
export const ICMP_FRAG_NEEDED = 1;
export const ICMP_TIME_EXCEEDED = 2;
export const ICMP_PORT_UNREACH = 3;

/** ipvs verdicts returned by IpvsHook methods. */
export const XMIT_SEND = 0;
export const XMIT_NOT_MINE = -1000;
/** The hook already transmitted or consumed the frame (e.g. sent an ICMP error instead). */
export const XMIT_CONSUMED = -1001;

/** Counters of the whole packet path, for the control socket and metrics. */
export class PathCounters {
  readonly rxFrames = new Float64Array(1);
  readonly txFrames = new Float64Array(1);
  readonly parse = new Float64Array(VERDICT_COUNT);
  readonly drops = new Float64Array(DROP_COUNT);
  readonly arpReplies = new Float64Array(1);
  readonly icmpEchoReplies = new Float64Array(1);
  readonly icmpRateLimited = new Float64Array(1);
  /** Datagrams handed to a LocalProtocol (VRRP, sync). */
  readonly localDelivered = new Float64Array(1);
}

/**
 * The data plane of one director: owns the ports, the local addresses, routes and neighbours, and
 * runs bursts through the hook pipeline. Single-threaded; control changes happen between bursts.
 */
export class Director {
  readonly counters = new PathCounters();
  readonly tracer = new Tracer();
  readonly routes = new RouteTable();
  readonly neigh: NeighbourCache;
  readonly ports: Port[];
  private readonly local = new Map<number, LocalAddress>();
  private localProtos: LocalProtocol[] = [];
  private readonly arena: Uint8Array;
  private readonly slot: number;
  private readonly rxOff: Uint32Array[];
  private readonly rxLen: Uint32Array;
  private readonly scratchBase: number;
  private scratchNext = 0;
  private readonly txOff: Uint32Array[];
  private readonly txLen: Uint32Array[];
  private readonly txCount: Int32Array;
  private readonly pf = new ParsedFrame();
  private readonly xr = new XmitResult();
  private readonly burst: number;
  private now = 0;
  /** The time of the current (or last) pass, in ms on the clock runOnce is given (the neighbour cache's). */
  get clock(): number {
    return this.now;
  }
  private icmpId = 1;
  private icmpTokens = ICMP_BURST;
  private icmpRefill = 0;
  ipvs: IpvsHook | null = null;
  /** Capture of every frame received and sent, when --pcap is on. */
  pcap: FrameSink | null = null;
  /** The port the frame being processed arrived on. */
  currentPort = 0;

  constructor(ports: Port[], opts: { burst?: number } = {}) {
    this.ports = ports;
    this.burst = opts.burst ?? DEFAULT_BURST;
    let maxFrame = 2048;
    for (const p of ports) maxFrame = Math.max(maxFrame, p.maxFrame);
    this.slot = (HEADROOM + maxFrame + 63) & ~63;
    const rxSlots = ports.length * this.burst;
    this.arena = new Uint8Array((rxSlots + SCRATCH_SLOTS) * this.slot);
    this.rxOff = ports.map((_, i) => {
      const a = new Uint32Array(this.burst);
      for (let j = 0; j < this.burst; j++) a[j] = (i * this.burst + j) * this.slot + HEADROOM;
      return a;
    });
    this.rxLen = new Uint32Array(this.burst);
    this.scratchBase = rxSlots * this.slot;
    const txCap = rxSlots + SCRATCH_SLOTS;
    this.txOff = ports.map(() => new Uint32Array(txCap));
    this.txLen = ports.map(() => new Uint32Array(txCap));
    this.txCount = new Int32Array(ports.length);
    this.neigh = new NeighbourCache({
      sendArpRequest: (port, ip) => this.sendArp(port, 1, ip, null, 0),
      transmitQueued: (port, buf, off, len, mac) => {
        const s = this.scratch();
        if (s < 0 || len > this.slot - HEADROOM) {
          this.counters.drops[Drop.TX_FULL]!++;
          return;
        }
        this.arena.set(buf.subarray(off, off + len), s);
        copyMac(this.arena, s + VNET_HDR_LEN, mac, 0);
        copyMac(this.arena, s + VNET_HDR_LEN + 6, this.ports[port]!.mac, 0);
        this.enqueueTx(port, s, len);
      },
    });
  }

  // ---- configuration (slow path) ----

  /** Adds one of the director's own addresses (VIP or DIP) with its connected route; sends gratuitous ARP. */
  addAddress(addr: number, prefix: number, port: number): void {
    this.local.set(addr >>> 0, { addr: addr >>> 0, prefix, port });
    this.addrGen++;
    if (prefix < 32) this.routes.add(addr, prefix, 0, port);
    this.gratuitousArp(addr >>> 0);
  }

  /** Bumped whenever an address is added or removed (VRRP taking or releasing a VIP, a control request): the fast path re-derives its entries then. */
  addrGen = 0;

  /** Removes an address and its connected route (unless another address on the prefix keeps it). */
  delAddress(addr: number): boolean {
    const a = this.local.get(addr >>> 0);
    if (!a) return false;
    this.local.delete(addr >>> 0);
    this.addrGen++;
    if (a.prefix < 32) {
      const mask = a.prefix === 0 ? 0 : (0xffffffff << (32 - a.prefix)) >>> 0;
      const still = [...this.local.values()].some((o) => o.prefix === a.prefix && ((o.addr & mask) >>> 0) === ((a.addr & mask) >>> 0));
      if (!still) this.routes.remove(a.addr, a.prefix);
    }
    return true;
  }

  addresses(): LocalAddress[] {
    return [...this.local.values()];
  }

  isLocal(addr: number): boolean {
    return this.local.has(addr >>> 0);
  }

  /** The address the director uses as source toward `dst` (the first local address on the egress port). */
  sourceFor(port: number): number {
    let best = 0;
    for (const a of this.local.values()) {
      if (a.port !== port) continue;
      if (a.prefix < 32) return a.addr;
      if (best === 0) best = a.addr;
    }
    return best;
  }

  /** Sends a gratuitous ARP (an unsolicited request for our own address) on the address's port. */
  gratuitousArp(addr: number): void {
    const a = this.local.get(addr >>> 0);
    if (!a || !this.ports[a.port]) return;
    this.sendArp(a.port, 1, a.addr, null, 0, a.addr);
    this.flush();
  }

  // ---- the loop ----

  /**
   * One pass over every port: read a burst, run each frame through the hooks, send what is due.
   * Returns how many frames were read. `now` is a monotonic time in ms.
   */
  runOnce(now: number): number {
    this.now = now;
    let total = 0;
    for (let p = 0; p < this.ports.length; p++) {
      const offs = this.rxOff[p]!;
      const n = this.ports[p]!.rxBurst(this.arena, offs, this.rxLen, this.burst);
      if (this.pcap !== null) for (let i = 0; i < n; i++) this.pcap.write(this.arena, offs[i]! + VNET_HDR_LEN, this.rxLen[i]! - VNET_HDR_LEN, now);
      for (let i = 0; i < n; i++) {
        this.receive(p, offs[i]!, this.rxLen[i]!);
        if (this.tracer.active) this.tracer.packetEnd();
      }
      total += n;
    }
    this.counters.rxFrames[0]! += total;
    this.flush();
    return total;
  }

  /** Timer work (neighbours, ipvs expiry). */
  tick(now: number): void {
    this.now = now;
    this.neigh.tick(now);
    this.ipvs?.tick(now);
    this.flush();
  }

  /** Sends every queued frame, once per port. */
  flush(): void {
    for (let p = 0; p < this.ports.length; p++) {
      const n = this.txCount[p]!;
      if (n === 0) continue;
      if (this.pcap !== null) {
        const offs = this.txOff[p]!;
        const lens = this.txLen[p]!;
        for (let i = 0; i < n; i++) this.pcap.write(this.arena, offs[i]! + VNET_HDR_LEN, lens[i]! - VNET_HDR_LEN, this.now);
      }
      const sent = this.ports[p]!.txBurst(this.arena, this.txOff[p]!, this.txLen[p]!, n);
      this.counters.txFrames[0]! += sent;
      if (sent < n) this.counters.drops[Drop.TX_FULL]! += n - sent;
      this.txCount[p] = 0;
    }
    this.scratchNext = 0;
  }

  // ---- PREROUTING ----

  private receive(port: number, off: number, len: number): void {
    this.currentPort = port;
    const buf = this.arena;
    const p = this.pf;
    const v = parseFrame(buf, off, len, p, 0);
    this.counters.parse[v]!++;
    if (this.tracer.active) this.tracer.hook(Hook.PREROUTING, port, buf, p.eth, p.end, TraceVerdict.CONTINUE, v);
    // Frames for another host's MAC reach us only in promiscuous mode; never act on them.
    // IPv4 multicast MACs (01:00:5e) pass on to the group check below.
    if (!macIsBroadcast(buf, p.eth) && !macEquals(buf, p.eth, this.ports[port]!.mac, 0) && !isIpv4MulticastMac(buf, p.eth) && v !== Verdict.TRUNCATED) {
      this.drop(port, Drop.OTHER_HOST, Hook.PREROUTING);
      return;
    }
    // 802.1Q frames are not served: the director's addresses live on untagged interfaces (own a
    // kernel VLAN device to serve a VLAN), and replies would otherwise leave untagged.
    if ((p.flags & PF.VLAN) !== 0) {
      this.drop(port, Drop.VLAN, Hook.PREROUTING);
      return;
    }
    switch (v) {
      case Verdict.OK:
        break;
      case Verdict.ARP:
        this.arpInput(port);
        return;
      case Verdict.IPV6:
        this.drop(port, Drop.IPV6, Hook.PREROUTING);
        return;
      case Verdict.OTHER_ETHERTYPE:
        this.drop(port, Drop.OTHER_ETHERTYPE, Hook.PREROUTING);
        return;
      case Verdict.FRAGMENT:
        this.drop(port, Drop.FRAGMENT, Hook.PREROUTING);
        return;
      default:
        this.drop(port, Drop.MALFORMED, Hook.PREROUTING);
        return;
    }
    if (this.local.has(p.daddr)) this.inputHook(port);
    else if (p.daddr >>> 28 === 0xe) {
      if (!this.deliverLocal(port)) this.drop(port, Drop.MULTICAST, Hook.PREROUTING);
    } else this.forwardHook(port);
  }

  /** Hands the parsed datagram to the LocalProtocol that takes it; false when none does. */
  private deliverLocal(port: number): boolean {
    const p = this.pf;
    const list = this.localProtos;
    if (list.length === 0) return false;
    const udpPort = p.proto === 17 && (p.flags & PF.L4) !== 0 ? p.dport : 0;
    const multicast = p.daddr >>> 28 === 0xe;
    const fragment = (p.flags & PF.FRAGMENT) !== 0;
    for (let i = 0; i < list.length; i++) {
      const lp = list[i]!;
      if (lp.proto !== p.proto || lp.udpPort !== udpPort || (lp.port >= 0 && lp.port !== port)) continue;
      if (multicast && !lp.groups.includes(p.daddr)) continue;
      if (fragment) {
        if (lp.fragment === undefined) return false;
        lp.fragment(port);
        return true;
      }
      this.counters.localDelivered[0]!++;
      if (this.tracer.active) this.tracer.hook(Hook.INPUT, port, this.arena, p.eth, p.end, TraceVerdict.LOCAL, 0);
      lp.deliver(port, this.arena, p, this.now);
      return true;
    }
    return false;
  }

  // ---- local protocols (slow path) ----

  /**
   * Starts local delivery for `lp` (VRRP, sync): joins each of its groups' MAC on its port (every port
   * for -1), so a NIC's multicast filter passes them, as the kernel's IP_ADD_MEMBERSHIP does. Throws
   * the port's IoError, with every join made so far undone, when a device refuses.
   */
  addLocalProtocol(lp: LocalProtocol): void {
    const done: Array<[Port, Uint8Array]> = [];
    try {
      for (const port of this.portsOf(lp)) {
        for (const g of lp.groups) {
          const mac = groupMac(g);
          port.mcAdd(mac);
          done.push([port, mac]);
        }
      }
    } catch (e) {
      for (const [port, mac] of done) port.mcDel(mac);
      throw e;
    }
    this.localProtos = [...this.localProtos, lp];
  }

  removeLocalProtocol(lp: LocalProtocol): void {
    if (!this.localProtos.includes(lp)) return;
    this.localProtos = this.localProtos.filter((x) => x !== lp);
    for (const port of this.portsOf(lp)) for (const g of lp.groups) port.mcDel(groupMac(g));
  }

  private portsOf(lp: LocalProtocol): Port[] {
    return lp.port >= 0 ? (this.ports[lp.port] ? [this.ports[lp.port]!] : []) : this.ports;
  }

  /**
   * Sends an IPv4 datagram the director originates (VRRP advert, sync message): `payload` is the
   * complete L4 part (its checksum already set). To a multicast group it leaves `port` with the
   * group's MAC; to a unicast address it is routed (`port` ignored unless the route has none) and
   * resolved like any frame. False when it could not be queued (too big, no scratch slot).
   */
  sendDatagram(port: number, src: number, dst: number, proto: number, ttl: number, payload: Uint8Array, tos = 0): boolean {
    const total = 20 + payload.length;
    if (VNET_HDR_LEN + 14 + total > this.slot - HEADROOM) return false;
    // To a group: larger than the link takes, the device would refuse it (tsvsd does not fragment).
    if (dst >>> 28 === 0xe && (!this.ports[port] || total > this.ports[port]!.mtu)) return false;
    const s = this.scratch();
    if (s < 0) return false;
    const buf = this.arena;
    buf.fill(0, s, s + VNET_HDR_LEN);
    const eth = s + VNET_HDR_LEN;
    buf[eth + 12] = 0x08;
    buf[eth + 13] = 0x00;
    const l4 = writeIpv4Header(buf, eth + 14, tos, total, this.icmpId++ & 0xffff, 0, ttl, proto, src >>> 0, dst >>> 0);
    buf.set(payload, l4);
    const len = VNET_HDR_LEN + 14 + total;
    if (dst >>> 28 === 0xe) {
      buf[eth] = 0x01;
      buf[eth + 1] = 0x00;
      buf[eth + 2] = 0x5e;
      buf[eth + 3] = (dst >>> 16) & 0x7f;
      buf[eth + 4] = (dst >>> 8) & 0xff;
      buf[eth + 5] = dst & 0xff;
      copyMac(buf, eth + 6, this.ports[port]!.mac, 0);
      if (this.tracer.active) this.tracer.hook(Hook.POSTROUTING, port, buf, eth, s + len, TraceVerdict.SENT, 0);
      return this.enqueueTx(port, s, len);
    }
    this.output(s, len, 0, this.routes.lookup(dst) === undefined ? port : -1);
    return true;
  }

  // ---- INPUT ----

  private inputHook(port: number): void {
    const buf = this.arena;
    const p = this.pf;
    if (p.proto === 1) {
      if ((p.flags & PF.L4) !== 0 && p.icmpType === 8 && p.icmpCode === 0) {
        this.echoReply(port);
        return;
      }
      if (this.ipvs && (p.flags & PF.L4) !== 0 && (p.icmpType === 3 || p.icmpType === 11 || p.icmpType === 4)) {
        const r = this.ipvs.icmpError(buf, p, this.now, this.xr, true);
        this.afterIpvs(port, Hook.INPUT, r);
        return;
      }
      this.drop(port, Drop.ICMP_IGNORED, Hook.INPUT);
      return;
    }
    if ((p.proto === 6 || p.proto === 17) && this.ipvs) {
      const r = this.ipvs.input(buf, p, this.now, this.xr);
      // As in the kernel, ipvs sees a datagram before local sockets do.
      if (r === XMIT_NOT_MINE && this.deliverLocal(port)) return;
      this.afterIpvs(port, Hook.INPUT, r === XMIT_NOT_MINE ? -Drop.NO_SERVICE - 1 : r);
      return;
    }
    if (this.deliverLocal(port)) return;
    this.drop(port, Drop.NO_SERVICE, Hook.INPUT);
  }

  // ---- FORWARD ----

  private forwardHook(port: number): void {
    const buf = this.arena;
    const p = this.pf;
    // As ip_forward: the TTL is checked before the FORWARD hook, so the error quotes the original header.
    if (p.ttl <= 1) {
      this.sendIcmpError(port, p, ICMP_TIME_EXCEEDED);
      this.drop(port, Drop.TTL_EXPIRED, Hook.FORWARD);
      return;
    }
    if (this.ipvs) {
      let r = XMIT_NOT_MINE;
      if (p.proto === 6 || p.proto === 17) r = this.ipvs.forward(buf, p, this.now, this.xr);
      else if (p.proto === 1 && (p.flags & PF.L4) !== 0 && (p.icmpType === 3 || p.icmpType === 11 || p.icmpType === 4))
        r = this.ipvs.icmpError(buf, p, this.now, this.xr, false);
      if (r !== XMIT_NOT_MINE) {
        this.afterIpvs(port, Hook.FORWARD, r);
        return;
      }
    }
    this.drop(port, Drop.NOT_LOCAL, Hook.FORWARD);
  }

  private afterIpvs(port: number, hook: Hook, r: number): void {
    if (r === XMIT_CONSUMED) return;
    if (r < 0) {
      this.drop(port, -r - 1, hook);
      return;
    }
    const xr = this.xr;
    if (this.tracer.active) this.tracer.hook(hook, port, this.arena, xr.frame + VNET_HDR_LEN, xr.end, TraceVerdict.IPVS, 0);
    if (xr.forwarded) {
      const l3 = this.pf.l3 - this.pf.frame + xr.frame;
      ipv4DecTtl(this.arena, l3);
    }
    this.output(xr.frame, xr.end - xr.frame, xr.nextHop, xr.port);
  }

  // ---- POSTROUTING ----

  /**
   * Routes a frame whose IP header is final: picks the port and next hop, resolves the MAC, writes
   * the Ethernet addresses and queues it. `nextHop` 0 means route by the IP destination.
   */
  output(frame: number, len: number, nextHop: number, portHint: number): void {
    const buf = this.arena;
    const eth = frame + VNET_HDR_LEN;
    let hop = nextHop >>> 0;
    let port = portHint;
    if (hop === 0) hop = readU32(buf, eth + 14 + 16);
    if (port < 0) {
      const r = this.routes.lookup(hop);
      if (r === undefined) {
        this.drop(0, Drop.NO_ROUTE, Hook.POSTROUTING);
        return;
      }
      port = r.port;
      if (r.gateway !== 0) hop = r.gateway;
    }
    const mac = this.neigh.lookup(hop, port, buf, frame, len, this.now);
    if (mac === null) {
      if (this.tracer.active) this.tracer.hook(Hook.POSTROUTING, port, buf, eth, frame + len, TraceVerdict.QUEUED, 0);
      return;
    }
    copyMac(buf, eth, mac, 0);
    copyMac(buf, eth + 6, this.ports[port]!.mac, 0);
    if (this.tracer.active) this.tracer.hook(Hook.POSTROUTING, port, buf, eth, frame + len, TraceVerdict.SENT, 0);
    this.enqueueTx(port, frame, len);
  }

  /** Queues a frame for the next flush; false (counted) when the port's queue is full. */
  private enqueueTx(port: number, off: number, len: number): boolean {
    const n = this.txCount[port]!;
    if (n >= this.txOff[port]!.length) {
      this.counters.drops[Drop.TX_FULL]!++;
      return false;
    }
    this.txOff[port]![n] = off;
    this.txLen[port]![n] = len;
    this.txCount[port] = n + 1;
    return true;
  }

  /**
   * A free scratch slot's frame offset for a generated frame, or -1 (counted) when all are used this
   * burst. Never flushes: a caller may hold a slot it has not queued yet, which a flush would recycle.
   */
  private scratch(): number {
    if (this.scratchNext >= SCRATCH_SLOTS) {
      this.counters.drops[Drop.TX_FULL]!++;
      return -1;
    }
    return this.scratchBase + this.scratchNext++ * this.slot + HEADROOM;
  }

  private drop(port: number, reason: number, hook: Hook): void {
    this.counters.drops[reason]!++;
    if (this.tracer.active) this.tracer.hook(hook, port, this.arena, this.pf.eth, this.pf.end, TraceVerdict.DROP, reason);
  }

  // ---- ARP and ICMP ----

  private arpInput(port: number): void {
    const buf = this.arena;
    const a = this.pf.l3;
    if (a + 28 > this.pf.end) {
      this.drop(port, Drop.MALFORMED, Hook.PREROUTING);
      return;
    }
    // Ethernet/IPv4 ARP only.
    if (buf[a] !== 0 || buf[a + 1] !== 1 || buf[a + 2] !== 8 || buf[a + 3] !== 0 || buf[a + 4] !== 6 || buf[a + 5] !== 4) {
      this.drop(port, Drop.MALFORMED, Hook.PREROUTING);
      return;
    }
    const op = (buf[a + 6]! << 8) | buf[a + 7]!;
    const spa = readU32(buf, a + 14);
    const tpa = readU32(buf, a + 24);
    const mine = this.local.get(tpa);
    const forUs = mine !== undefined && mine.port === port;
    // Learn the sender when the ARP is about us (RFC 826's merge rule, restricted to useful entries).
    if (spa !== 0) this.neigh.learn(spa, port, buf, a + 8, this.now, forUs);
    if (op === 1 && forUs) {
      this.sendArp(port, 2, spa, buf, a + 8, tpa);
      this.counters.arpReplies[0]!++;
      if (this.tracer.active) this.tracer.hook(Hook.INPUT, port, buf, this.pf.eth, this.pf.end, TraceVerdict.LOCAL, 0);
    }
  }

  /**
   * Builds and queues an ARP frame: op 1 request (to broadcast) for `targetIp`, or op 2 reply to
   * `targetMac`. The sender address is `senderIp` (default: our source address on the port).
   */
  private sendArp(port: number, op: number, targetIp: number, targetMac: Uint8Array | null, tmOff: number, senderIp = -1): void {
    const s = this.scratch();
    if (s < 0) return;
    const buf = this.arena;
    buf.fill(0, s, s + VNET_HDR_LEN + ARP_FRAME);
    const eth = s + VNET_HDR_LEN;
    const pm = this.ports[port]!.mac;
    if (targetMac) writeEthHeader(buf, eth, targetMac, tmOff, pm, 0, ETH_P.ARP);
    else {
      buf.fill(0xff, eth, eth + 6);
      copyMac(buf, eth + 6, pm, 0);
      buf[eth + 12] = 0x08;
      buf[eth + 13] = 0x06;
    }
    const a = eth + 14;
    buf[a + 1] = 1;
    buf[a + 2] = 8;
    buf[a + 4] = 6;
    buf[a + 5] = 4;
    buf[a + 7] = op;
    copyMac(buf, a + 8, pm, 0);
    writeU32(buf, a + 14, senderIp >= 0 ? senderIp : this.sourceFor(port));
    if (targetMac) copyMac(buf, a + 18, targetMac, tmOff);
    writeU32(buf, a + 24, targetIp);
    this.enqueueTx(port, s, VNET_HDR_LEN + ARP_FRAME);
  }

  /** Turns an echo request into the reply in place and sends it back where it came from. */
  private echoReply(port: number): void {
    const buf = this.arena;
    const p = this.pf;
    const l3 = p.l3;
    writeU32(buf, l3 + 12, p.daddr);
    writeU32(buf, l3 + 16, p.saddr);
    buf[l3 + 8] = 64;
    ipv4SetChecksum(buf, l3, p.ipHdrLen);
    buf[p.l4] = 0;
    icmpSetChecksum(buf, p.l4, p.ipEnd);
    // Clear any offload state: the reply is complete as it stands.
    buf.fill(0, p.frame, p.frame + VNET_HDR_LEN);
    this.counters.icmpEchoReplies[0]!++;
    if (this.tracer.active) this.tracer.hook(Hook.INPUT, port, buf, p.eth, p.end, TraceVerdict.LOCAL, 0);
    this.output(p.frame, p.ipEnd - p.frame, p.saddr === 0 ? 0 : 0, -1);
  }

  /**
   * Sends an ICMP error about the frame `p` describes back to its source, from our address on the
   * port it arrived on: ICMP_FRAG_NEEDED (with `mtu`), ICMP_TIME_EXCEEDED or ICMP_PORT_UNREACH.
   * Never about an ICMP error or a broadcast (RFC 1122). Rare path.
   */
  sendIcmpError(port: number, p: ParsedFrame, kind: number, mtu = 0): void {
    if (!icmpErrorAllowed(this.arena, p)) return;
    // A token bucket as the kernel's icmp_msgs_per_sec/burst: floods must not be reflected 1:1.
    this.icmpTokens = Math.min(ICMP_BURST, this.icmpTokens + ((this.now - this.icmpRefill) * ICMP_PER_SEC) / 1000);
    this.icmpRefill = this.now;
    if (this.icmpTokens < 1) {
      this.counters.icmpRateLimited[0]!++;
      return;
    }
    this.icmpTokens -= 1;
    const s = this.scratch();
    if (s < 0) return;
    const src = this.sourceFor(port) || p.daddr;
    const z = ZERO_MAC;
    const a = this.arena;
    const id = this.icmpId++ & 0xffff;
    const n =
      kind === ICMP_FRAG_NEEDED
        ? buildFragNeeded(a, s, a, p.l3, p.ipEnd, mtu, src, id, z, 0, z, 0)
        : kind === ICMP_TIME_EXCEEDED
          ? buildTimeExceeded(a, s, a, p.l3, p.ipEnd, src, id, z, 0, z, 0)
          : buildPortUnreachable(a, s, a, p.l3, p.ipEnd, src, id, z, 0, z, 0);
    if (n > 0) this.output(s, n, 0, -1);
  }

  /**
   * Reserves `n` scratch slots for frames built in one go (e.g. GSO segments); fills `offs` with
   * their frame offsets. False when `n` exceeds the scratch area.
   */
  scratchSlots(n: number, offs: Uint32Array): boolean {
    if (n > SCRATCH_SLOTS || n > offs.length) return false;
    if (this.scratchNext + n > SCRATCH_SLOTS) this.flush();
    for (let i = 0; i < n; i++) offs[i] = this.scratchBase + this.scratchNext++ * this.slot + HEADROOM;
    return true;
  }

  /** Bytes available in each scratch slot for a frame (vnet header included). */
  get scratchFrameSize(): number {
    return this.slot - HEADROOM;
  }

  /** The arena every port burst and generated frame lives in. */
  get buffer(): Uint8Array {
    return this.arena;
  }
}
