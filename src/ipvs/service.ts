// The director's control-side model (ip_vs_ctl.c): services, dests, dest trash, sysctls, timeouts, zeroing, listing.

import { IpvsError, type IpvsOp } from '../ctl/errors.ts';
import { CONN_F, CTPL_S_ASSURED, ConnTable, type ConnTableOptions } from './conn.ts';
import { Estimator, type Rates } from './est.ts';
import { makeTcp, TCP_S } from './proto/tcp.ts';
import { makeUdp } from './proto/udp.ts';
import type { Protocol } from './proto/proto.ts';
import { TrackedDest } from './sched/loadindex.ts';
import { getScheduler } from './sched/registry.ts';
import { ST_CONNS, ST_FIELDS, ST_TOTAL, StatsTable, type StatsSnapshot } from './stats.ts';
import { LaddrTable, SvcLaddrs } from './laddr.ts';
import { DEST_F, Fwd, IPPROTO_TCP, IPPROTO_UDP, SVC_F, type Dest, type Proto, type Scheduler, type Service } from './types.ts';

/** A service as the director keeps it: the Service contract plus its stats slot. */
export interface IpvsService extends Service {
  readonly statsSlot: number;
  dests: IpvsDest[];
  /** The FullNAT local addresses (--add-laddr) new FullNAT conns of this service leave from. */
  readonly laddrs: SvcLaddrs;
  /** PROXY protocol header for its FullNAT TCP conns (proxy-proto.ts PP_*; 0 none). */
  proxyProtocol: number;
}

/** A dest as the director keeps it: the Dest contract plus stats, references and trash bookkeeping. */
export interface IpvsDest extends Dest {
  svc: IpvsService;
  readonly statsSlot: number;
  /** Conns (templates included) bound to it; the kernel's refcnt minus the trash's own. */
  refs: number;
  /** When it became idle in the trash (ms), 0 not yet seen idle. */
  idleStart: number;
  /** Service key it belongs to, kept for reviving from the trash after the service was re-created. */
  readonly svcKey: string;
  inTrash: boolean;
}

/**
 * The director's dest object. A TrackedDest, so that every change of weight, flags or conn counters
 * (here, in core.ts, in the TCP state machine) reaches the scheduler's LoadIndex as it happens.
 */
class DirectorDest extends TrackedDest implements IpvsDest {
  declare svc: IpvsService;
  readonly statsSlot: number;
  refs = 0;
  idleStart = 0;
  readonly svcKey: string;
  inTrash = false;

  constructor(id: number, addr: number, port: number, fwd: Fwd, svc: IpvsService, statsSlot: number, svcKey: string) {
    super({ id, addr, port, fwd, weight: 0, lastWeight: 0, flags: 0, svc });
    this.statsSlot = statsSlot;
    this.svcKey = svcKey;
  }
}

/** What addService/editService take (ipvsadm's -A/-E). */
export interface ServiceSpec {
  proto: Proto;
  addr: number;
  port: number;
  fwmark?: number;
  sched: string;
  flags?: number;
  /** Persistence timeout in seconds. */
  timeout?: number;
  netmask?: number;
  /** PROXY protocol version for FullNAT TCP conns (0 none, 1, 2). */
  proxyProtocol?: number;
}

/** Identifies a service: (proto, addr, port) or fwmark. */
export interface ServiceKey {
  proto: Proto;
  addr: number;
  port: number;
  fwmark?: number;
}

/** What addDest/editDest take (ipvsadm's -a/-e). */
export interface DestSpec {
  addr: number;
  port: number;
  fwd: Fwd;
  weight: number;
  uThreshold?: number;
  lThreshold?: number;
}

/** Timeouts as `--set` takes and `-L --timeout` shows them, seconds. */
export interface Timeouts {
  tcp: number;
  tcpfin: number;
  udp: number;
}

/** The sysctls of /proc/sys/net/ipv4/vs that the core honours. */
export interface Sysctls {
  expireNodestConn: number;
  expireQuiescentTemplate: number;
  connReuseMode: number;
  sloppyTcp: number;
  /** Kept for parity with the kernel's sloppy_sctp; there is no SCTP protocol here, so nothing reads it. */
  sloppySctp: number;
}

export interface DestInfo {
  addr: number;
  port: number;
  fwd: Fwd;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  activeConns: number;
  inactConns: number;
  persistConns: number;
  stats: StatsSnapshot;
  rates: Rates;
}

export interface ServiceInfo {
  proto: Proto;
  addr: number;
  port: number;
  fwmark: number;
  sched: string;
  flags: number;
  timeout: number;
  netmask: number;
  proxyProtocol: number;
  stats: StatsSnapshot;
  rates: Rates;
  dests: DestInfo[];
}

export interface ConnInfo {
  /** "TCP", "UDP" or "IP" (fwmark templates). */
  proto: string;
  caddr: number;
  cport: number;
  vaddr: number;
  vport: number;
  daddr: number;
  dport: number;
  /** State name as -L -c prints it (templates: NONE / ASSURED). */
  state: string;
  expiresMs: number;
  flags: number;
  template: boolean;
  fwd: Fwd;
}

/** What the packet path calls for each client packet of a conn while a sync master runs. */
export interface SyncHook {
  conn(cp: number, pkts: number): void;
  /** Client packets of conn cp another executor (the kernel fast path) carried: in_pkts went from `from` to `to` unseen. */
  folded(cp: number, from: number, to: number): void;
}

/** Options for a director instance. */
export interface IpvsOptions extends ConnTableOptions {
  /** Conn table capacity (default 1M). */
  connCapacity?: number;
  /** Stats slots: 1 total + services + dests (default 65536). */
  statsSlots?: number;
  /** Scheduler lookup by name (default: the static registry). */
  schedulers?: (name: string) => Scheduler | undefined;
}

/** The largest timeout `--set` accepts: INT_MAX / HZ with HZ = 1000. */
export const MAX_TIMEOUT = Math.floor(2147483647 / 1000);
/** Default share (percent) of the conn table synced conns may fill: the rest stays for local traffic. */
export const SYNC_CONN_SHARE_DEFAULT = 50;
/** A deleted dest stays in the trash this long after its last conn is gone. */
export const DEST_TRASH_PERIOD_MS = 120_000;
/** An expiring conn that still controls others is kept this long (s). */
export const CONTROL_EXPIRE_LATER_S = 60;

/**
 * Slots a full table's early drop looks at for one new conn: bounded work per refused packet when
 * every entry carries established traffic, and almost always a hit under a SYN flood.
 */
export const EARLY_DROP_SCAN = 64;
/** A NAT UDP conn is early-dropped only after this long without a packet (the kernel's todrop_entry age). */
export const EARLY_DROP_UDP_AGE_S = 60;

const NONE_SCHED: Scheduler = { name: 'none', schedule: () => null };

function protoIndex(p: number): number {
  return p === IPPROTO_TCP ? 0 : p === IPPROTO_UDP ? 1 : 2;
}

/** Numeric service key: exact in a double (2 + 32 + 16 bits). */
export function svcKeyNum(proto: number, addr: number, port: number): number {
  return (protoIndex(proto) * 0x100000000 + (addr >>> 0)) * 65536 + port;
}

function keyString(k: ServiceKey): string {
  return k.fwmark ? `f${k.fwmark}` : `${k.proto}:${k.addr >>> 0}:${k.port}`;
}

function validIpv4Unicast(a: number): boolean {
  a >>>= 0;
  if (a === 0 || a === 0xffffffff) return false;
  return (a >>> 28) !== 0xe; // not multicast
}

function isUint(v: unknown, max = 0xffffffff): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

/**
 * One director: the service table, dests and trash, the conn table, counters and estimator, the
 * sysctls and protocol timeouts. Control operations validate fully before changing anything and
 * throw IpvsError; the packet path lives in core.ts.
 */
export class Ipvs {
  readonly conns: ConnTable;
  readonly stats: StatsTable;
  readonly est: Estimator;
  readonly tcp: Protocol = makeTcp();
  readonly udp: Protocol = makeUdp();
  /** Pass/drop reason counters (indexed by core.ts's R), shared with readers on other threads. */
  readonly reasons = new Float64Array(new SharedArrayBuffer(16 * 8));
  readonly sysctl: Sysctls = { expireNodestConn: 0, expireQuiescentTemplate: 0, connReuseMode: 1, sloppyTcp: 0, sloppySctp: 0 };
  /** The running sync master (ip_vs_sync_conn), called per client packet; null when none runs. */
  sync: SyncHook | null = null;
  /** sync_threshold, which the expire path passes as the packet count. */
  syncThreshold = 3;
  /** The share of the conn table (percent) a sync backup's conns may take (YAML sync_conn_share). */
  syncConnShare = SYNC_CONN_SHARE_DEFAULT;

  /** FullNAT local addresses (LIPs) and their port pools. */
  readonly laddrs = new LaddrTable();
  /** Services by (proto, addr, port). */
  readonly svcTable = new Map<number, IpvsService>();
  /** Services by fwmark. */
  readonly fwmTable = new Map<number, IpvsService>();
  /** Creation order of services (listing). */
  private readonly svcOrder: IpvsService[] = [];
  /** Live and trashed dests by id; conns hold the id. */
  readonly destById: (IpvsDest | undefined)[] = [];
  private readonly freeDestIds: number[] = [];
  readonly trash: IpvsDest[] = [];
  /** Services on port 21 / port 0, for the lookup fallbacks. */
  ftpSvcCount = 0;
  nullSvcCount = 0;
  private lastTrashRun = NaN;
  /** Where the next early-drop scan starts (a clock hand over the slots). */
  private dropHand = 0;
  private readonly schedLookup: (name: string) => Scheduler | undefined;

  constructor(opts: IpvsOptions = {}) {
    this.conns = new ConnTable(opts.connCapacity ?? 1 << 20, opts);
    this.stats = new StatsTable(opts.statsSlots ?? 65536);
    this.est = new Estimator(this.stats);
    this.est.start(ST_TOTAL);
    this.conns.onExpire = (i) => this.expireConn(i);
    this.schedLookup = opts.schedulers ?? getScheduler;
  }

  /** The protocol plugin for an IP protocol number, undefined when not load-balanced. */
  protocol(p: number): Protocol | undefined {
    return p === IPPROTO_TCP ? this.tcp : p === IPPROTO_UDP ? this.udp : undefined;
  }

  // ---------------------------------------------------------------- services

  /** Find a service by its exact key (control-side lookup). */
  getService(k: ServiceKey): IpvsService | undefined {
    if (k.fwmark) {
      const s = this.fwmTable.get(k.fwmark);
      return s !== undefined && s.proto === k.proto ? s : undefined;
    }
    return this.svcTable.get(svcKeyNum(k.proto, k.addr, k.port));
  }

  private needService(k: ServiceKey, op: IpvsOp): IpvsService {
    const s = this.getService(k);
    if (s === undefined) throw new IpvsError('ESRCH', op);
    return s;
  }

  private lookupSched(name: string, op: IpvsOp): Scheduler {
    if (name === 'none') return this.schedLookup('none') ?? NONE_SCHED;
    const s = this.schedLookup(name);
    if (s === undefined) throw new IpvsError('ENOENT', op);
    return s;
  }

  private checkServiceSpec(s: ServiceSpec, op: IpvsOp): void {
    if (s.proto !== IPPROTO_TCP && s.proto !== IPPROTO_UDP) throw new IpvsError('EINVAL', op, 'invalid protocol');
    if (!isUint(s.addr) || !isUint(s.port, 0xffff) || (s.fwmark !== undefined && !isUint(s.fwmark))) {
      throw new IpvsError('EINVAL', op);
    }
    if ((s.flags !== undefined && !isUint(s.flags)) || (s.timeout !== undefined && !isUint(s.timeout))
      || (s.netmask !== undefined && !isUint(s.netmask))) throw new IpvsError('EINVAL', op);
  }

  /** -A: add a virtual service. EEXIST if it exists, ENOENT for an unknown scheduler. */
  addService(spec: ServiceSpec): IpvsService {
    const op = 'add-service';
    this.checkServiceSpec(spec, op);
    if (this.getService(spec) !== undefined) throw new IpvsError('EEXIST', op);
    const sched = this.lookupSched(spec.sched, op);
    const slot = this.stats.alloc();
    if (slot < 0) throw new IpvsError('ENOMEM', op);
    const svc: IpvsService = {
      proto: spec.proto,
      addr: spec.fwmark ? 0 : spec.addr >>> 0,
      port: spec.fwmark ? 0 : spec.port,
      fwmark: spec.fwmark ?? 0,
      sched,
      schedData: null,
      flags: ((spec.flags ?? 0) | SVC_F.HASHED) >>> 0,
      timeout: spec.timeout ?? 0,
      netmask: (spec.netmask ?? 0xffffffff) >>> 0,
      dests: [],
      statsSlot: slot,
      laddrs: new SvcLaddrs(),
      proxyProtocol: spec.proxyProtocol ?? 0,
    };
    sched.init?.(svc);
    if (svc.fwmark) this.fwmTable.set(svc.fwmark, svc);
    else {
      this.svcTable.set(svcKeyNum(svc.proto, svc.addr, svc.port), svc);
      if (svc.port === 21) this.ftpSvcCount++;
      else if (svc.port === 0) this.nullSvcCount++;
    }
    this.svcOrder.push(svc);
    this.est.start(slot);
    return svc;
  }

  /** -E: change scheduler, flags, persistence timeout and netmask. */
  editService(spec: ServiceSpec): void {
    const op = 'edit-service';
    this.checkServiceSpec(spec, op);
    const svc = this.needService(spec, op);
    const sched = this.lookupSched(spec.sched, op);
    svc.flags = ((spec.flags ?? 0) | SVC_F.HASHED) >>> 0;
    svc.timeout = spec.timeout ?? 0;
    svc.netmask = (spec.netmask ?? 0xffffffff) >>> 0;
    svc.proxyProtocol = spec.proxyProtocol ?? 0;
    if (sched !== svc.sched) {
      svc.sched.done?.(svc);
      svc.schedData = null;
      svc.sched = sched;
      sched.init?.(svc);
    }
  }

  /** -D: delete a service; its dests go to the trash and keep their conns' accounting. */
  delService(k: ServiceKey): void {
    const svc = this.needService(k, 'delete-service');
    this.unlinkService(svc);
    if (this.sysctl.expireNodestConn) this.flushNodestConns();
  }

  private unlinkService(svc: IpvsService): void {
    svc.sched.done?.(svc);
    svc.schedData = null;
    // The kernel unlinks every dest without the scheduler's del_dest: the scheduler is already gone.
    for (const d of svc.dests) this.trashDest(d);
    svc.dests = [];
    for (const l of svc.laddrs.lips) {
      l.refs--;
      this.laddrs.forgetIfUnused(l);
    }
    svc.laddrs.lips = [];
    if (svc.fwmark) this.fwmTable.delete(svc.fwmark);
    else {
      this.svcTable.delete(svcKeyNum(svc.proto, svc.addr, svc.port));
      if (svc.port === 21) this.ftpSvcCount--;
      else if (svc.port === 0) this.nullSvcCount--;
    }
    this.svcOrder.splice(this.svcOrder.indexOf(svc), 1);
    this.est.stop(svc.statsSlot);
    this.stats.release(svc.statsSlot);
  }

  /** -C: delete every service. */
  flush(): void {
    for (const svc of [...this.svcOrder]) this.unlinkService(svc);
    if (this.sysctl.expireNodestConn) this.flushNodestConns();
  }

  // ---------------------------------------------------------------- dests

  private checkDestSpec(d: DestSpec, op: IpvsOp): void {
    if (typeof d.weight !== 'number' || !Number.isInteger(d.weight) || d.weight < 0 || d.weight > 0x7fffffff) {
      throw new IpvsError('ERANGE', op);
    }
    const u = d.uThreshold ?? 0;
    const l = d.lThreshold ?? 0;
    if (!isUint(u) || !isUint(l)) throw new IpvsError('ERANGE', op);
    if (l > u) throw new IpvsError('ERANGE', op);
    if (!isUint(d.addr) || !isUint(d.port, 0xffff)) throw new IpvsError('EINVAL', op);
    if (d.fwd !== Fwd.Masq && d.fwd !== Fwd.Local && d.fwd !== Fwd.Tunnel && d.fwd !== Fwd.Route && d.fwd !== Fwd.FullNat) {
      throw new IpvsError('EINVAL', op);
    }
  }

  /** A live dest of a service by address and port. */
  getDest(svc: IpvsService, addr: number, port: number): IpvsDest | undefined {
    addr >>>= 0;
    for (const d of svc.dests) if (d.addr === addr && d.port === port) return d;
    return undefined;
  }

  /** The conn flags a dest gives its conns: fwd method, INACTIVE, and NOOUTPUT unless NAT or FullNAT. */
  destConnFlags(d: Dest): number {
    let f = (d.fwd & CONN_F.FWD_MASK) | CONN_F.INACTIVE;
    if (d.fwd !== Fwd.Masq && d.fwd !== Fwd.FullNat) f |= CONN_F.NOOUTPUT;
    return f;
  }

  private updateDest(svc: IpvsService, d: IpvsDest, spec: DestSpec, add: boolean): void {
    if (add || spec.weight !== 0) d.lastWeight = spec.weight;
    d.weight = spec.weight;
    d.fwd = spec.fwd;
    d.svc = svc;
    d.flags |= DEST_F.AVAILABLE;
    const u = spec.uThreshold ?? 0;
    if (u === 0 || u > d.uThreshold) d.flags &= ~DEST_F.OVERLOAD;
    d.uThreshold = u;
    d.lThreshold = spec.lThreshold ?? 0;
    if (add) {
      this.est.start(d.statsSlot);
      svc.dests.unshift(d);
      svc.sched.addDest?.(svc, d);
    } else {
      svc.sched.updDest?.(svc, d);
    }
  }

  /** -a: add a real server; a matching dest in the trash is revived with its counters. */
  addDest(k: ServiceKey, spec: DestSpec): IpvsDest {
    const op = 'add-server';
    const svc = this.needService(k, op);
    this.checkDestSpec(spec, op);
    if (!validIpv4Unicast(spec.addr)) throw new IpvsError('EINVAL', op);
    if (this.getDest(svc, spec.addr, spec.port) !== undefined) throw new IpvsError('EEXIST', op);
    const key = keyString(svc);
    const addr = spec.addr >>> 0;
    const ti = this.trash.findIndex((d) => d.svcKey === key && d.addr === addr && d.port === spec.port);
    let d: IpvsDest;
    if (ti >= 0) {
      d = this.trash[ti]!;
      this.trash.splice(ti, 1);
      d.inTrash = false;
      d.idleStart = 0;
    } else {
      const slot = this.stats.alloc();
      if (slot < 0) throw new IpvsError('ENOMEM', op);
      const id = this.freeDestIds.length > 0 ? this.freeDestIds.pop()! : this.destById.length;
      d = new DirectorDest(id, addr, spec.port, spec.fwd, svc, slot, key);
      this.destById[id] = d;
    }
    this.updateDest(svc, d, spec, true);
    return d;
  }

  /** -e: change a real server's forwarding method, weight and thresholds. */
  editDest(k: ServiceKey, spec: DestSpec): void {
    const op = 'edit-server';
    const svc = this.needService(k, op);
    this.checkDestSpec(spec, op);
    const d = this.getDest(svc, spec.addr, spec.port);
    if (d === undefined) throw new IpvsError('ENOENT', op);
    this.updateDest(svc, d, spec, false);
  }

  /** -d: delete a real server; it goes to the trash while conns still refer to it. */
  delDest(k: ServiceKey, addr: number, port: number): void {
    const op = 'delete-server';
    const svc = this.needService(k, op);
    const d = this.getDest(svc, addr, port);
    if (d === undefined) throw new IpvsError('ENOENT', op);
    const i = svc.dests.indexOf(d);
    svc.dests.splice(i, 1);
    d.flags &= ~DEST_F.AVAILABLE;
    svc.sched.delDest?.(svc, d);
    this.trashDest(d, true);
    if (this.sysctl.expireNodestConn) this.flushNodestConns();
  }

  private trashDest(d: IpvsDest, alreadyUnavailable = false): void {
    if (!alreadyUnavailable) d.flags &= ~DEST_F.AVAILABLE;
    this.est.stop(d.statsSlot);
    d.inTrash = true;
    d.idleStart = 0;
    this.trash.unshift(d);
  }

  /** Free trashed dests idle for DEST_TRASH_PERIOD_MS (ip_vs_dest_trash_expire, run every 60 s). */
  purgeTrash(now: number): void {
    for (let i = this.trash.length - 1; i >= 0; i--) {
      const d = this.trash[i]!;
      if (d.refs > 0) continue;
      if (d.idleStart === 0) {
        d.idleStart = Math.max(1, now);
        continue;
      }
      if (now < d.idleStart + DEST_TRASH_PERIOD_MS) continue;
      this.trash.splice(i, 1);
      this.destById[d.id] = undefined;
      this.freeDestIds.push(d.id);
      this.stats.release(d.statsSlot);
    }
  }

  /** Force-delete every conn whose dest is no longer available (ip_vs_expire_nodest_conn_flush). */
  flushNodestConns(): void {
    const t = this.conns;
    for (let i = t.next(0); i >= 0; i = t.next(i + 1)) {
      const d = this.destById[t.dest[i]!];
      if (d === undefined || (d.flags & DEST_F.AVAILABLE) !== 0) continue;
      if (t.nControl[i]! > 0) continue;
      const ct = t.control[i]!;
      this.delConn(i);
      if (ct >= 0 && t.isUsed(ct) && t.nControl[ct] === 0) this.delConn(ct);
    }
  }

  // ---------------------------------------------------------------- conns (slow path helpers)

  /**
   * Bind a new conn to its dest (ip_vs_bind_dest): flags from the dest, counters, overload.
   * ONE_PACKET survives only for UDP.
   */
  bindDest(i: number, d: IpvsDest): void {
    const t = this.conns;
    let f = t.flags[i]!;
    let cf = this.destConnFlags(d);
    if (f & CONN_F.SYNC) {
      // A conn from the sync daemon keeps the activity it was sent with and takes the local dest's
      // forwarding method (ip_vs_bind_dest).
      if ((f & CONN_F.TEMPLATE) === 0) cf &= ~CONN_F.INACTIVE;
      f &= ~(CONN_F.FWD_MASK | CONN_F.NOOUTPUT);
    }
    f |= cf;
    if (t.proto[i] !== IPPROTO_UDP) f &= ~CONN_F.ONE_PACKET;
    t.flags[i] = f >>> 0;
    t.dest[i] = d.id;
    d.refs++;
    if ((f & CONN_F.TEMPLATE) === 0) {
      if ((f & CONN_F.INACTIVE) === 0) d.activeConns++;
      else d.inactConns++;
    } else d.persistConns++;
    if (d.uThreshold !== 0 && d.activeConns + d.inactConns >= d.uThreshold) d.flags |= DEST_F.OVERLOAD;
  }

  /** Unbind a conn from its dest (ip_vs_unbind_dest), with the overload hysteresis. */
  unbindDest(i: number): void {
    const t = this.conns;
    const d = this.destById[t.dest[i]!];
    if (d === undefined) return;
    const f = t.flags[i]!;
    if ((f & CONN_F.TEMPLATE) === 0) {
      if (f & CONN_F.INACTIVE) d.inactConns--;
      else d.activeConns--;
    } else d.persistConns--;
    const total = d.activeConns + d.inactConns;
    if (d.lThreshold !== 0) {
      if (total < d.lThreshold) d.flags &= ~DEST_F.OVERLOAD;
    } else if (d.uThreshold !== 0) {
      if (total * 4 < d.uThreshold * 3) d.flags &= ~DEST_F.OVERLOAD;
    } else d.flags &= ~DEST_F.OVERLOAD;
    d.refs--;
    t.dest[i] = -1;
  }

  /**
   * A conn's timer fired (ip_vs_conn_expire): a conn that still controls others waits 60 s more;
   * otherwise it leaves its template (dropping it too when force-deleted and the template is
   * unused and not assured), unbinds from its dest and is freed.
   */
  expireConn(i: number): void {
    const t = this.conns;
    if (t.nControl[i]! > 0) {
      t.timeout[i] = CONTROL_EXPIRE_LATER_S;
      // The backup learns that the template lives on (ip_vs_conn_expire's expire_later).
      if (this.sync !== null) this.sync.conn(i, this.syncThreshold);
      t.arm(i);
      return;
    }
    const forced = t.timeout[i] === 0;
    t.unhash(i);
    const ct = t.control[i]!;
    if (ct >= 0) {
      t.nControl[ct] = t.nControl[ct]! - 1;
      t.control[i] = -1;
      if (forced && t.nControl[ct] === 0
        && ((t.flags[ct]! & CONN_F.TEMPLATE) === 0 || (t.state[ct]! & CTPL_S_ASSURED) === 0)) this.delConn(ct);
    }
    this.unbindDest(i);
    const fwd = t.flags[i]! & (CONN_F.FWD_MASK | CONN_F.TEMPLATE);
    if (fwd === Fwd.FullNat || fwd === Fwd.Snat) this.laddrs.release(t.laddr[i]!, t.lport[i]!);
    t.free(i);
  }

  /**
   * The table is full and a new conn wants a slot: evict one entry that carries no established
   * traffic, as nf_conntrack's early_drop evicts an unreplied entry and IPVS's drop_entry defence
   * drops SYN_RECV conns. Candidates, each controlling nothing: TCP conns whose handshake never
   * completed (SYN_RECV, SYNACK) or that are over (TIME_WAIT, CLOSE), UDP conns that carried a single
   * datagram (a spoofed flood's, or a one-shot query's) — a NAT one only once it has been idle for
   * EARLY_DROP_UDP_AGE_S, as the kernel's todrop_entry, since the real server's reply may still be on
   * its way back through it — and persistence templates that are not ASSURED and whose conns carried a
   * single client packet (the kernel's random_dropentry drops all unassured ones, but a DR/TUN UDP
   * template never sees a reply, so never becomes ASSURED: an idle client's would go with it); never
   * `keep` (the template the new conn will hang under).
   * Scans at most EARLY_DROP_SCAN slots from a clock hand, so a just-admitted conn is revisited only
   * after a whole sweep, and a table full of established conns costs bounded work per refusal.
   * Returns whether a slot was freed (counted in `conns.earlyDrop`).
   */
  earlyDrop(keep: number): boolean {
    const t = this.conns;
    const cap = t.capacity;
    const flags = t.flags;
    const state = t.state;
    let i = this.dropHand;
    const n = cap < EARLY_DROP_SCAN ? cap : EARLY_DROP_SCAN;
    for (let k = 0; k < n; k++) {
      if (++i >= cap) i = 0;
      const f = flags[i]!;
      if ((f & CONN_F.USED) === 0 || i === keep || t.nControl[i] !== 0) continue;
      let victim: boolean;
      if (f & CONN_F.TEMPLATE) victim = (state[i]! & CTPL_S_ASSURED) === 0 && t.inPkts[i]! <= 1;
      else if (t.proto[i] === IPPROTO_TCP) {
        const s = state[i]!;
        victim = s === TCP_S.SYN_RECV || s === TCP_S.SYNACK || s === TCP_S.TIME_WAIT || s === TCP_S.CLOSE;
      } else {
        victim = t.proto[i] === IPPROTO_UDP && t.inPkts[i]! <= 1
          && ((f & CONN_F.FWD_MASK) !== Fwd.Masq || t.timeout[i]! * 1000 - t.remainingMs(i) >= EARLY_DROP_UDP_AGE_S * 1000);
      }
      if (!victim) continue;
      this.dropHand = i;
      // Not a forced delete: the entry's template (if any) stays and lives out its own timer.
      this.expireConn(i);
      t.earlyDrop++;
      return true;
    }
    this.dropHand = i;
    return false;
  }

  /** Delete a conn now (ip_vs_conn_del: timeout 0, then expire). */
  delConn(i: number): void {
    if (!this.conns.isUsed(i)) return;
    this.conns.timeout[i] = 0;
    this.expireConn(i);
  }

  /**
   * Advance the clock: expire due conns; every 60 s purge the dest trash. Call once per burst
   * or timer tick with a monotonic ms clock.
   */
  tick(nowMs: number): void {
    this.conns.tick(nowMs);
    if (this.lastTrashRun !== this.lastTrashRun) this.lastTrashRun = nowMs;
    if (nowMs - this.lastTrashRun >= DEST_TRASH_PERIOD_MS / 2) {
      this.lastTrashRun = nowMs;
      if (this.trash.length > 0) this.purgeTrash(nowMs);
    }
  }

  // ---------------------------------------------------------------- timeouts, zero

  /** --set tcp tcpfin udp: 0 leaves a value unchanged. Validates all three before changing any. */
  setTimeouts(t: Timeouts): void {
    for (const v of [t.tcp, t.tcpfin, t.udp]) if (!isUint(v, MAX_TIMEOUT)) throw new IpvsError('EINVAL', 'set');
    if (t.tcp) this.tcp.timeouts[TCP_S.ESTABLISHED] = t.tcp;
    if (t.tcpfin) this.tcp.timeouts[TCP_S.FIN_WAIT] = t.tcpfin;
    if (t.udp) this.udp.timeouts[0] = t.udp;
  }

  getTimeouts(): Timeouts {
    return { tcp: this.tcp.timeouts[TCP_S.ESTABLISHED]!, tcpfin: this.tcp.timeouts[TCP_S.FIN_WAIT]!, udp: this.udp.timeouts[0]! };
  }

  private zeroSlot(slot: number): void {
    this.stats.zeroSlot(slot);
    this.est.reset(slot);
  }

  /** -Z: zero one service (and its dests), or everything including the totals when no key is given. */
  zero(k?: ServiceKey): void {
    if (k === undefined) {
      for (const svc of this.svcOrder) this.zeroService(svc);
      this.zeroSlot(ST_TOTAL);
      return;
    }
    this.zeroService(this.needService(k, 'zero'));
  }

  private zeroService(svc: IpvsService): void {
    for (const d of svc.dests) this.zeroSlot(d.statsSlot);
    this.zeroSlot(svc.statsSlot);
  }

  // ---------------------------------------------------------------- listing

  private destInfo(d: IpvsDest): DestInfo {
    return {
      addr: d.addr,
      port: d.port,
      fwd: d.fwd,
      weight: d.weight,
      uThreshold: d.uThreshold,
      lThreshold: d.lThreshold,
      activeConns: d.activeConns,
      inactConns: d.inactConns,
      persistConns: d.persistConns,
      stats: this.stats.snapshot(d.statsSlot),
      rates: this.est.rates(d.statsSlot),
    };
  }

  private serviceInfo(svc: IpvsService): ServiceInfo {
    return {
      proto: svc.proto,
      addr: svc.addr,
      port: svc.port,
      fwmark: svc.fwmark,
      sched: svc.sched.name,
      flags: svc.flags,
      timeout: svc.timeout,
      netmask: svc.netmask,
      proxyProtocol: svc.proxyProtocol,
      stats: this.stats.snapshot(svc.statsSlot),
      rates: this.est.rates(svc.statsSlot),
      dests: svc.dests.map((d) => this.destInfo(d)),
    };
  }

  /** Snapshot of every service in creation order, dests newest first (the kernel's list order). */
  listServices(): ServiceInfo[] {
    return this.svcOrder.map((s) => this.serviceInfo(s));
  }

  /** Snapshot of one service; ESRCH when missing (-L -t ...). */
  listService(k: ServiceKey): ServiceInfo {
    return this.serviceInfo(this.needService(k, 'list'));
  }

  /** Totals (/proc/net/ip_vs_stats). */
  totals(): { stats: StatsSnapshot; rates: Rates } {
    return { stats: this.stats.snapshot(ST_TOTAL), rates: this.est.rates(ST_TOTAL) };
  }

  /** Conns as -L -c lists them: hashed conns and templates, one-packet conns left out. */
  listConns(): ConnInfo[] {
    const t = this.conns;
    const out: ConnInfo[] = [];
    for (let i = t.next(0); i >= 0; i = t.next(i + 1)) {
      const f = t.flags[i]!;
      if (f & CONN_F.ONE_PACKET) continue;
      const tpl = (f & CONN_F.TEMPLATE) !== 0;
      const p = t.proto[i]!;
      const pp = this.protocol(p);
      const state = tpl ? ((t.state[i]! & CTPL_S_ASSURED) ? 'ASSURED' : 'NONE') : (pp?.stateNames[t.state[i]!] ?? 'ERR!');
      out.push({
        proto: pp?.name ?? (p === 0 ? 'IP' : String(p)),
        caddr: t.caddr[i]!,
        cport: t.cport[i]!,
        vaddr: t.vaddr[i]!,
        vport: t.vport[i]!,
        daddr: t.daddr[i]!,
        dport: t.dport[i]!,
        state,
        expiresMs: t.remainingMs(i),
        flags: f & 0xffff,
        template: tpl,
        fwd: (f & CONN_F.FWD_MASK) as Fwd,
      });
    }
    return out;
  }

  /** Run one estimation round (call every 2 s). */
  estimate(): void {
    this.est.estimate();
  }
}

export { ST_CONNS, ST_FIELDS };
