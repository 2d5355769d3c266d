// One VRRP virtual router (RFC 5798 §6.4 with keepalived's behaviour): Initialize/Backup/Master/Fault, timers on an injected clock, I/O injected.
import { Advert, Bad, BAD_COUNT } from './packet.ts';

export const enum State {
  INIT = 0,
  BACKUP = 1,
  MASTER = 2,
  FAULT = 3,
  STOP = 4,
}
export const STATE_NAMES = ['INIT', 'BACKUP', 'MASTER', 'FAULT', 'STOP'] as const;
export type StateName = (typeof STATE_NAMES)[number];

/** The priority of the router that owns the addresses (RFC 5798 §5.2.4). */
export const PRIO_OWNER = 255;
/** Sent by a master that stops, so a backup takes over at once. */
export const PRIO_STOP = 0;
/** A master answers lower-priority or priority-0 adverts at once, but no more often than this (ms). */
export const ANSWER_GAP_MS = 100;

/** What an instance is (resolved from the configuration; addresses in host order). */
export interface InstanceSpec {
  name: string;
  vrid: number;
  version: 2 | 3;
  /** Configured priority, 1..255. */
  priority: number;
  /** Advert interval, centiseconds. */
  adverIntCs: number;
  /** keepalived's `state MASTER`: take over after one advert interval instead of Master_Down_Interval (an owner: at once). */
  initialMaster: boolean;
  preempt: boolean;
  /** ms a backup waits before preempting a lower-priority master (0: none). */
  preemptDelayMs: number;
  /** Gratuitous ARPs on becoming master, the delay before the second burst, and its count. */
  garpRepeat: number;
  garpDelayMs: number;
  /** Periodic GARP while master (0: off) and how many each time. */
  garpRefreshMs: number;
  garpRefreshRepeat: number;
  /** Source address of the adverts (our own address on the interface). */
  src: number;
}

/** The instance's side effects: sending adverts, owning addresses, announcing them, reporting. */
export interface InstanceIo {
  sendAdvert(inst: VrrpInstance, priority: number): void;
  /** Takes (true) or releases (false) every address of the instance. Taking one announces it once. */
  own(inst: VrrpInstance, on: boolean): void;
  /** `count` more gratuitous ARPs for every address. */
  garp(inst: VrrpInstance, count: number): void;
  transition(inst: VrrpInstance, from: State, to: State, reason: string): void;
}

/** The sync group an instance belongs to (see group.ts). */
export interface GroupHooks {
  canGotoMaster(inst: VrrpInstance): boolean;
  syncMaster(inst: VrrpInstance, now: number, reason: string): void;
  syncBackup(inst: VrrpInstance, now: number, reason: string): void;
  syncFault(inst: VrrpInstance, now: number, reason: string): void;
  /** A member's faults cleared; the group leaves FAULT only when no member has one. */
  faultCleared(inst: VrrpInstance, now: number): void;
}

/** Counters of one instance. */
export class InstanceStats {
  advertsSent = 0;
  advertsReceived = 0;
  priZeroSent = 0;
  priZeroReceived = 0;
  addrListMismatch = 0;
  becomeMaster = 0;
  releaseMaster = 0;
  transitions = 0;
  readonly bad = new Float64Array(BAD_COUNT);
}

const fmtIp = (a: number) => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;

/**
 * The state machine. Time is a monotonic clock in ms handed to every method; nothing here reads a
 * clock, sends a frame or touches an address itself, so tests drive it deterministically.
 */
export class VrrpInstance {
  state: State = State.INIT;
  /** The state this instance would be in without its sync group. */
  wantState: State = State.INIT;
  masterAdverIntCs: number;
  /** When a backup declares the master down; when a master sends its next advert. */
  downAt = Infinity;
  advertAt = Infinity;
  /** When a pending preemption may happen (0: no preemption pending). */
  preemptAt = 0;
  private garpAt = Infinity;
  /** When a received advert was last answered at once (see receive). */
  private answeredAt = -Infinity;
  private garpRefreshAt = Infinity;
  /** Source address and priority of the master we last accepted (0 when none). */
  masterAddr = 0;
  masterPriority = 0;
  /** Active fault reasons (tracked interface down, tracked service without quorum). */
  readonly faults = new Set<string>();
  /** Sum of the weights of tracked objects (interfaces, services) that currently apply. */
  private weights = new Map<string, number>();
  readonly stats = new InstanceStats();
  lastTransition = 0;
  group: GroupHooks | null = null;

  constructor(
    readonly spec: InstanceSpec,
    private readonly io: InstanceIo,
  ) {
    this.masterAdverIntCs = spec.adverIntCs;
  }

  /** Priority in adverts and elections: the configured one moved by tracking weights (an owner stays 255). */
  get priority(): number {
    const base = this.spec.priority;
    if (base === PRIO_OWNER) return base;
    let p = base;
    for (const w of this.weights.values()) p += w;
    return Math.max(1, Math.min(254, p));
  }

  /** Skew_Time in ms: v2 (256 − prio)/256 s, v3 ((256 − prio) × Master_Adver_Interval)/256. */
  skewMs(prioDelta = 256 - this.priority): number {
    return this.spec.version === 3 ? (prioDelta * this.masterAdverIntCs * 10) / 256 : (prioDelta * 1000) / 256;
  }

  /** Master_Down_Interval in ms: 3 × Master_Adver_Interval + Skew_Time. */
  masterDownMs(): number {
    return 3 * this.masterAdverIntCs * 10 + this.skewMs();
  }

  private get adverMs(): number {
    return this.spec.adverIntCs * 10;
  }

  // ---- events ----

  /**
   * Startup (RFC 5798 §6.4.1). As keepalived: `state MASTER` waits one interval to hear a master, an
   * address owner (255) in `state MASTER` takes over at once, and `state BACKUP` always waits
   * Master_Down_Interval, an owner too (keepalived.conf(5): "between 3 and 4 advert intervals").
   */
  start(now: number): void {
    if (this.faults.size) {
      this.wantState = State.FAULT;
      this.setState(State.FAULT, now, `starting with ${[...this.faults].join(', ')}`);
      return;
    }
    if (this.spec.priority === PRIO_OWNER && this.spec.initialMaster) {
      this.wantState = State.MASTER;
      this.gotoMaster(now, 'start: priority 255, the address owner');
      return;
    }
    this.masterAdverIntCs = this.spec.adverIntCs;
    this.downAt = now + (this.spec.initialMaster ? this.masterAdverIntCs * 10 + this.skewMs(1) : this.masterDownMs());
    this.wantState = State.BACKUP;
    this.setState(State.BACKUP, now, this.spec.initialMaster ? 'start (state MASTER: one advert interval to hear a master)' : 'start');
  }

  /** Timer work; call often (every 10 ms in tsvsd). */
  tick(now: number): void {
    if (this.state === State.BACKUP && now >= this.downAt) {
      const silent = this.masterAddr ? `no advert from ${fmtIp(this.masterAddr)} for ${(this.masterDownMs() / 1000).toFixed(2)} s` : 'no master heard';
      this.wantState = State.MASTER;
      this.gotoMaster(now, `master down timer expired (${silent})`);
      return;
    }
    if (this.state !== State.MASTER) return;
    if (now >= this.advertAt) {
      this.advertise();
      // Catch up without a burst if the clock jumped (a paused process).
      this.advertAt = Math.max(this.advertAt + this.adverMs, now + 1);
    }
    if (now >= this.garpAt) {
      this.garpAt = Infinity;
      this.io.garp(this, this.spec.garpRepeat);
    }
    if (now >= this.garpRefreshAt) {
      this.garpRefreshAt = now + this.spec.garpRefreshMs;
      this.io.garp(this, this.spec.garpRefreshRepeat);
    }
  }

  /**
   * An advert that passed the packet and instance checks (host.ts). A backup accepts or ignores it, a
   * master yields to a better one or answers a worse one; FAULT and STOP ignore it.
   */
  receive(a: Advert, now: number): void {
    this.stats.advertsReceived++;
    if (a.priority === PRIO_STOP) this.stats.priZeroReceived++;
    const mine = this.priority;
    if (this.state === State.BACKUP) {
      if (a.priority === PRIO_STOP) {
        // The master is leaving: take over after Skew_Time only.
        this.downAt = Math.min(this.downAt, now + this.skewMs());
        this.masterAddr = a.saddr;
        this.masterPriority = 0;
        return;
      }
      const preemptPending = this.spec.preemptDelayMs > 0 && (this.preemptAt === 0 || this.preemptAt > now);
      if (!this.spec.preempt || a.priority >= mine || preemptPending) {
        if (this.spec.version === 3) this.masterAdverIntCs = a.adverIntCs;
        this.downAt = now + this.masterDownMs();
        this.masterAddr = a.saddr;
        this.masterPriority = a.priority;
        if (this.spec.preemptDelayMs > 0) {
          if (a.priority >= mine) this.preemptAt = 0;
          else if (this.preemptAt === 0) this.preemptAt = now + this.spec.preemptDelayMs;
        }
        this.wantState = State.BACKUP;
      }
      // A lower-priority master with preempt on: ignored, so the down timer runs out and we take over.
      return;
    }
    if (this.state !== State.MASTER) return;
    const theirsHigher = a.priority > mine || (a.priority === mine && a.saddr > this.spec.src);
    if (a.priority === PRIO_STOP || !theirsHigher) {
      // As keepalived: answer at once (priority 0: so everyone hears the master that stays; lower: so
      // that router goes back to BACKUP), but at most once per ANSWER_GAP_MS, so a flood of such
      // adverts is not mirrored one for one; the periodic adverts go on regardless.
      if (now - this.answeredAt >= Math.min(ANSWER_GAP_MS, this.adverMs)) {
        this.answeredAt = now;
        this.advertise();
      }
      return;
    }
    this.masterAddr = a.saddr;
    this.masterPriority = a.priority;
    this.wantState = State.BACKUP;
    const why =
      a.priority > mine
        ? `advert from ${fmtIp(a.saddr)} with higher priority ${a.priority} (ours ${mine})`
        : `advert from ${fmtIp(a.saddr)} with equal priority ${a.priority} and a higher address`;
    this.leaveMaster(now, State.BACKUP, why, false);
    // RFC 5798 §6.4.3: the new backup times the master by the interval the master advertises (v3).
    if (this.spec.version === 3) {
      this.masterAdverIntCs = a.adverIntCs;
      this.downAt = now + this.masterDownMs();
    }
    this.group?.syncBackup(this, now, `sync group: ${this.spec.name} ${why}`);
  }

  /** Counts an advert the checks refused; the state never changes for it. */
  refuse(bad: Bad): void {
    this.stats.bad[bad]!++;
  }

  /** Sets or clears a fault (tracked interface down, tracked service without quorum). */
  setFault(reason: string, on: boolean, now: number): void {
    if (on === this.faults.has(reason)) return;
    if (on) {
      this.faults.add(reason);
      if (this.state === State.FAULT || this.state === State.STOP) return;
      this.enterFault(now, reason);
      this.group?.syncFault(this, now, `sync group: ${this.spec.name} ${reason}`);
      return;
    }
    this.faults.delete(reason);
    if (this.faults.size || this.state !== State.FAULT) return;
    if (this.group) this.group.faultCleared(this, now);
    else this.leaveFault(now, `${reason}: cleared`);
  }

  /** Sets the weight a tracked object adds now (0 removes it); a master's next advert carries the result. */
  setWeight(key: string, weight: number): void {
    if (weight === 0) this.weights.delete(key);
    else this.weights.set(key, weight);
  }

  /** Clean shutdown: a master sends priority 0 and releases its addresses. */
  stop(now: number, reason = 'shutdown'): void {
    if (this.state === State.MASTER) {
      this.io.sendAdvert(this, PRIO_STOP);
      this.stats.advertsSent++;
      this.stats.priZeroSent++;
      this.io.own(this, false);
      this.stats.releaseMaster++;
    }
    this.downAt = this.advertAt = this.garpAt = this.garpRefreshAt = Infinity;
    this.setState(State.STOP, now, reason);
  }

  // ---- transitions (also used by the sync group) ----

  /** Becomes master unless the sync group holds it back (then it waits another Master_Down_Interval, in BACKUP). */
  gotoMaster(now: number, reason: string): void {
    if (this.group && !this.group.canGotoMaster(this)) {
      this.downAt = now + this.masterDownMs();
      // From INIT (an owner's start): BACKUP, where the timer runs and adverts are heard.
      if (this.state !== State.BACKUP) this.setState(State.BACKUP, now, `${reason}; held in BACKUP until the sync group may go MASTER`);
      return;
    }
    this.becomeMaster(now, reason);
    this.group?.syncMaster(this, now, `sync group: ${this.spec.name} became MASTER`);
  }

  /**
   * Sends the first advert at once, then takes and announces the addresses (RFC 5798 §6.4.1/6.4.2,
   * in that order as keepalived: the old master hears the advert and lets go before the GARPs).
   */
  becomeMaster(now: number, reason: string): void {
    if (this.state === State.MASTER) return;
    this.masterAdverIntCs = this.spec.adverIntCs;
    this.advertise();
    this.advertAt = now + this.adverMs;
    this.io.own(this, true);
    if (this.spec.garpRepeat > 1) this.io.garp(this, this.spec.garpRepeat - 1);
    this.garpAt = this.spec.garpDelayMs > 0 ? now + this.spec.garpDelayMs : Infinity;
    this.garpRefreshAt = this.spec.garpRefreshMs > 0 ? now + this.spec.garpDelayMs + this.spec.garpRefreshMs : Infinity;
    this.stats.becomeMaster++;
    this.preemptAt = 0;
    this.downAt = Infinity;
    this.masterAddr = this.spec.src;
    this.masterPriority = this.priority;
    this.setState(State.MASTER, now, reason);
  }

  /** Leaves MASTER for BACKUP or FAULT, releasing the addresses (a fault also says priority 0). */
  leaveMaster(now: number, to: State.BACKUP | State.FAULT, reason: string, sendStop: boolean): void {
    if (this.state !== State.MASTER) return;
    if (sendStop) {
      this.io.sendAdvert(this, PRIO_STOP);
      this.stats.advertsSent++;
      this.stats.priZeroSent++;
    }
    this.io.own(this, false);
    this.stats.releaseMaster++;
    this.advertAt = this.garpAt = this.garpRefreshAt = Infinity;
    this.preemptAt = 0;
    this.masterAdverIntCs = this.spec.adverIntCs;
    this.downAt = to === State.BACKUP ? now + this.masterDownMs() : Infinity;
    this.setState(to, now, reason);
  }

  /** To FAULT from any state. */
  enterFault(now: number, reason: string): void {
    if (this.state === State.FAULT || this.state === State.STOP) return;
    this.wantState = State.FAULT;
    if (this.state === State.MASTER) this.leaveMaster(now, State.FAULT, reason, true);
    else {
      this.downAt = Infinity;
      this.setState(State.FAULT, now, reason);
    }
  }

  /** From FAULT back to BACKUP (an address owner goes straight to MASTER). */
  leaveFault(now: number, reason: string): void {
    if (this.state !== State.FAULT || this.faults.size) return;
    if (this.spec.priority === PRIO_OWNER && !this.group) {
      this.wantState = State.MASTER;
      this.becomeMaster(now, reason);
      return;
    }
    if (this.spec.priority === PRIO_OWNER) {
      // In a sync group the owner may not go MASTER alone: BACKUP with its timer run out, so the
      // next tick asks the group (gotoMaster), which the members leaving FAULT with it now join.
      this.wantState = State.MASTER;
      this.masterAdverIntCs = this.spec.adverIntCs;
      this.downAt = now;
      this.setState(State.BACKUP, now, reason);
      return;
    }
    this.wantState = State.BACKUP;
    this.masterAdverIntCs = this.spec.adverIntCs;
    this.downAt = now + this.masterDownMs();
    this.setState(State.BACKUP, now, reason);
  }

  /** To BACKUP because the sync group went there (from MASTER or FAULT). */
  syncToBackup(now: number, reason: string): void {
    if (this.state === State.MASTER) this.leaveMaster(now, State.BACKUP, reason, false);
    else if (this.state === State.FAULT && this.faults.size === 0) this.leaveFault(now, reason);
  }

  private advertise(): void {
    this.io.sendAdvert(this, this.priority);
    this.stats.advertsSent++;
  }

  private setState(to: State, now: number, reason: string): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.stats.transitions++;
    this.lastTransition = now;
    this.io.transition(this, from, to, reason);
  }
}
