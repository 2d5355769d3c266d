// The master sync daemon (ip_vs_sync_conn): which conns to sync and when, batched into messages sent from tick().

import { CONN_F, type ConnTable } from '../conn.ts';
import type { SyncHook } from '../service.ts';
import { TCP_S } from '../proto/tcp.ts';
import { IPPROTO_TCP } from '../types.ts';
import { appendConnV4, connEntryLen, writeMesgHeader, MESG_HDR_LEN } from './msg.ts';

/** The sync sysctls (net.ipv4.vs.sync_*), with the kernel's defaults. */
export interface SyncSysctls {
  /** sync_threshold: a conn is synced when in_pkts % sync_period == sync_threshold. */
  threshold: number;
  /** sync_period (0: only once, at sync_threshold, unless sync_refresh_period). */
  period: number;
  /** sync_refresh_period in seconds (0: off). */
  refreshPeriod: number;
  /** sync_retries (0..3), with sync_refresh_period. */
  retries: number;
  /** sync_persist_mode: conns of persistent services are not synced, only their templates. */
  persistMode: number;
}

export const SYNC_SYSCTL_DEFAULTS: Readonly<SyncSysctls> = { threshold: 3, period: 50, refreshPeriod: 0, retries: 0, persistMode: 0 };

/** IPVS_SYNC_SEND_DELAY: a full message waits at most this long (ms) to be sent with others. */
export const SYNC_SEND_DELAY_MS = 20;
/** IPVS_SYNC_WAKEUP_RATE: this many full messages are sent at once, without waiting. */
export const SYNC_WAKEUP_RATE = 8;
/** IPVS_SYNC_FLUSH_TIME: a message that is not full goes out at the latest this long (ms) after its first entry. */
export const SYNC_FLUSH_TIME_MS = 2000;
/**
 * Messages queued at most; more are dropped and counted (queue_full). The kernel's sync_qlen_max
 * defaults to nr_free_buffer_pages() / 32, tens of thousands on a server, allocated as needed; tsvs
 * preallocates every buffer, so it keeps 64 (about 94 KB at 1472 bytes): far more than the at most
 * 8 full messages a 10 ms tick sends at once (SYNC_WAKEUP_RATE) on a link that keeps up.
 */
export const SYNC_QLEN_MAX = 64;
/** A message carries at most 255 entries (nr_conns is one byte). */
const MAX_CONNS = 255;

// Conns the kernel syncs in TCP: ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT, TIME_WAIT.
const TCP_SYNC_STATES = (1 << TCP_S.ESTABLISHED) | (1 << TCP_S.FIN_WAIT) | (1 << TCP_S.CLOSE) | (1 << TCP_S.CLOSE_WAIT)
  | (1 << TCP_S.TIME_WAIT);

/** Master counters (index into `counts`). */
export const SM = { MSGS: 0, CONNS: 1, BYTES: 2, QUEUE_FULL: 3, SEND_FAILED: 4, COUNT: 5 } as const;
export const SM_NAMES: readonly string[] = ['messages', 'conns', 'bytes', 'queue_full', 'send_failed'];

/** Sends one message (its bytes are valid during the call only); false when it could not go out. */
export type SendMessage = (msg: Uint8Array) => boolean;

/**
 * One master daemon. `conn(cp, pkts)` runs on the packet path: it decides as ip_vs_sync_conn_needed
 * does and copies the conn into the current message (a preallocated buffer; nothing is allocated).
 * Full messages queue; `tick` sends them after SYNC_SEND_DELAY_MS (at once when WAKEUP_RATE are
 * queued) and the current one once it is SYNC_FLUSH_TIME_MS old, as the kernel's master thread.
 */
export class SyncMaster implements SyncHook {
  readonly counts = new Float64Array(SM.COUNT);
  private readonly bufs: Uint8Array[];
  /** Per buffer: the end the kernel gave it (max(maxlen, header + first entry)). */
  private readonly bufEnd: Int32Array;
  private readonly firstUse: Float64Array;
  private readonly queue: Int32Array;
  private qHead = 0;
  private qLen = 0;
  private qSince = 0;
  private readonly free: Int32Array;
  private nFree: number;
  private cur = -1;

  constructor(
    private readonly t: ConnTable,
    readonly syncid: number,
    readonly maxlen: number,
    private readonly sys: SyncSysctls,
  ) {
    const cap = Math.max(maxlen, MESG_HDR_LEN + connEntryLen(true));
    const n = SYNC_QLEN_MAX + 1;
    this.bufs = Array.from({ length: n }, () => new Uint8Array(cap));
    this.bufEnd = new Int32Array(n);
    this.firstUse = new Float64Array(n);
    this.queue = new Int32Array(n);
    this.free = new Int32Array(n);
    for (let i = 0; i < n; i++) this.free[i] = n - 1 - i;
    this.nFree = n;
  }

  /** ip_vs_sync_conn: the conn, then its controlling template(s). Packet path: no allocation, no throw. */
  conn(cp: number, pkts: number): void {
    const t = this.t;
    for (let guard = 0; guard < 4; guard++) {
      if ((t.flags[cp]! & CONN_F.ONE_PACKET) === 0 && this.needed(cp, pkts)) this.add(cp);
      const ct = t.control[cp]!;
      if (ct < 0) return;
      // The kernel's atomic_add_return on ct->in_pkts: core.ts's inPacket already counted this
      // packet on the template (early drop uses the count too), so it is read, not bumped again.
      if (t.flags[ct]! & CONN_F.TEMPLATE) pkts = t.inPkts[ct]!;
      else pkts = this.sys.threshold;
      cp = ct;
    }
  }

  /**
   * Client packets the kernel fast path carried for conn cp (folded about once a second): in_pkts went
   * from `from` to `to` without conn() seeing them. One conn() call stands for them, with the count of
   * the last of them that met the in_pkts rule (pkts % sync_period == sync_threshold, or ==
   * sync_threshold without a period), else `to` (the refresh-period rule, and the templates' walk).
   * Without it a conn installed in the fast path right after the handshake (in_pkts 2) would never
   * reach the backup.
   */
  folded(cp: number, from: number, to: number): void {
    if (to <= from) return;
    const { period, threshold } = this.sys;
    let pkts = to;
    if (period > 0) {
      const last = to - ((((to - threshold) % period) + period) % period);
      if (last > from) pkts = last;
    } else if (from < threshold && threshold <= to) pkts = threshold;
    this.conn(cp, pkts);
  }

  /** ip_vs_sync_conn_needed, with jiffies read as milliseconds. */
  private needed(cp: number, pkts: number): boolean {
    const t = this.t;
    const sys = this.sys;
    const orig = t.syncEndtime[cp]!;
    const now = Math.floor(t.now);
    const timeoutMs = t.timeout[cp]! * 1000;
    let n = Math.floor((now + timeoutMs) / 4) * 4;
    const f = t.flags[cp]!;
    let force = false;
    if ((f & CONN_F.TEMPLATE) !== 0) force = false;
    else if (sys.persistMode !== 0 && t.control[cp]! >= 0 && (t.flags[t.control[cp]!]! & CONN_F.TEMPLATE) !== 0) return false;
    else if (t.proto[cp] === IPPROTO_TCP) {
      const s = t.state[cp]!;
      if (((1 << s) & TCP_SYNC_STATES) === 0) return false;
      force = s !== t.oldState[cp];
      if (force && s !== TCP_S.ESTABLISHED) {
        t.oldState[cp] = s;
        t.syncEndtime[cp] = n;
        return true;
      }
    }
    const refresh = sys.refreshPeriod * 1000;
    if (refresh > 0) {
      const diff = n - orig;
      const minDiff = Math.max(timeoutMs / 2, 10_000);
      if (Math.abs(diff) < Math.min(refresh, minDiff)) {
        const retries = orig % 4;
        if (retries >= sys.retries) return false;
        if (now < orig - timeoutMs + refresh / 8) return false;
        n += retries + 1;
      }
    }
    if (sys.period > 0) {
      if ((f & CONN_F.TEMPLATE) === 0 && pkts % sys.period !== sys.threshold) return false;
    } else if (refresh === 0 && pkts !== sys.threshold) return false;
    t.oldState[cp] = t.state[cp]!;
    // The kernel's cmpxchg cannot fail here: one thread owns the table.
    t.syncEndtime[cp] = n;
    return true;
  }

  /** Copies conn cp into the current message, queueing the message first when it is full. */
  private add(cp: number): void {
    const t = this.t;
    const len = connEntryLen(false);
    let b = this.cur;
    if (b >= 0) {
      const buf = this.bufs[b]!;
      const size = (buf[2]! << 8) | buf[3]!;
      const pad = (4 - size) & 3;
      if (size + pad + len > this.bufEnd[b]! || buf[4]! >= MAX_CONNS) {
        this.enqueue(b);
        b = -1;
      }
    }
    if (b < 0) {
      if (this.nFree === 0) {
        this.counts[SM.QUEUE_FULL]!++;
        return;
      }
      b = this.free[--this.nFree]!;
      writeMesgHeader(this.bufs[b]!, 0, this.syncid);
      this.bufEnd[b] = Math.max(this.maxlen, MESG_HDR_LEN + len);
      this.firstUse[b] = t.now;
      this.cur = b;
    }
    // tsvs does no TCP sequence adjustment (no FTP helper), so no SEQ option is ever needed. The
    // fwmark field is the kernel's cp->fwmark, the packet's mark (skb->mark): tsvsd owns its
    // interfaces, no netfilter marks reach it and it refuses fwmark services, so it is always 0 here.
    appendConnV4(this.bufs[b]!, 0, t.proto[cp]!, t.flags[cp]! & 0xffff, t.state[cp]!, t.cport[cp]!, t.vport[cp]!,
      t.dport[cp]!, 0, t.timeout[cp]!, t.caddr[cp]!, t.vaddr[cp]!, t.daddr[cp]!, null);
    this.counts[SM.CONNS]!++;
  }

  private enqueue(b: number): void {
    const n = this.queue.length;
    if (this.qLen === 0) this.qSince = this.t.now;
    this.queue[(this.qHead + this.qLen) % n] = b;
    this.qLen++;
    this.cur = -1;
  }

  private release(b: number): void {
    this.free[this.nFree++] = b;
  }

  /** Sends what is due: queued messages after the send delay, the current one after the flush time. */
  tick(now: number, send: SendMessage): void {
    if (this.qLen > 0 && (this.qLen >= SYNC_WAKEUP_RATE || now - this.qSince >= SYNC_SEND_DELAY_MS)) {
      while (this.qLen > 0) {
        const b = this.queue[this.qHead]!;
        this.qHead = (this.qHead + 1) % this.queue.length;
        this.qLen--;
        this.sendBuf(b, send);
      }
    }
    const c = this.cur;
    if (c >= 0 && now - this.firstUse[c]! >= SYNC_FLUSH_TIME_MS) {
      this.cur = -1;
      this.sendBuf(c, send);
    }
  }

  private sendBuf(b: number, send: SendMessage): void {
    const buf = this.bufs[b]!;
    const size = (buf[2]! << 8) | buf[3]!;
    if (send(buf.subarray(0, size))) {
      this.counts[SM.MSGS]!++;
      this.counts[SM.BYTES]! += size;
    } else this.counts[SM.SEND_FAILED]!++;
    this.release(b);
  }

  /** Messages waiting (queued, plus the one being filled). */
  pending(): number {
    return this.qLen + (this.cur >= 0 ? 1 : 0);
  }
}
