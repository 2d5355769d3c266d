// The per-packet decisions of ip_vs_core.c, I/O-free: conn lookup, scheduling, persistence, states, counters.

import { CONN_F } from './conn.ts';
import { DIR_INPUT, DIR_OUTPUT } from './proto/proto.ts';
import { svcKeyNum, type Ipvs, type IpvsDest, type IpvsService } from './service.ts';
import { ST_CONNS, ST_FIELDS, ST_INBYTES, ST_INPKTS, ST_OUTBYTES, ST_OUTPKTS, ST_TOTAL } from './stats.ts';
import { DEST_F, Fwd, IPPROTO_TCP, IPPROTO_UDP, SVC_F, type SchedPacket } from './types.ts';

/** What the data plane does with the packet. */
export const V_PASS = 0; // not ipvs's packet (NF_ACCEPT): leave it to the local stack
export const V_FORWARD = 1; // transmit by conn `t.conn`'s forwarding method (NAT replies: SNAT it)
export const V_DROP = 2;
export const V_UNREACH = 3; // drop and answer ICMP port unreachable (ip_vs_leave)

/** Why a packet was passed or dropped; index into `Ipvs`'s reason counters. */
export const R = {
  NO_PROTO: 0,
  NOT_NEW: 1, // no conn and not a conn-opening packet
  NO_SERVICE: 2,
  NO_DEST: 3,
  TABLE_FULL: 4,
  DEST_UNAVAILABLE: 5, // conn to a deleted dest, expire_nodest_conn 0
  PORT_ZERO: 6, // non-persistent port-0 service
  FTPDATA: 7, // never schedule from port 20
  OUT_NO_CONN: 8,
  NO_LPORT: 9, // FullNAT: no local address of the service had a free port
  COUNT: 10,
} as const;

export const REASON_NAMES: readonly string[] = [
  'no_proto', 'not_new', 'no_service', 'no_dest', 'table_full', 'dest_unavailable', 'port_zero', 'ftpdata', 'out_no_conn', 'no_lport',
];

/**
 * The per-packet input the data plane fills in place (one reusable object per worker). Addresses
 * are host-order u32, `len` the IP total length, `tcpFlags` the TCP flags byte (0 for UDP).
 */
export interface PacketTuple extends SchedPacket {
  proto: number;
  saddr: number;
  sport: number;
  daddr: number;
  dport: number;
  tcpFlags: number;
  len: number;
  fwmark: number;
  /** Output: the conn the verdict refers to, -1 none. */
  conn: number;
  /** Output: the reason counted for a pass or drop, -1 none. */
  reason: number;
}

export function newTuple(): PacketTuple {
  return { proto: 0, saddr: 0, sport: 0, daddr: 0, dport: 0, tcpFlags: 0, len: 0, fwmark: 0, conn: -1, reason: -1 };
}

/** The pass/drop reason counters of a director (index by R). */
export function reasonCounters(ipvs: Ipvs): Float64Array {
  return ipvs.reasons;
}

function verdict(t: PacketTuple, reasons: Float64Array, v: number, reason: number): number {
  reasons[reason]!++;
  t.reason = reason;
  t.conn = -1;
  return v;
}

const FTPPORT = 21;
const FTPDATA = 20;

/**
 * ip_vs_service_find: fwmark first, then exact (proto, vaddr, vport), then the FTP service for
 * port 20 or unprivileged ports, then a port-0 service.
 */
export function findService(ipvs: Ipvs, fwmark: number, proto: number, vaddr: number, vport: number): IpvsService | undefined {
  if (fwmark !== 0 && ipvs.fwmTable.size !== 0) {
    const s = ipvs.fwmTable.get(fwmark);
    if (s !== undefined) return s;
  }
  let s = ipvs.svcTable.get(svcKeyNum(proto, vaddr, vport));
  if (s !== undefined) return s;
  if (proto === IPPROTO_TCP && ipvs.ftpSvcCount !== 0 && (vport === FTPDATA || vport >= 1024)) {
    s = ipvs.svcTable.get(svcKeyNum(proto, vaddr, FTPPORT));
    if (s !== undefined) return s;
  }
  if (ipvs.nullSvcCount !== 0) return ipvs.svcTable.get(svcKeyNum(proto, vaddr, 0));
  return undefined;
}

/** Find the conn of a client→VIP packet (ip_vs_conn_in_get), -1 none. */
export function inLookup(ipvs: Ipvs, t: PacketTuple): number {
  return ipvs.conns.lookupIn(t.proto, t.saddr, t.sport, t.daddr, t.dport);
}

/** Find the NAT conn of a RS→client reply (ip_vs_conn_out_get), -1 none. */
export function outLookup(ipvs: Ipvs, t: PacketTuple): number {
  return ipvs.conns.lookupOut(t.proto, t.saddr, t.sport, t.daddr, t.dport);
}

function bumpConns(ipvs: Ipvs, svc: IpvsService, d: IpvsDest): void {
  const c = ipvs.stats.c;
  c[d.statsSlot * ST_FIELDS + ST_CONNS]!++;
  c[svc.statsSlot * ST_FIELDS + ST_CONNS]!++;
  c[ST_TOTAL * ST_FIELDS + ST_CONNS]!++;
}

// Results of schedule() below 0.
const S_IGNORED = -1; // pass the packet on
const S_LEAVE = -2; // no dest: ICMP unreachable
const S_DROP = -3; // conn allocation failed
const S_NOLPORT = -4; // FullNAT: every local address of the service is out of ports

/**
 * Create a conn bound to dest `d`, hashed unless one-packet (ip_vs_conn_new + ip_vs_bind_dest). A
 * full table first early-drops an entry that carries no established traffic (never `keep`). A
 * FullNAT conn takes a LIP:lport from its service's pool before it is hashed, since that is its
 * real-server-side key (dp_vs_laddr_bind); -2 when none is free.
 */
function newConn(ipvs: Ipvs, proto: number, caddr: number, cport: number, vaddr: number, vport: number,
  daddr: number, dport: number, flags: number, d: IpvsDest, keep: number): number {
  const t = ipvs.conns;
  if (t.count >= t.capacity) ipvs.earlyDrop(keep);
  const i = t.alloc(proto, caddr, cport, vaddr, vport, daddr, dport, flags, -1);
  if (i < 0) return -1;
  ipvs.bindDest(i, d);
  const f = t.flags[i]!;
  const fwd = f & CONN_F.FWD_MASK;
  if (fwd === Fwd.FullNat && (f & CONN_F.TEMPLATE) === 0) {
    const pool = d.svc.laddrs;
    const lip = pool.bind();
    if (lip === null) {
      ipvs.laddrs.exhausted++;
      ipvs.unbindDest(i);
      t.free(i);
      return -2;
    }
    t.laddr[i] = lip.addr;
    t.lport[i] = pool.lastPort;
  }
  if ((f & CONN_F.ONE_PACKET) === 0) {
    t.hash(i, (f & CONN_F.TEMPLATE) === 0 && (fwd === Fwd.Masq || fwd === Fwd.FullNat));
  }
  return i;
}

/** ip_vs_check_template: is the template's dest still usable? Invalidates it when not. */
function checkTemplate(ipvs: Ipvs, ct: number): boolean {
  const t = ipvs.conns;
  const d = ipvs.destById[t.dest[ct]!];
  if (d !== undefined && (d.flags & DEST_F.AVAILABLE) !== 0 && !(ipvs.sysctl.expireQuiescentTemplate && d.weight === 0)) {
    return true;
  }
  // Take it out of the index so it can never match again; it lives out its timer.
  if (t.vport[ct] !== 0xffff) {
    t.unhash(ct);
    t.vport[ct] = 0xffff;
    t.dport[ct] = 0xffff;
    t.cport[ct] = 0;
  }
  return false;
}

/** ip_vs_sched_persist: reuse or create the client's template, then the conn under it. */
function schedPersist(ipvs: Ipvs, svc: IpvsService, p: PacketTuple): number {
  const t = ipvs.conns;
  const snet = (p.saddr & svc.netmask) >>> 0;
  let tproto = p.proto;
  let tvaddr = p.daddr;
  let tvport = 0;
  if (p.dport === svc.port) {
    if (svc.port !== FTPPORT) tvport = p.dport;
  } else if (svc.fwmark !== 0) {
    tproto = 0;
    tvaddr = svc.fwmark >>> 0;
  }
  let ct = t.lookupTemplate(tproto, snet, tvaddr, tvport);
  let d: IpvsDest | undefined;
  if (ct < 0 || !checkTemplate(ipvs, ct)) {
    d = svc.sched.schedule(svc, p) as IpvsDest | null ?? undefined;
    if (d === undefined) return S_LEAVE;
    const tdport = p.dport === svc.port && svc.port !== FTPPORT ? d.port : 0;
    ct = newConn(ipvs, tproto, snet, 0, tvaddr, tvport, d.addr, tdport, CONN_F.TEMPLATE, d, -1);
    if (ct < 0) return S_DROP;
    t.timeout[ct] = svc.timeout;
  } else {
    d = ipvs.destById[t.dest[ct]!]!;
  }
  let dport = p.dport;
  if (dport === svc.port && d.port !== 0) dport = d.port;
  const flags = (svc.flags & SVC_F.ONEPACKET) !== 0 && p.proto === IPPROTO_UDP ? CONN_F.ONE_PACKET : 0;
  const cp = newConn(ipvs, p.proto, p.saddr, p.sport, p.daddr, p.dport, d.addr, dport, flags, d, ct);
  // Every use pushes the template's expiry to a full timeout from now (ip_vs_conn_put on ct).
  t.arm(ct);
  if (cp < 0) return cp === -2 ? S_NOLPORT : S_DROP;
  t.control[cp] = ct;
  t.nControl[ct] = t.nControl[ct]! + 1;
  bumpConns(ipvs, svc, d);
  return cp;
}

/**
 * ip_vs_schedule: pick a dest for a conn-opening packet and create the conn. Returns the conn
 * index, or a negative code: -1 pass the packet on, -2 no dest (ICMP unreachable), -3 table full,
 * -4 no FullNAT local port.
 */
export function schedule(ipvs: Ipvs, svc: IpvsService, p: PacketTuple): number {
  if (p.sport === FTPDATA) return S_IGNORED;
  if (svc.flags & SVC_F.PERSISTENT) return schedPersist(ipvs, svc, p);
  if (svc.fwmark === 0 && p.dport !== svc.port) return S_LEAVE;
  const d = svc.sched.schedule(svc, p) as IpvsDest | null;
  if (d === null) return S_LEAVE;
  const flags = (svc.flags & SVC_F.ONEPACKET) !== 0 && p.proto === IPPROTO_UDP ? CONN_F.ONE_PACKET : 0;
  const cp = newConn(ipvs, p.proto, p.saddr, p.sport, p.daddr, p.dport, d.addr, d.port !== 0 ? d.port : p.dport, flags, d, -1);
  if (cp < 0) return cp === -2 ? S_NOLPORT : S_DROP;
  bumpConns(ipvs, svc, d);
  return cp;
}

/**
 * Adds packets and bytes some other executor (the kernel fast path) forwarded for a conn of dest `d`
 * to the dest's, its service's and the total counters, as countIn/countOut would have one by one.
 */
export function countFolded(ipvs: Ipvs, d: IpvsDest | undefined, reply: boolean, packets: number, bytes: number): void {
  if (d === undefined || (d.flags & DEST_F.AVAILABLE) === 0) return;
  const c = ipvs.stats.c;
  const fp = reply ? ST_OUTPKTS : ST_INPKTS;
  const fb = reply ? ST_OUTBYTES : ST_INBYTES;
  for (const k of [d.statsSlot * ST_FIELDS, d.svc.statsSlot * ST_FIELDS, ST_TOTAL * ST_FIELDS]) {
    c[k + fp]! += packets;
    c[k + fb]! += bytes;
  }
}

/**
 * Client packets some other executor (the kernel fast path) forwarded for conn cp: in_pkts (the
 * conn's and its template's) counts them as ip_vs_in would have, and a running sync master applies its rules to them (in_pkts
 * thresholds, the refresh period), so a conn carried there is synced and re-synced as on the TS path.
 */
export function foldInPkts(ipvs: Ipvs, cp: number, packets: number): void {
  const ct = ipvs.conns;
  const from = ct.inPkts[cp]!;
  const to = from + packets;
  ct.inPkts[cp] = to;
  // The template counts its conns' client packets too (early drop reads it), as inPacket does,
  // before the sync master reads it.
  const ctl = ct.control[cp]!;
  if (ctl >= 0) ct.inPkts[ctl] = Math.min(0xffffffff, ct.inPkts[ctl]! + packets);
  ipvs.sync?.folded(cp, from, to);
}

function countIn(ipvs: Ipvs, d: IpvsDest | undefined, len: number): void {
  if (d === undefined || (d.flags & DEST_F.AVAILABLE) === 0) return;
  const c = ipvs.stats.c;
  let k = d.statsSlot * ST_FIELDS;
  c[k + ST_INPKTS]!++;
  c[k + ST_INBYTES]! += len;
  k = d.svc.statsSlot * ST_FIELDS;
  c[k + ST_INPKTS]!++;
  c[k + ST_INBYTES]! += len;
  c[ST_TOTAL * ST_FIELDS + ST_INPKTS]!++;
  c[ST_TOTAL * ST_FIELDS + ST_INBYTES]! += len;
}

function countOut(ipvs: Ipvs, d: IpvsDest | undefined, len: number): void {
  if (d === undefined || (d.flags & DEST_F.AVAILABLE) === 0) return;
  const c = ipvs.stats.c;
  let k = d.statsSlot * ST_FIELDS;
  c[k + ST_OUTPKTS]!++;
  c[k + ST_OUTBYTES]! += len;
  k = d.svc.statsSlot * ST_FIELDS;
  c[k + ST_OUTPKTS]!++;
  c[k + ST_OUTBYTES]! += len;
  c[ST_TOTAL * ST_FIELDS + ST_OUTPKTS]!++;
  c[ST_TOTAL * ST_FIELDS + ST_OUTBYTES]! += len;
}

/**
 * A client→VIP packet (ip_vs_in): existing conn (with conn_reuse_mode and expire_nodest_conn
 * rules) or a new one, counters, state transition, timer re-arm. V_FORWARD leaves the conn in
 * `t.conn`; a one-packet conn stays valid until the next tick().
 */
export function inPacket(ipvs: Ipvs, t: PacketTuple): number {
  const reasons = ipvs.reasons;
  const pp = ipvs.protocol(t.proto);
  if (pp === undefined) return verdict(t, reasons, V_PASS, R.NO_PROTO);
  const ct = ipvs.conns;
  let cp = ct.lookupIn(t.proto, t.saddr, t.sport, t.daddr, t.dport);
  if (cp >= 0 && pp.isNewConn(t.tcpFlags)) {
    const d = ipvs.destById[ct.dest[cp]!];
    const sys = ipvs.sysctl;
    const resched = (sys.expireNodestConn !== 0 && d !== undefined && d.weight === 0)
      || (sys.connReuseMode !== 0 && pp.reuseExpected(ct, cp, sys.connReuseMode));
    if (resched) {
      if (ct.nControl[cp] === 0) ipvs.expireConn(cp);
      else ct.unhash(cp); // keeps controlling its conns, but the new conn takes over the key
      cp = -1;
    }
  }
  if (cp >= 0) {
    const d = ipvs.destById[ct.dest[cp]!];
    if (d !== undefined && (d.flags & DEST_F.AVAILABLE) === 0) {
      if (ipvs.sysctl.expireNodestConn === 0) return verdict(t, reasons, V_DROP, R.DEST_UNAVAILABLE);
      ipvs.expireConn(cp);
      cp = -1;
    }
  }
  if (cp < 0) {
    if (!pp.mayCreate(t.tcpFlags, ipvs.sysctl.sloppyTcp !== 0)) return verdict(t, reasons, V_PASS, R.NOT_NEW);
    const svc = findService(ipvs, t.fwmark, t.proto, t.daddr, t.dport);
    if (svc === undefined) return verdict(t, reasons, V_PASS, R.NO_SERVICE);
    const r = schedule(ipvs, svc, t);
    if (r < 0) {
      if (r === S_DROP) return verdict(t, reasons, V_DROP, R.TABLE_FULL);
      if (r === S_NOLPORT) return verdict(t, reasons, V_DROP, R.NO_LPORT);
      if (r === S_IGNORED) return verdict(t, reasons, V_PASS, R.FTPDATA);
      // ip_vs_leave: an FTP service passes packets for its VIP's other ports.
      if (svc.port === FTPPORT && t.dport !== FTPPORT) return verdict(t, reasons, V_PASS, R.NO_DEST);
      return verdict(t, reasons, V_UNREACH, svc.fwmark === 0 && svc.port !== t.dport && (svc.flags & SVC_F.PERSISTENT) === 0
        ? R.PORT_ZERO : R.NO_DEST);
    }
    cp = r;
  }
  const d = ipvs.destById[ct.dest[cp]!];
  countIn(ipvs, d, t.len);
  pp.transition(ct, cp, DIR_INPUT, t.tcpFlags, d);
  const pkts = ct.inPkts[cp]! + 1;
  ct.inPkts[cp] = pkts;
  // A template counts its conns' client packets: early drop tells a flood's one-packet templates
  // from an idle client's (ct->in_pkts, which the kernel's OPS templates count too).
  const ctl = ct.control[cp]!;
  if (ctl >= 0 && ct.inPkts[ctl]! < 0xffffffff) ct.inPkts[ctl] = ct.inPkts[ctl]! + 1;
  if (ct.flags[cp]! & CONN_F.ONE_PACKET) ct.expireNow(cp);
  else ct.arm(cp);
  // ip_vs_in: the master sync daemon sees every client packet (it marks, it never sends here).
  const sync = ipvs.sync;
  // A FullNAT conn's LIP:lport has no field in the sync protocol: a backup could not rebuild it.
  if (sync !== null && (ct.flags[cp]! & CONN_F.FWD_MASK) !== Fwd.FullNat) sync.conn(cp, pkts);
  t.conn = cp;
  t.reason = -1;
  return V_FORWARD;
}

/**
 * A RS→client packet that may be a NAT reply (ip_vs_out / handle_response): V_FORWARD with the
 * conn in `t.conn` (the data plane rewrites the source to VIP:vport), V_PASS when no conn.
 */
export function outPacket(ipvs: Ipvs, t: PacketTuple): number {
  const reasons = ipvs.reasons;
  const pp = ipvs.protocol(t.proto);
  if (pp === undefined) return verdict(t, reasons, V_PASS, R.NO_PROTO);
  const ct = ipvs.conns;
  const cp = ct.lookupOut(t.proto, t.saddr, t.sport, t.daddr, t.dport);
  if (cp < 0) return verdict(t, reasons, V_PASS, R.OUT_NO_CONN);
  const d = ipvs.destById[ct.dest[cp]!];
  countOut(ipvs, d, t.len);
  pp.transition(ct, cp, DIR_OUTPUT, t.tcpFlags, d);
  ct.arm(cp);
  t.conn = cp;
  t.reason = -1;
  return V_FORWARD;
}
