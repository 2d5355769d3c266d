// VRRP inside tsvsd's data plane: adverts in through a LocalProtocol, out through sendDatagram, addresses owned through the Director while MASTER, link and quorum tracking.
import { readFileSync } from 'node:fs';
import type { Director, LocalProtocol } from '../dp/director.ts';
import type { ParsedFrame } from '../packet/parse.ts';
import { u32ToIp } from '../lib/inet.ts';
import { Advert, AUTH_NONE, AUTH_PASS, Bad, BAD_COUNT, BAD_NAMES, IPPROTO_VRRP, VRRP_GROUP, VRRP_TTL, advertAddr, authMatches, buildAdvert, checkAdvert, passwordBytes } from './packet.ts';
import { PRIO_OWNER, State, STATE_NAMES, VrrpInstance, type InstanceIo, type StateName } from './instance.ts';
import { VrrpSyncGroup } from './group.ts';
import type { ResolvedInstance, VrrpSyncGroupConfig } from './config.ts';

/** A state change, posted to tsvsd's main thread (log, notify scripts). */
export interface VrrpEvent {
  kind: 'instance' | 'group';
  name: string;
  from: StateName;
  to: StateName;
  reason: string;
  /** Effective priority (instances; 0 for groups, as keepalived passes to notify scripts). */
  priority: number;
  /** Wall-clock time of the change (ms since the epoch). */
  at: number;
}

/** One instance as `tsvs vrrp`, the admin API and the metrics show it. */
export interface VrrpInstanceSnapshot {
  name: string;
  interface: string;
  vrid: number;
  version: 2 | 3;
  state: StateName;
  priority: number;
  basePriority: number;
  advertInt: number;
  preempt: boolean;
  unicast: boolean;
  /** The master this instance hears (itself when MASTER), or null. */
  master: string | null;
  masterPriority: number;
  addresses: string[];
  source: string;
  group: string | null;
  faults: string[];
  /** ms since the last transition; ms until a backup declares the master down (null otherwise). */
  sinceMs: number;
  masterDownInMs: number | null;
  masterDownIntervalMs: number;
  stats: {
    advertsSent: number;
    advertsReceived: number;
    advertsBad: number;
    priZeroSent: number;
    priZeroReceived: number;
    /** Adverts taken although their address list differs from ours (keepalived's addr_list_err). */
    addrListMismatch: number;
    becomeMaster: number;
    releaseMaster: number;
    transitions: number;
  };
  bad: Record<string, number>;
}

export interface VrrpSnapshot {
  instances: VrrpInstanceSnapshot[];
  groups: Array<{ name: string; state: StateName; instances: string[] }>;
  /** Adverts no instance could take (unknown VRID, unreadable), by reason. */
  unmatched: Record<string, number>;
}

export interface VrrpHostOptions {
  /** Link state of an interface: true up, false down, undefined unknown (no change). Default: /sys/class/net/IF/operstate. */
  linkState?: (ifname: string) => boolean | undefined;
  /** How often link states are read (ms). */
  linkPollMs?: number;
  /** Where refused or mismatching adverts are reported (rate limited: one line per instance and reason per LOG_EVERY_MS). */
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

/** A refused advert (or one whose address list differs) is logged at most this often per instance and reason. */
export const LOG_EVERY_MS = 60_000;
/** Index of the address-list mismatch in a slot's log limiter (after the Bad reasons). */
const LOG_ADDR_LIST = BAD_COUNT;

/** Rate limiting of the log lines about adverts: when each reason was last logged, and how many were not since. */
class LogLimiter {
  readonly at = new Float64Array(BAD_COUNT + 1).fill(-Infinity);
  readonly suppressed = new Float64Array(BAD_COUNT + 1);

  /** True when reason `k` may be logged now (then its suppressed count is read and reset by the caller). */
  due(k: number, now: number): boolean {
    if (now - this.at[k]! < LOG_EVERY_MS) {
      this.suppressed[k]!++;
      return false;
    }
    this.at[k] = now;
    return true;
  }
}

interface Slot {
  inst: VrrpInstance;
  port: number;
  ifname: string;
  cfg: ResolvedInstance;
  pass: Uint8Array | null;
  multicast: boolean;
  limiter: LogLimiter;
}

/** Reads an interface's operstate: up (or unknown, as for lo) counts as up. */
export function sysfsLinkState(ifname: string): boolean | undefined {
  try {
    const s = readFileSync(`/sys/class/net/${ifname}/operstate`, 'utf8').trim();
    return s === 'up' || s === 'unknown';
  } catch {
    return false;
  }
}

/**
 * The instances of one director. Single-threaded with the Director: `deliver` runs inside a burst,
 * `tick` between bursts; an advert that fails any check is counted and changes nothing.
 */
export class VrrpHost implements LocalProtocol {
  readonly proto = IPPROTO_VRRP;
  readonly udpPort = 0;
  readonly port = -1;
  readonly groups: number[];
  private readonly slots: Slot[] = [];
  /** (port << 8 | vrid) → slot. */
  private readonly byKey = new Map<number, Slot>();
  private readonly syncGroups: VrrpSyncGroup[] = [];
  private readonly advert = new Advert();
  readonly unmatched = new Float64Array(BAD_COUNT);
  private readonly linkState: (ifname: string) => boolean | undefined;
  private readonly linkPollMs: number;
  private nextLinkPoll = 0;
  private readonly links = new Map<string, boolean>();
  private readonly log: NonNullable<VrrpHostOptions['log']>;
  private readonly unmatchedLimiter = new LogLimiter();
  private now = 0;

  constructor(
    private readonly director: Director,
    portOf: (ifname: string) => number,
    instances: ResolvedInstance[],
    groups: VrrpSyncGroupConfig[],
    private readonly emit: (e: VrrpEvent) => void,
    opts: VrrpHostOptions = {},
  ) {
    this.linkState = opts.linkState ?? sysfsLinkState;
    this.linkPollMs = opts.linkPollMs ?? 200;
    this.log = opts.log ?? (() => {});
    const io: InstanceIo = {
      sendAdvert: (inst, priority) => this.sendAdvert(this.slotOf(inst), priority),
      own: (inst, on) => this.own(this.slotOf(inst), on),
      garp: (inst, count) => this.garp(this.slotOf(inst), count),
      transition: (inst, from, to, reason) =>
        this.emit({ kind: 'instance', name: inst.spec.name, from: STATE_NAMES[from], to: STATE_NAMES[to], reason, priority: inst.priority, at: Date.now() }),
    };
    const multicast = new Set<number>();
    for (const r of instances) {
      const c = r.cfg;
      const inst = new VrrpInstance(
        {
          name: c.name,
          vrid: c.vrid,
          version: c.version,
          priority: c.priority,
          adverIntCs: Math.round(c.advert_int * 100),
          initialMaster: (c.state ?? (c.priority === PRIO_OWNER ? 'MASTER' : 'BACKUP')) === 'MASTER',
          preempt: c.preempt,
          preemptDelayMs: c.preempt_delay * 1000,
          garpRepeat: c.garp_master_repeat,
          garpDelayMs: c.garp_master_delay * 1000,
          garpRefreshMs: c.garp_master_refresh * 1000,
          garpRefreshRepeat: c.garp_master_refresh_repeat,
          src: r.src,
        },
        io,
      );
      const port = portOf(c.interface);
      const slot: Slot = { inst, port, ifname: c.interface, cfg: r, pass: c.auth_pass ? passwordBytes(c.auth_pass) : null, multicast: c.unicast_peers.length === 0, limiter: new LogLimiter() };
      this.slots.push(slot);
      this.byKey.set((port << 8) | c.vrid, slot);
      if (slot.multicast) multicast.add(VRRP_GROUP);
    }
    this.groups = [...multicast];
    for (const g of groups) {
      const sg = new VrrpSyncGroup(g.name, (grp, from, to, reason) =>
        this.emit({ kind: 'group', name: grp.name, from: STATE_NAMES[from], to: STATE_NAMES[to], reason, priority: 0, at: Date.now() }),
      );
      for (const n of g.instances) {
        const s = this.slots.find((x) => x.cfg.cfg.name === n);
        if (s) sg.add(s.inst);
      }
      this.syncGroups.push(sg);
    }
  }

  /** The instance whose addresses include `addr` (host order), or null. */
  instanceOwning(addr: number): string | null {
    for (const s of this.slots) if (s.cfg.vips.some((v) => v.addr === addr >>> 0)) return s.inst.spec.name;
    return null;
  }

  get size(): number {
    return this.slots.length;
  }

  private slotOf(inst: VrrpInstance): Slot {
    return this.slots.find((s) => s.inst === inst)!;
  }

  /** Reads link states, then starts every instance (BACKUP, FAULT, or MASTER for an owner) and joins the group. */
  start(now: number): void {
    this.now = now;
    this.pollLinks(now, false);
    for (const s of this.slots) s.inst.start(now);
    for (const g of this.syncGroups) g.started(now);
    if (this.slots.length) this.director.addLocalProtocol(this);
    this.director.flush();
  }

  /** Timers: adverts, master-down, GARP bursts, link polling. */
  tick(now: number): void {
    this.now = now;
    if (now >= this.nextLinkPoll) this.pollLinks(now, true);
    for (const s of this.slots) s.inst.tick(now);
    this.director.flush();
  }

  /** Clean shutdown: masters send priority 0 and release their addresses. */
  stop(now: number): void {
    for (const s of this.slots) s.inst.stop(now);
    for (const g of this.syncGroups) if (g.state !== State.STOP) g.state = State.STOP;
    this.director.removeLocalProtocol(this);
    this.director.flush();
  }

  /** A tracked virtual service gained or lost its quorum (from the health monitor in the main thread). */
  trackService(service: string, up: boolean, now: number): void {
    const key = service.toLowerCase();
    for (const s of this.slots) {
      for (const t of s.cfg.cfg.track_services) {
        if (t.service.toLowerCase() !== key) continue;
        this.applyTrack(s.inst, `service ${key}`, 'without quorum', t.weight, up, now);
      }
    }
  }

  /** keepalived's tracking: weight 0 means FAULT while down; otherwise the priority moves. */
  private applyTrack(inst: VrrpInstance, key: string, downText: string, weight: number, up: boolean, now: number): void {
    if (weight === 0) inst.setFault(`${key} ${downText}`, !up, now);
    // keepalived: a positive weight is added while up, a negative one while down.
    else inst.setWeight(key, weight > 0 ? (up ? weight : 0) : up ? 0 : weight);
  }

  private pollLinks(now: number, report: boolean): void {
    this.nextLinkPoll = now + this.linkPollMs;
    for (const s of this.slots) {
      const names = [{ name: s.ifname, weight: 0 }, ...s.cfg.cfg.track_interfaces];
      for (const t of names) {
        let up = this.links.get(t.name);
        if (up === undefined || report) {
          const st = this.linkState(t.name);
          if (st !== undefined) up = st;
        }
        if (up === undefined) continue;
        this.links.set(t.name, up);
        this.applyTrack(s.inst, `interface ${t.name}`, 'down', t.weight, up, now);
      }
    }
  }

  // ---- receive (inside a burst) ----

  deliver(port: number, buf: Uint8Array, p: ParsedFrame, now: number): void {
    this.now = now;
    const l4 = p.l4;
    const end = p.ipEnd;
    const slot = end - l4 >= 2 ? this.byKey.get((port << 8) | buf[l4 + 1]!) : undefined;
    const a = this.advert;
    let bad = checkAdvert(buf, l4, end, p.saddr, p.daddr, p.ttl, a);
    if (bad === Bad.NONE && slot === undefined) bad = Bad.VRID;
    if (bad === Bad.NONE) bad = this.instanceCheck(slot!, buf, a);
    if (bad !== Bad.NONE) {
      if (slot) slot.inst.refuse(bad);
      else this.unmatched[bad]!++;
      // Other routers' VRIDs on the segment are normal (keepalived ignores them silently too).
      if (bad !== Bad.VRID) this.logRefused(slot, bad, p.saddr, now);
      return;
    }
    // As keepalived (and RFC 5798 §7.1, which only asks to log it): an advert whose address list
    // differs from ours is counted and logged but still taken. Dropping it would make both routers
    // master while an operator changes virtual_ipaddress on one side first.
    if (this.addrListDiffers(slot!, buf, a)) {
      slot!.inst.stats.addrListMismatch++;
      if (slot!.limiter.due(LOG_ADDR_LIST, now)) {
        const n = slot!.limiter.suppressed[LOG_ADDR_LIST]!;
        slot!.limiter.suppressed[LOG_ADDR_LIST] = 0;
        this.log('warn', `VRRP instance ${slot!.inst.spec.name}: advert from ${u32ToIp(a.saddr)} lists other addresses than ours (accepted, as keepalived does; check virtual_ipaddress on both routers)`, {
          vrrp: slot!.inst.spec.name, from: u32ToIp(a.saddr), suppressed: n,
        });
      }
    }
    slot!.inst.receive(a, now);
  }

  /** True when the advert's addresses are not exactly the instance's (count, or one of ours missing). */
  private addrListDiffers(s: Slot, buf: Uint8Array, a: Advert): boolean {
    const vips = s.cfg.vips;
    if (a.naddr !== vips.length) return true;
    for (const v of vips) {
      let found = false;
      for (let i = 0; i < a.naddr && !found; i++) found = advertAddr(buf, a, i) === v.addr;
      if (!found) return true;
    }
    return false;
  }

  /** One log line per instance (or for no instance) and reason per LOG_EVERY_MS, with how many were not logged. */
  private logRefused(slot: Slot | undefined, bad: Bad, saddr: number, now: number): void {
    const lim = slot ? slot.limiter : this.unmatchedLimiter;
    if (!lim.due(bad, now)) return;
    const n = lim.suppressed[bad]!;
    lim.suppressed[bad] = 0;
    const who = slot ? `VRRP instance ${slot.inst.spec.name}` : 'VRRP';
    // The packet socket never hands us our own frames: one from our address is a conflict or spoofed.
    const why = bad === Bad.OWN ? 'own: it comes from one of our addresses (an address conflict or spoofed)' : BAD_NAMES[bad];
    this.log('warn', `${who}: advert from ${u32ToIp(saddr >>> 0)} refused (${why})${n ? `; ${n} more refused for this reason since the last line` : ''}`, {
      ...(slot ? { vrrp: slot.inst.spec.name } : {}), from: u32ToIp(saddr >>> 0), reason: BAD_NAMES[bad], suppressed: n,
    });
  }

  /** The checks that depend on the instance (RFC 5798 §7.1, keepalived's vrrp_check_packet). */
  private instanceCheck(s: Slot, buf: Uint8Array, a: Advert): Bad {
    const spec = s.inst.spec;
    if (a.saddr === spec.src || this.director.isLocal(a.saddr)) return Bad.OWN;
    if (a.version !== spec.version) return Bad.VERSION;
    const multicast = a.daddr >>> 28 === 0xe;
    if (multicast !== s.multicast) return Bad.PEER;
    if (!multicast && !s.cfg.peers.includes(a.saddr)) return Bad.PEER;
    // Multicast adverts must not have crossed a router; unicast ones may (keepalived checks neither way for them).
    if (multicast && a.ttl !== VRRP_TTL) return Bad.TTL;
    if (a.version === 2) {
      const want = s.pass ? AUTH_PASS : AUTH_NONE;
      if (a.authType !== want) return Bad.AUTH;
      if (s.pass && !authMatches(buf, a, s.pass)) return Bad.AUTH;
      if (a.adverIntCs !== spec.adverIntCs) return Bad.INTERVAL;
    }
    // A v3 interval of 0 would make Master_Down_Interval 0: a backup would flap every tick.
    else if (a.adverIntCs === 0) return Bad.INTERVAL;
    return Bad.NONE;
  }

  // ---- I/O ----

  private sendAdvert(s: Slot, priority: number): void {
    const spec = s.inst.spec;
    const addrs = s.cfg.vips.map((v) => v.addr);
    for (const dst of s.cfg.peers) {
      const payload = buildAdvert(
        { version: spec.version, vrid: spec.vrid, priority, adverIntCs: spec.adverIntCs, addrs, authType: s.pass ? AUTH_PASS : AUTH_NONE, ...(s.pass ? { authData: s.pass } : {}) },
        spec.src,
        dst,
      );
      // The DSCP of network control (CS6), as keepalived marks adverts.
      this.director.sendDatagram(s.port, spec.src, dst, IPPROTO_VRRP, VRRP_TTL, payload, 0xc0);
    }
    this.director.flush();
  }

  private own(s: Slot, on: boolean): void {
    for (const v of s.cfg.vips) {
      const port = v.ifname === s.ifname ? s.port : this.director.ports.findIndex((p) => p.ifname === v.ifname);
      if (on) {
        if (!this.director.isLocal(v.addr)) this.director.addAddress(v.addr, v.prefix, port);
      } else this.director.delAddress(v.addr);
    }
    this.director.flush();
  }

  private garp(s: Slot, count: number): void {
    for (let i = 0; i < count; i++) for (const v of s.cfg.vips) this.director.gratuitousArp(v.addr);
  }

  // ---- views ----

  snapshot(now = this.now): VrrpSnapshot {
    const named = (a: Float64Array) => Object.fromEntries(BAD_NAMES.map((n, i) => [n, a[i]!]).filter(([n, v]) => n !== 'none' && (v as number) > 0));
    return {
      instances: this.slots.map((s) => {
        const i = s.inst;
        const st = i.stats;
        let badSum = 0;
        for (let k = 1; k < BAD_COUNT; k++) if (k !== Bad.OWN) badSum += st.bad[k]!;
        return {
          name: i.spec.name,
          interface: s.ifname,
          vrid: i.spec.vrid,
          version: i.spec.version,
          state: STATE_NAMES[i.state],
          priority: i.priority,
          basePriority: i.spec.priority,
          advertInt: i.spec.adverIntCs / 100,
          preempt: i.spec.preempt,
          unicast: !s.multicast,
          master: i.state === State.MASTER ? u32ToIp(i.spec.src) : i.masterAddr ? u32ToIp(i.masterAddr) : null,
          masterPriority: i.state === State.MASTER ? i.priority : i.masterPriority,
          addresses: s.cfg.vips.map((v) => `${u32ToIp(v.addr)}/${v.prefix}@${v.ifname}`),
          source: u32ToIp(i.spec.src),
          group: this.syncGroups.find((g) => g.members.includes(i))?.name ?? null,
          faults: [...i.faults],
          sinceMs: Math.max(0, Math.round(now - i.lastTransition)),
          masterDownInMs: i.state === State.BACKUP && Number.isFinite(i.downAt) ? Math.max(0, Math.round(i.downAt - now)) : null,
          masterDownIntervalMs: Math.round(i.masterDownMs()),
          stats: {
            advertsSent: st.advertsSent,
            advertsReceived: st.advertsReceived,
            advertsBad: badSum,
            priZeroSent: st.priZeroSent,
            priZeroReceived: st.priZeroReceived,
            addrListMismatch: st.addrListMismatch,
            becomeMaster: st.becomeMaster,
            releaseMaster: st.releaseMaster,
            transitions: st.transitions,
          },
          bad: named(st.bad),
        };
      }),
      groups: this.syncGroups.map((g) => ({ name: g.name, state: STATE_NAMES[g.state], instances: g.members.map((m) => m.spec.name) })),
      unmatched: named(this.unmatched),
    };
  }
}
