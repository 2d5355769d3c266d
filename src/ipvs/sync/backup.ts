// The backup sync daemon (ip_vs_process_message / ip_vs_proc_conn): installs and updates conns a master sent.

import { CONN_F, CTPL_S_ASSURED } from '../conn.ts';
import { findService } from '../core.ts';
import { CONTROL_EXPIRE_LATER_S, type Ipvs, type IpvsDest } from '../service.ts';
import { Fwd } from '../types.ts';
import { checkMessage, forEachConn, SR, SyncConn } from './msg.ts';

/** IP_VS_CONN_F_BACKUP_MASK: the flag bits a backup takes from a new entry. */
const BACKUP_MASK = CONN_F.FWD_MASK | CONN_F.NOOUTPUT | CONN_F.INACTIVE | 0x0600 | 0x0800 | CONN_F.TEMPLATE;
/** IP_VS_CONN_F_BACKUP_UPD_MASK: the bits an update may change. */
const BACKUP_UPD_MASK = CONN_F.INACTIVE | 0x0600;
/** Templates from a version-0 master carry no timeout: 3 minutes. */
const TEMPLATE_TIMEOUT_S = 180;

/** Backup counters besides the drop reasons (index into `counts`). */
export const SB = { MSGS: 0, CONNS_NEW: 1, CONNS_UPDATED: 2, COUNT: 3 } as const;
export const SB_NAMES: readonly string[] = ['messages', 'conns_new', 'conns_updated'];

/**
 * One backup daemon over a director's Ipvs. `receive` takes a message's bytes (the UDP payload),
 * refuses the whole message when its framing lies, and installs each usable entry as the kernel does:
 * bound to the local real server of the same service (unknown ones are dropped and counted, never
 * trusted), with the SYNC flag, the forwarding method of the local real server, the state the master
 * sent and its timeout cut to the local one; never scheduled. An entry for a known synced conn updates
 * it; conns this director scheduled itself are never touched.
 */
export class SyncBackup {
  readonly counts = new Float64Array(SB.COUNT);
  /** Drops by SR reason. */
  readonly drops = new Float64Array(SR.COUNT);
  private readonly entry = new SyncConn();
  private readonly install = (c: SyncConn) => this.procConn(c);
  private readonly validState = (proto: number, state: number, template: boolean): number => {
    if (template) return state > CTPL_S_ASSURED ? SR.STATE : -1;
    const pp = this.ipvs.protocol(proto);
    if (pp === undefined) return SR.PROTOCOL;
    return state >= pp.stateNames.length ? SR.STATE : -1;
  };

  constructor(
    private readonly ipvs: Ipvs,
    readonly syncid: number,
  ) {}

  /** One received message: [off, off+len) of `buf`. Never throws. */
  receive(buf: Uint8Array, off: number, len: number): void {
    const bad = checkMessage(buf, off, len, this.syncid);
    if (bad >= 0) {
      this.drops[bad]!++;
      return;
    }
    this.counts[SB.MSGS]!++;
    forEachConn(buf, off, len, this.entry, this.drops, this.validState, this.install);
  }

  /**
   * ip_vs_find_dest: the service by (proto, vaddr, vport), then the dest by (daddr, dport), then by
   * (daddr, 0). Fwmark entries never get here (refused first: tsvs has no fwmark services).
   */
  private findDest(c: SyncConn): IpvsDest | undefined {
    const svc = findService(this.ipvs, 0, c.proto, c.vaddr, c.vport);
    if (svc === undefined) return undefined;
    return this.ipvs.getDest(svc, c.daddr, c.dport) ?? this.ipvs.getDest(svc, c.daddr, 0);
  }

  /**
   * The most a synced entry may live here without a refresh: the local protocol's timeout for its
   * state (as `--set` left it), for a template the local service's persistence timeout (at least the
   * 60 s an expiring template that still controls conns is kept). A master's bigger value is cut to it,
   * so a peer cannot park conns in the table for longer than this director would keep its own.
   */
  private timeoutLimit(c: SyncConn, template: boolean, d: IpvsDest): number {
    if (!template) return this.ipvs.protocol(c.proto)!.timeouts[c.state]!;
    const pt = d.svc.timeout;
    return pt > 0 ? Math.max(pt, CONTROL_EXPIRE_LATER_S) : TEMPLATE_TIMEOUT_S;
  }

  /**
   * One entry (ip_vs_proc_conn), stricter than the kernel: the local real server is resolved before
   * anything is touched (an entry naming none is dropped, nothing changes), and only conns the sync
   * daemon created (flag SYNC) are ever updated or replaced; a conn this director scheduled itself is
   * never modified by a message (the kernel would expire or rewrite it).
   */
  private procConn(c: SyncConn): void {
    const ipvs = this.ipvs;
    const t = ipvs.conns;
    let flags = ((c.flags & BACKUP_MASK) | CONN_F.SYNC) >>> 0;
    const template = (flags & CONN_F.TEMPLATE) !== 0;
    // The kernel's cp->fwmark is the packet's mark; tsvs has no marks and no fwmark services, so a
    // non-zero one cannot belong to any service here: refused, never bound by address instead.
    if (c.fwmark !== 0) {
      this.drops[SR.FWMARK]!++;
      return;
    }
    // Templates are keyed without a client port (ip_vs_sched_persist); one with a port could never
    // match a packet here and every refresh would add another.
    if (template && c.cport !== 0) {
      this.drops[SR.TEMPLATE]!++;
      return;
    }
    const d = this.findDest(c);
    if (d === undefined) {
      this.drops[SR.NO_DEST]!++;
      return;
    }
    let cp = template ? t.lookupTemplate(c.proto, c.caddr, c.vaddr, c.vport) : t.lookupIn(c.proto, c.caddr, c.cport, c.vaddr, c.vport);
    if (cp >= 0 && (t.flags[cp]! & CONN_F.SYNC) === 0) {
      this.drops[SR.LOCAL]!++;
      return;
    }
    if (cp >= 0 && (t.dport[cp] !== c.dport || t.daddr[cp] !== c.daddr)) {
      if ((flags & CONN_F.INACTIVE) !== 0 && !template) {
        // The expiry notice of a conn that was already replaced here.
        this.drops[SR.STALE]!++;
        return;
      }
      // The master moved this client to another real server: the old conn gives way now, as
      // ip_vs_conn_expire_now (not a forced delete: an unassured template it hangs under stays).
      if (t.nControl[cp] === 0) ipvs.expireConn(cp);
      else t.unhash(cp);
      cp = -1;
    }
    if (cp >= 0) {
      const old = t.flags[cp]!;
      const bound = ipvs.destById[t.dest[cp]!];
      if (((old ^ flags) & CONN_F.INACTIVE) !== 0 && !template && bound !== undefined) {
        if (flags & CONN_F.INACTIVE) {
          bound.activeConns--;
          bound.inactConns++;
        } else {
          bound.activeConns++;
          bound.inactConns--;
        }
      }
      flags = ((flags & BACKUP_UPD_MASK) | (old & ~BACKUP_UPD_MASK)) >>> 0;
      t.flags[cp] = flags;
      this.counts[SB.CONNS_UPDATED]!++;
    } else {
      // Synced conns may take only their share of the table: local traffic always finds room.
      if (t.syncCount >= this.shareLimit()) {
        this.drops[SR.SHARE_FULL]!++;
        return;
      }
      // A full table early-drops an entry without established traffic, as for a local conn.
      if (t.count >= t.capacity) ipvs.earlyDrop(-1);
      cp = t.alloc(c.proto, c.caddr, c.cport, c.vaddr, c.vport, c.daddr, c.dport, flags, -1);
      if (cp < 0) {
        this.drops[SR.TABLE_FULL]!++;
        return;
      }
      ipvs.bindDest(cp, d);
      const f = t.flags[cp]!;
      // NAT replies are matched by the real-server-side key, as for a conn scheduled here.
      t.hash(cp, !template && (f & CONN_F.FWD_MASK) === Fwd.Masq);
      this.counts[SB.CONNS_NEW]!++;
    }
    t.inPkts[cp] = ipvs.syncThreshold;
    t.state[cp] = c.state;
    t.oldState[cp] = c.state;
    const limit = this.timeoutLimit(c, template, d);
    let timeout = c.timeout;
    if (timeout === 0) timeout = template ? TEMPLATE_TIMEOUT_S : limit;
    if (timeout > limit) timeout = limit;
    t.timeout[cp] = timeout;
    // ip_vs_conn_put: the timer runs a full timeout from now, even when that is earlier than before.
    t.armAt(cp, t.now + timeout * 1000);
  }

  /** How many synced conns the table may hold (Ipvs.syncConnShare percent of it, at least one). */
  private shareLimit(): number {
    const t = this.ipvs.conns;
    return Math.max(1, Math.floor((t.capacity * this.ipvs.syncConnShare) / 100));
  }
}
