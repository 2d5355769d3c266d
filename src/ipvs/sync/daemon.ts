// The sync daemons of one director (start_sync_thread / stop_sync_thread): config, UDP framing, owned or kernel interface.

import { readFileSync, existsSync } from 'node:fs';
import type { Director, LocalProtocol } from '../../dp/director.ts';
import { PF, type ParsedFrame } from '../../packet/parse.ts';
import { csumFold, l4ChecksumOk, pseudoSum, sum16 } from '../../packet/checksum.ts';
import { IpvsError } from '../../ctl/errors.ts';
import type { DaemonConfig, DaemonEntry } from '../../ctl/protocol.ts';
import { ipToU32, u32ToIp } from '../../lib/inet.ts';
import type { Ipvs } from '../service.ts';
import { SyncBackup, SB_NAMES } from './backup.ts';
import { SyncMaster, SM_NAMES, SYNC_SYSCTL_DEFAULTS, type SyncSysctls } from './master.ts';
import { SR, SR_NAMES, SYNC_GROUP, SYNC_HDR_OVERHEAD, SYNC_PORT } from './msg.ts';
import { kernelIfAddress, RELAY } from './kernel-socket.ts';

type Log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/**
 * How a daemon on an interface tsvsd does not own reaches the network: tsvsd's main thread holds a
 * UDP socket on that kernel interface (multicast membership, IP_MULTICAST_IF) and relays message bytes.
 * `open` is answered later through `SyncDaemons.relayOpened`; `send` hands the bytes over (true) and
 * a send the kernel then refuses is counted in `shared` (RELAY slots), as are the receive drops.
 */
export interface SyncRelay {
  open(state: 'master' | 'backup', d: DaemonEntry): void;
  close(state: 'master' | 'backup'): void;
  send(msg: Uint8Array): boolean;
  readonly shared?: Int32Array | null;
}

interface MasterRun {
  entry: DaemonEntry;
  master: SyncMaster;
  /** Owned port index, -1 for a kernel interface (relayed). */
  port: number;
  group: number;
  sport: number;
}

interface BackupRun {
  entry: DaemonEntry;
  backup: SyncBackup;
  port: number;
  lp: LocalProtocol | null;
}

const UDP_HDR = 8;
/** The largest sync message: 65535 - IPv4 and UDP headers. */
const MAX_MSG = 65535 - SYNC_HDR_OVERHEAD;

function kernelMtu(ifname: string): number | undefined {
  if (!/^[^/\0]{1,15}$/.test(ifname) || ifname === '.' || ifname === '..') return undefined;
  const dir = `/sys/class/net/${ifname}`;
  if (!existsSync(dir)) return undefined;
  try {
    return Number(readFileSync(`${dir}/mtu`, 'utf8').trim()) || 1500;
  } catch {
    return 1500;
  }
}

/**
 * The master and backup daemons of a director (both may run at once, as in the kernel). On an owned
 * interface the messages are UDP datagrams tsvsd builds and receives itself (LocalProtocol,
 * sendDatagram); on a kernel interface they go through the `relay`.
 */
export class SyncDaemons {
  master: MasterRun | null = null;
  backup: BackupRun | null = null;
  readonly sysctl: SyncSysctls = { ...SYNC_SYSCTL_DEFAULTS };
  private readonly tx = new Uint8Array(UDP_HDR + 65535);
  /** Counters of stopped daemons, so totals never go backwards. */
  private readonly past = new Map<string, number>();
  /** The VRRP instance whose state the configured daemon follows (keepalived's lvs_sync_daemon), if any. */
  follows: string | null = null;
  /** The sync_maxlen each role was started with (0 = default), for a role switch. */
  private readonly requestedMaxlen = new Map<string, number>();
  /** Datagrams for our group the backup could not use (not UDP-sane, own, unicast, fragments). */
  private readonly rxBad = new Float64Array(SR.COUNT);
  /** Roles on a kernel interface whose sockets the main thread has not confirmed yet. */
  private readonly awaiting = new Set<'master' | 'backup'>();

  constructor(
    private readonly ipvs: Ipvs,
    private readonly dir: Director,
    private readonly portOf: (ifname: string) => number | undefined,
    private readonly log: Log,
    private readonly relay: SyncRelay | null = null,
  ) {}

  /** --start-daemon: EEXIST when that role runs, ENODEV for an unknown interface; nothing changes on error. */
  start(c: DaemonConfig): DaemonEntry {
    const state = c.state;
    if ((state === 'master' ? this.master : this.backup) !== null) throw new IpvsError('EEXIST', 'start-daemon');
    const ifname = c.mcastIfn;
    const port = this.portOf(ifname) ?? -1;
    let mtu: number;
    if (port >= 0) mtu = this.dir.ports[port]!.mtu;
    else {
      const m = this.relay !== null ? kernelMtu(ifname) : undefined;
      if (m === undefined) throw new IpvsError('ENODEV', 'start-daemon');
      mtu = m;
      // The kernel binds the master to inet_select_addr and only logs when there is none; then
      // IP_MULTICAST_IF, membership and the source all fall back to the default interface. Refused.
      if (kernelIfAddress(ifname) === undefined) {
        throw new IpvsError('EINVAL', 'other', `start-daemon: interface ${ifname} has no IPv4 address; give it one (the sync socket binds it)`);
      }
    }
    let group = SYNC_GROUP;
    if (c.mcastGroup !== '') {
      group = ipToU32(c.mcastGroup);
      // IPv6 groups parse as NaN: tsvsd's sync is IPv4 only.
      if (Number.isNaN(group)) throw new IpvsError('EAFNOSUPPORT', 'start-daemon');
      if (group >>> 28 !== 0xe) throw new IpvsError('EINVAL', 'start-daemon');
    }
    const mport = c.mcastPort || SYNC_PORT;
    const ttl = c.mcastTtl || 1;
    // start_sync_thread: the master defaults to a 1500-byte MTU, the backup to its interface's.
    const devMtu = state === 'backup' ? Math.min(Math.max(mtu, 1500), 65535) : 1500;
    const minLen = state === 'backup' ? 1024 : 1;
    let maxlen = c.syncMaxlen ? Math.min(Math.max(c.syncMaxlen, minLen), MAX_MSG) : devMtu - SYNC_HDR_OVERHEAD;
    // tsvsd builds an owned interface's frames itself and does not fragment: a master's messages fit
    // the device MTU (the kernel would let IP fragment them).
    if (state === 'master' && port >= 0) maxlen = Math.min(maxlen, mtu - SYNC_HDR_OVERHEAD);
    const entry: DaemonEntry = { state, mcastIfn: ifname, syncid: c.syncid, maxlen, group: u32ToIp(group), port: mport, ttl };
    let lp: LocalProtocol | null = null;
    if (state === 'backup' && port >= 0) {
      lp = { proto: 17, udpPort: mport, port, groups: [group], deliver: (pt, buf, p) => this.deliver(pt, buf, p),
        fragment: () => this.rxBad[SR.FRAGMENT]!++ };
      // Joins the group's MAC on the NIC; a refusal throws before anything is started.
      this.dir.addLocalProtocol(lp);
    }
    this.requestedMaxlen.set(state, c.syncMaxlen);
    if (port < 0) {
      this.awaiting.add(state);
      this.relay!.open(state, entry);
    }
    if (state === 'master') {
      const master = new SyncMaster(this.ipvs.conns, c.syncid, maxlen, this.sysctl);
      // An ephemeral source port, as the kernel's unbound-port send socket gets.
      const sport = 32768 + Math.floor(Math.random() * 28232);
      this.master = { entry, master, port, group, sport };
      this.ipvs.sync = master;
      this.ipvs.syncThreshold = this.sysctl.threshold;
      if (port >= 0 && this.dir.sourceFor(port) === 0) {
        this.log('warn', `sync master on ${ifname}: the interface has no address yet; messages leave from 0.0.0.0 until it has one`);
      }
    } else {
      const backup = new SyncBackup(this.ipvs, c.syncid);
      this.backup = { entry, backup, port, lp };
    }
    this.log('info', `sync thread started: state = ${state.toUpperCase()}, mcast_ifn = ${ifname}, syncid = ${c.syncid}`, { ...entry });
    return entry;
  }

  /**
   * keepalived's ipvs_syncd_master / ipvs_syncd_backup: when the instance the daemon follows becomes
   * MASTER the backup daemon stops and a master starts with the same settings; when it leaves MASTER,
   * the reverse. Returns the role now running, or null when `instance` is not followed.
   */
  vrrpState(instance: string, state: 'MASTER' | 'BACKUP' | 'FAULT'): 'master' | 'backup' | null {
    if (this.follows !== instance) return null;
    const want = state === 'MASTER' ? 'master' : 'backup';
    const other = want === 'master' ? this.backup : this.master;
    if ((want === 'master' ? this.master : this.backup) !== null) return want;
    if (other === null) return null;
    const e = other.entry;
    this.stop(e.state);
    this.start({ state: want, mcastIfn: e.mcastIfn, syncid: e.syncid, syncMaxlen: this.requestedMaxlen.get(e.state) ?? 0,
      mcastGroup: e.group, mcastPort: e.port, mcastTtl: e.ttl });
    return want;
  }

  /** Whether the role's kernel-interface sockets are still being opened (its start is not confirmed). */
  awaitingRelay(state: 'master' | 'backup'): boolean {
    return this.awaiting.has(state);
  }

  /**
   * The main thread opened the role's sockets (error null) or could not: then the role stops again,
   * as if it had never started. Returns whether the role runs.
   */
  relayOpened(state: 'master' | 'backup', error: string | null): boolean {
    if (!this.awaiting.delete(state)) return false;
    if (error === null) return true;
    this.log('error', `sync ${state} daemon not started: ${error}`);
    if ((state === 'master' ? this.master : this.backup) !== null) this.stop(state);
    return false;
  }

  /** --stop-daemon: ESRCH when that role is not running. Pending master messages are discarded, as the kernel does. */
  stop(state: 'master' | 'backup'): void {
    this.awaiting.delete(state);
    if (state === 'master') {
      const m = this.master;
      if (m === null) throw new IpvsError('ESRCH', 'stop-daemon');
      this.keep('master', SM_NAMES, m.master.counts);
      this.ipvs.sync = null;
      this.master = null;
      if (m.port < 0) this.relay?.close('master');
    } else {
      const b = this.backup;
      if (b === null) throw new IpvsError('ESRCH', 'stop-daemon');
      this.keep('backup', SB_NAMES, b.backup.counts);
      this.keep('backup_drop', SR_NAMES, b.backup.drops);
      if (b.lp) this.dir.removeLocalProtocol(b.lp);
      this.backup = null;
      if (b.port < 0) this.relay?.close('backup');
    }
    this.log('info', `stopping ${state} sync thread`);
  }

  private keep(prefix: string, names: readonly string[], a: Float64Array): void {
    names.forEach((n, i) => this.past.set(`${prefix}_${n}`, (this.past.get(`${prefix}_${n}`) ?? 0) + a[i]!));
  }

  /** -L --daemon: master first. */
  list(): DaemonEntry[] {
    const out: DaemonEntry[] = [];
    if (this.master) out.push({ ...this.master.entry });
    if (this.backup) out.push({ ...this.backup.entry });
    return out;
  }

  /** Counters by name: master_*, backup_*, backup_drop_<reason> (totals across restarts). */
  counters(): Record<string, number> {
    const r: Record<string, number> = {};
    const add = (prefix: string, names: readonly string[], a: Float64Array | undefined) =>
      names.forEach((n, i) => (r[`${prefix}_${n}`] = (this.past.get(`${prefix}_${n}`) ?? 0) + (a?.[i] ?? 0)));
    add('master', SM_NAMES, this.master?.master.counts);
    add('backup', SB_NAMES, this.backup?.backup.counts);
    const drops = new Float64Array(SR.COUNT);
    for (let i = 0; i < SR.COUNT; i++) drops[i] = (this.backup?.backup.drops[i] ?? 0) + this.rxBad[i]!;
    const sh = this.relay?.shared;
    if (sh) {
      drops[SR.QUEUE_FULL]! += Atomics.load(sh, RELAY.RX_QUEUE_FULL);
      drops[SR.OTHER_IF]! += Atomics.load(sh, RELAY.RX_OTHER_IF);
      // Relayed messages count as sent when handed over; those the kernel then refused move here.
      const failed = Atomics.load(sh, RELAY.TX_FAILED);
      r.master_messages! -= failed;
      r.master_send_failed! += failed;
    }
    add('backup_drop', SR_NAMES, drops);
    return r;
  }

  /** Timer work: the master's due messages. */
  tick(now: number): void {
    const m = this.master;
    if (m === null) return;
    let sent = 0;
    m.master.tick(now, (msg) => {
      if (++sent % 16 === 0) this.dir.flush();
      return this.sendMessage(m, msg);
    });
  }

  private sendMessage(m: MasterRun, msg: Uint8Array): boolean {
    if (m.port < 0) return this.relay!.send(msg);
    const src = this.dir.sourceFor(m.port);
    const len = UDP_HDR + msg.length;
    const u = this.tx;
    u[0] = m.sport >>> 8;
    u[1] = m.sport & 0xff;
    u[2] = m.entry.port >>> 8;
    u[3] = m.entry.port & 0xff;
    u[4] = len >>> 8;
    u[5] = len & 0xff;
    u[6] = 0;
    u[7] = 0;
    u.set(msg, UDP_HDR);
    let c = ~csumFold(sum16(u, 0, len, pseudoSum(src, m.group, 17, len))) & 0xffff;
    if (c === 0) c = 0xffff;
    u[6] = c >>> 8;
    u[7] = c & 0xff;
    return this.dir.sendDatagram(m.port, src, m.group, 17, m.entry.ttl, u.subarray(0, len));
  }

  /** A datagram for our group and port on the backup's owned interface. */
  private deliver(_port: number, buf: Uint8Array, p: ParsedFrame): void {
    const b = this.backup;
    if (b === null) return;
    if (this.dir.isLocal(p.saddr)) {
      this.rxBad[SR.OWN]!++;
      return;
    }
    const l4 = p.l4;
    const ulen = (buf[l4 + 4]! << 8) | buf[l4 + 5]!;
    if (p.daddr !== b.lp!.groups[0] || ulen < UDP_HDR || l4 + ulen > p.ipEnd) {
      this.rxBad[SR.BAD_DATAGRAM]!++;
      return;
    }
    if (ulen - UDP_HDR > b.entry.maxlen) {
      this.rxBad[SR.TOO_LONG]!++;
      return;
    }
    // A partial checksum (NEEDS_CSUM from a local sender) is the kernel's to finish, and trusted as it does.
    if ((p.flags & PF.NEEDS_CSUM) === 0 && !l4ChecksumOk(buf, p.l3, l4, l4 + ulen, 17)) {
      this.rxBad[SR.BAD_DATAGRAM]!++;
      return;
    }
    b.backup.receive(buf, l4 + UDP_HDR, ulen - UDP_HDR);
  }

  /** Message bytes the relay received on a kernel interface. */
  receiveRelayed(msg: Uint8Array): void {
    const sh = this.relay?.shared;
    if (sh) Atomics.sub(sh, RELAY.RX_INFLIGHT, 1);
    const b = this.backup;
    if (b === null || b.port >= 0) return;
    if (msg.length > b.entry.maxlen) {
      this.rxBad[SR.TOO_LONG]!++;
      return;
    }
    b.backup.receive(msg, 0, msg.length);
  }
}
