// Glue between the director's hooks and ipvs: fills the tuple, asks core.ts, runs the conn's transmitter.
import { PF, type ParsedFrame } from '../packet/parse.ts';
import { IcmpInner, parseIcmpInner, icmpInnerSetSaddr, icmpInnerSetSport, icmpInnerSetDaddr, icmpInnerSetDport } from '../packet/icmp.ts';
import { setSaddr, setDaddr } from '../packet/rewrite.ts';
import { Director, XmitResult, XMIT_NOT_MINE, ICMP_PORT_UNREACH, XMIT_CONSUMED, type IpvsHook } from '../dp/director.ts';
import { Drop } from '../dp/drops.ts';
import { CONN_F } from './conn.ts';
import { inPacket, outPacket, newTuple, R, V_FORWARD, V_PASS, V_UNREACH, findService } from './core.ts';
import type { Ipvs } from './service.ts';
import { Fwd } from './types.ts';
import { natIn, natOut } from './xmit/nat.ts';
import { drXmit } from './xmit/dr.ts';
import { tunXmit } from './xmit/tun.ts';
import { fnatXmit } from './xmit/fullnat.ts';
import { SeqAdj, seqAdjIn, seqAdjOut } from './seqadj.ts';
import { PP_OFF } from './proxy-proto.ts';
import { Snat } from './snat.ts';
import { readU32 } from '../packet/checksum.ts';
import { u32ToIp } from '../lib/inet.ts';

/** How often (ms) the "no destination available" line may be logged per director. */
const NO_DEST_LOG_INTERVAL_MS = 1000;

type Log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/** Maps core.ts's pass/drop reasons to the director's drop counters. */
function dropFor(reason: number): number {
  switch (reason) {
    case R.NO_SERVICE:
    case R.PORT_ZERO:
    case R.FTPDATA:
    case R.NO_PROTO:
      return Drop.NO_SERVICE;
    case R.NOT_NEW:
      return Drop.NO_CONN;
    case R.NO_DEST:
      return Drop.NO_DEST;
    case R.TABLE_FULL:
      return Drop.TABLE_FULL;
    case R.DEST_UNAVAILABLE:
      return Drop.DEST_UNAVAILABLE;
    case R.NO_LPORT:
      return Drop.NO_LPORT;
    default:
      return Drop.NOT_LOCAL;
  }
}

/**
 * The IpvsHook the Director calls for TCP/UDP and ICMP errors. One reusable tuple and ICMP view;
 * the transmitter is chosen from the conn's forwarding method, fixed when the conn was created.
 */
export class IpvsPath implements IpvsHook {
  private readonly t = newTuple();
  private readonly inner = new IcmpInner();
  private lastNoDestLog = -Infinity;
  private suppressed = 0;
  /** Called with the conn when the TS path forwards a packet of it, before the transmitter (the fast path's cache installs then). */
  onForwarded: ((conn: number) => void) | null = null;
  /** PROXY-protocol sequence state of FullNAT TCP conns, by conn slot. */
  readonly seqAdj: SeqAdj;
  /** Outbound SNAT for connections real servers open. */
  readonly snat: Snat;

  constructor(
    private readonly ipvs: Ipvs,
    private readonly dir: Director,
    private readonly log: Log,
  ) {
    this.seqAdj = new SeqAdj(ipvs.conns.capacity);
    this.snat = new Snat(ipvs);
  }

  private fill(p: ParsedFrame): void {
    const t = this.t;
    t.proto = p.proto;
    t.saddr = p.saddr;
    t.sport = p.sport;
    t.daddr = p.daddr;
    t.dport = p.dport;
    t.tcpFlags = p.proto === 6 ? p.tcpFlags : 0;
    t.len = p.totLen;
    t.fwmark = 0;
  }

  input(buf: Uint8Array, p: ParsedFrame, now: number, out: XmitResult): number {
    if ((p.flags & PF.L4) === 0) return -Drop.MALFORMED - 1;
    this.fill(p);
    const t = this.t;
    // A FullNAT reply comes to one of the director's LIPs, so it arrives here rather than at FORWARD.
    const lips = this.ipvs.laddrs;
    if (lips.size !== 0 && lips.has(p.daddr) && outPacket(this.ipvs, t) === V_FORWARD) {
      const ct = this.ipvs.conns;
      const c = t.conn;
      const fwd = ct.flags[c]! & CONN_F.FWD_MASK;
      if (fwd === Fwd.FullNat) {
        if (p.proto === 6) seqAdjOut(this.seqAdj, c, buf, p);
        return fnatXmit(buf, p, ct.vaddr[c]!, ct.vport[c]!, ct.caddr[c]!, ct.cport[c]!, out);
      }
      if (fwd === Fwd.Snat) {
        // The reply of a conn a real server opened: back to its own address and port, routed inward.
        return fnatXmit(buf, p, p.saddr, p.sport, ct.caddr[c]!, ct.cport[c]!, out);
      }
    }
    const v = inPacket(this.ipvs, t);
    if (v === V_FORWARD) {
      if (this.onForwarded !== null) this.onForwarded(t.conn);
      return this.xmitIn(buf, p, t.conn, out);
    }
    if (v === V_UNREACH) {
      this.noDest(now);
      this.dir.sendIcmpError(this.inPortOf(), p, ICMP_PORT_UNREACH);
      return -dropFor(t.reason) - 1;
    }
    if (v === V_PASS && t.reason === R.NO_SERVICE) return XMIT_NOT_MINE;
    return -dropFor(t.reason) - 1;
  }

  /** The port the current frame arrived on (set by the director before calling). */
  private inPortOf(): number {
    return this.dir.currentPort;
  }

  private xmitIn(buf: Uint8Array, p: ParsedFrame, c: number, out: XmitResult): number {
    const ct = this.ipvs.conns;
    switch (ct.flags[c]! & CONN_F.FWD_MASK) {
      case Fwd.Masq:
        return natIn(buf, p, ct.daddr[c]!, ct.dport[c]!, out);
      case Fwd.Route:
        return drXmit(p, ct.daddr[c]!, out);
      case Fwd.Tunnel:
        return tunXmit(this.dir, buf, p, this.inPortOf(), ct.daddr[c]!, out);
      case Fwd.FullNat:
        if (p.proto === 6) return this.fnatTcpIn(buf, p, c, out);
        return fnatXmit(buf, p, ct.laddr[c]!, ct.lport[c]!, ct.daddr[c]!, ct.dport[c]!, out);
      default:
        // The director has no local stack to hand a "Local" conn to.
        return -Drop.NO_DEST - 1;
    }
  }

  forward(buf: Uint8Array, p: ParsedFrame, _now: number, out: XmitResult): number {
    if ((p.flags & PF.L4) === 0) return XMIT_NOT_MINE;
    this.fill(p);
    const t = this.t;
    if (outPacket(this.ipvs, t) !== V_FORWARD) {
      const snat = this.snat;
      if (snat.rules.length === 0) return XMIT_NOT_MINE;
      const rule = snat.match(p.saddr);
      if (rule === null) return XMIT_NOT_MINE;
      const c = snat.outbound(rule, p.proto, p.saddr, p.sport, p.daddr, p.dport, t.tcpFlags);
      if (c < 0) return c === -2 ? -Drop.NO_LPORT - 1 : -Drop.NO_CONN - 1;
      const ct = this.ipvs.conns;
      const r = fnatXmit(buf, p, ct.laddr[c]!, ct.lport[c]!, p.daddr, p.dport, out);
      out.forwarded = true;
      return r;
    }
    const ct = this.ipvs.conns;
    // A FullNAT conn's replies go to its LIP, never through FORWARD: this is a packet that only looks like one.
    if ((ct.flags[t.conn]! & CONN_F.FWD_MASK) !== Fwd.Masq) return XMIT_NOT_MINE;
    if (this.onForwarded !== null) this.onForwarded(t.conn);
    return natOut(buf, p, ct.vaddr[t.conn]!, ct.vport[t.conn]!, out);
  }

  /**
   * ICMP errors about tracked conns (ip_vs_in_icmp / ip_vs_out_icmp). From a real server (FORWARD):
   * about a packet of the client's it received, so the outer source and the embedded destination
   * become the VIP:vport. To the VIP (INPUT): about a reply the client side could not take, so it goes to the
   * conn's real server the way the conn's packets go (NAT: embedded source and outer destination
   * become RIP:rport).
   */
  icmpError(buf: Uint8Array, p: ParsedFrame, _now: number, out: XmitResult, local: boolean): number {
    const inner = this.inner;
    if (!parseIcmpInner(buf, p, inner) || !inner.hasPorts) return local ? -Drop.ICMP_IGNORED - 1 : XMIT_NOT_MINE;
    const ct = this.ipvs.conns;
    if (local && this.ipvs.laddrs.size !== 0 && this.ipvs.laddrs.has(inner.saddr)) {
      // To a LIP, about a packet the director sent toward a FullNAT real server: the quoted header
      // is LIP:lport → RIP:rport. Hand it to the client as if about its own CIP:cport → VIP:vport,
      // from the VIP (DPVS's FullNAT ICMP out path).
      const c = ct.lookupOut(inner.proto, inner.daddr, inner.dport, inner.saddr, inner.sport);
      if (c < 0 || (ct.flags[c]! & CONN_F.FWD_MASK) !== Fwd.FullNat) return -Drop.ICMP_IGNORED - 1;
      return this.icmpFnat(buf, p, ct.caddr[c]!, ct.cport[c]!, ct.vaddr[c]!, ct.vport[c]!, out);
    }
    if (!local) {
      // From a real server to the client, about a packet the real server received: the quoted header
      // is CIP:cport → RIP:rport (ip_vs_out_icmp reads it in reverse). Its destination and the outer
      // source become VIP:vport, so the client recognises its own packet.
      const c = ct.lookupOut(inner.proto, inner.daddr, inner.dport, inner.saddr, inner.sport);
      if (c < 0 || (ct.flags[c]! & CONN_F.FWD_MASK) !== Fwd.Masq) return XMIT_NOT_MINE;
      const vip = ct.vaddr[c]!;
      icmpInnerSetDaddr(buf, inner, vip);
      icmpInnerSetDport(buf, inner, ct.vport[c]!);
      setSaddr(buf, p.l3, -1, 1, vip, false);
      p.saddr = vip;
      return out.set(p.frame, p.ipEnd, 0, true);
    }
    // Embedded: VIP:vport → CIP:cport, a reply that went out from the VIP.
    const c = ct.lookupIn(inner.proto, inner.daddr, inner.dport, inner.saddr, inner.sport);
    if (c < 0) return -Drop.ICMP_IGNORED - 1;
    const fwd = ct.flags[c]! & CONN_F.FWD_MASK;
    const rip = ct.daddr[c]!;
    if (fwd === Fwd.Masq) {
      icmpInnerSetSaddr(buf, inner, rip);
      icmpInnerSetSport(buf, inner, ct.dport[c]!);
      setDaddr(buf, p.l3, -1, 1, rip, false);
      p.daddr = rip;
      return out.set(p.frame, p.ipEnd, 0, false);
    }
    if (fwd === Fwd.FullNat) {
      // About a reply VIP:vport → CIP:cport: to the real server as about its own RIP:rport → LIP:lport, from the LIP.
      return this.icmpFnat(buf, p, rip, ct.dport[c]!, ct.laddr[c]!, ct.lport[c]!, out);
    }
    if (fwd === Fwd.Route) return drXmit(p, rip, out);
    if (fwd === Fwd.Tunnel) return tunXmit(this.dir, buf, p, this.inPortOf(), rip, out);
    return XMIT_CONSUMED;
  }

  /**
   * FullNAT TCP toward the real server: a client SYN fixes the conn's PROXY-header plan (from its
   * service); the header goes in front of the first payload byte, later seqs move behind it.
   */
  private fnatTcpIn(buf: Uint8Array, p: ParsedFrame, c: number, out: XmitResult): number {
    const ct = this.ipvs.conns;
    const sa = this.seqAdj;
    const cip = ct.caddr[c]!;
    const cport = ct.cport[c]!;
    const vip = ct.vaddr[c]!;
    const vport = ct.vport[c]!;
    if ((p.tcpFlags & 0x12) === 0x02) {
      const d = this.ipvs.destById[ct.dest[c]!];
      sa.init(c, readU32(buf, p.l4 + 4), d === undefined ? PP_OFF : d.svc.proxyProtocol, cip, cport, vip, vport);
    }
    // A conn opened without a SYN (sloppy TCP, sync) gets no header: the slot's old plan must not apply.
    else if (ct.inPkts[c] === 1) sa.len[c] = 0;
    const r = fnatXmit(buf, p, ct.laddr[c]!, ct.lport[c]!, ct.daddr[c]!, ct.dport[c]!, out);
    if (sa.len[c] === 0) return r;
    const nf = seqAdjIn(sa, c, buf, p, cip, cport, vip, vport);
    if (nf < 0) return -Drop.MALFORMED - 1;
    return out.set(nf, p.ipEnd, 0, false);
  }

  /**
   * A FullNAT ICMP error translated: the quoted header becomes src:sport → dst:dport, and the error
   * itself goes from the quoted destination to the quoted source (the one who sent that packet).
   */
  private icmpFnat(buf: Uint8Array, p: ParsedFrame, src: number, sport: number, dst: number, dport: number, out: XmitResult): number {
    const inner = this.inner;
    icmpInnerSetSaddr(buf, inner, src);
    icmpInnerSetSport(buf, inner, sport);
    icmpInnerSetDaddr(buf, inner, dst);
    icmpInnerSetDport(buf, inner, dport);
    setSaddr(buf, p.l3, -1, 1, dst, false);
    setDaddr(buf, p.l3, -1, 1, src, false);
    p.saddr = dst;
    p.daddr = src;
    return out.set(p.frame, p.ipEnd, 0, false);
  }

  tick(now: number): void {
    this.ipvs.tick(now);
  }

  /** Logs the kernel's "no destination available" line, at most once a second, naming the service. */
  private noDest(now: number): void {
    if (now - this.lastNoDestLog < NO_DEST_LOG_INTERVAL_MS) {
      this.suppressed++;
      return;
    }
    const t = this.t;
    const svc = findService(this.ipvs, 0, t.proto, t.daddr, t.dport);
    const proto = t.proto === 6 ? 'TCP' : 'UDP';
    this.log('warn', `${svc?.sched.name ?? 'ipvs'}: ${proto} ${u32ToIp(t.daddr)}:${t.dport} - no destination available`, {
      suppressed: this.suppressed,
    });
    this.lastNoDestLog = now;
    this.suppressed = 0;
  }

}
