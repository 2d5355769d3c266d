// The fast path on a running director: the map, a tcx program and a socket filter per AF_PACKET port, and the cache wired to the conn table.
import type { Port } from '../io/port.ts';
import { AfPacketPort } from '../io/afpacket.ts';
import type { Dataplane } from '../dp/dataplane.ts';
import { countFolded, foldInPkts } from '../ipvs/core.ts';
import { DEST_F, Fwd } from '../ipvs/types.ts';
import { CONN_F } from '../ipvs/conn.ts';
import { BpfHashMap, loadProgram, tcxAttach, attachSocketFilter, detachSocketFilter, closeFd, BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_SOCKET_FILTER } from './bpf.ts';
import { buildTcProgram, TC_ACT } from './tc-prog.ts';
import { buildSockFilter } from './sock-filter.ts';
import { KEY, VALUE } from './layout.ts';
import { FastCache } from './cache.ts';
import { fastEntryFor } from './entry.ts';

/** `tsvsd --fastpath`: auto (where the kernel allows), tc (required: failing to set up is fatal), off. */
export type FastpathMode = 'auto' | 'tc' | 'off';

/** How often the program's counters are folded into the stats (the estimator runs every 2 s). */
const FOLD_MS = 1000;

type Log = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/**
 * The running fast path. `open` sets it up on every AF_PACKET port or not at all: on a kernel or port
 * that cannot take it, `auto` logs one line and returns null (the director runs on the packet-socket
 * path as before), `tc` throws.
 */
export class FastPath {
  readonly cache: FastCache;
  /** Packets and IP bytes the program carried, as folded so far. */
  readonly carried = { packets: 0, bytes: 0 };
  private readonly fds: number[] = [];
  private lastFold = 0;
  private addrGen = 0;
  private lastLogged = 0;
  private closed = false;

  private constructor(
    private readonly dp: Dataplane,
    private readonly map: BpfHashMap,
    fds: number[],
    private restore: () => void,
    private readonly ports: AfPacketPort[],
    private readonly log: Log,
    cacheOf: (self: FastPath) => FastCache,
  ) {
    this.fds = fds;
    this.cache = cacheOf(this);
  }

  static open(mode: FastpathMode, ports: Port[], dp: Dataplane, log: Log): FastPath | null {
    if (mode === 'off') return null;
    const fds: number[] = [];
    let map: BpfHashMap | null = null;
    try {
      const afp = ports.map((p) => (p instanceof AfPacketPort ? p : null));
      const other = ports.find((p, i) => afp[i] === null);
      if (other !== undefined) throw new Error(`interface ${other.ifname} is not an AF_PACKET port (io ${other.kind})`);
      const ct = dp.ipvs.conns;
      // Two keys for a NAT conn; the map is bounded like the conn table (a full map is counted, not fatal).
      map = new BpfHashMap(KEY.SIZE, VALUE.SIZE, Math.min(2 * ct.capacity, 1 << 22), 'tsvs_fast');
      for (const p of afp as AfPacketPort[]) {
        // Punted frames go on to the next tcx program (kernelDrop's drop, when it is there): the
        // packet socket already has them, as without the fast path.
        const prog = loadProgram(BPF_PROG_TYPE_SCHED_CLS, buildTcProgram({ mapFd: map.fd, mac: p.mac, punt: TC_ACT.NEXT }), 'tsvs_fast');
        fds.push(prog);
        fds.push(tcxAttach(prog, p.ifindex, false, true));
        const filter = loadProgram(BPF_PROG_TYPE_SOCKET_FILTER, buildSockFilter({ mapFd: map.fd, mac: p.mac }), 'tsvs_fast_sk');
        fds.push(filter);
        const e = attachSocketFilter(p.fd, filter);
        if (e !== 0) throw new Error(`SO_ATTACH_BPF on ${p.ifname}: errno ${e}`);
      }
      const ifindex = (afp as AfPacketPort[]).map((p) => p.ifindex);
      const dir = dp.director;
      const ipvs = dp.ipvs;
      const m = map;
      const make = (self: FastPath) => new FastCache(m, ct, {
        // TUN stays on the TS path for now: the program hands over the inner packet with its offload
        // state (a partial checksum, a GSO skb), which a kernel IPIP tunnel on the real server takes,
        // but a decapsulator that reads a raw IPIP socket (tsvs realserver's) cannot; the TS path
        // finishes and segments it (docs/fastpath.md).
        entryFor: (i, side, out) => ((ct.flags[i]! & CONN_F.FWD_MASK) === Fwd.Tunnel ? null : fastEntryFor(dir, ct, i, side, (port) => ifindex[port]!, out)),
        count: (i, side, packets, bytes) => {
          countFolded(ipvs, ipvs.destById[ct.dest[i]!], side === 'out', packets, bytes);
          if (side === 'in') foldInPkts(ipvs, i, packets);
          self.carried.packets += packets;
          self.carried.bytes += bytes;
        },
        // While a trace or --pcap runs, every packet stays on the TS path (they see all of them).
        watched: () => dir.tracer.active || dir.pcap !== null,
        mapFull: () => log('warn', `fast path map full (${m.maxEntries} entries): further conns stay on the packet-socket path (counted: "full" in the debug report)`, { fastpath: 'full', maxEntries: m.maxEntries }),
      });
      const fast = new FastPath(dp, map, fds, () => {}, afp as AfPacketPort[], log, make);
      const cache = fast.cache;
      const prevExpire = ct.onExpire;
      ct.onExpire = (i) => {
        if (!cache.onExpire(i)) prevExpire(i);
      };
      ct.onUnhash = (i) => cache.onUnhash(i);
      dp.path.onForwarded = (c) => cache.consider(c);
      fast.restore = () => {
        ct.onExpire = prevExpire;
        ct.onUnhash = null;
        dp.path.onForwarded = null;
      };
      log('info', `fast path on: tcx program and socket filter on ${ports.map((p) => p.ifname).join(', ')}`, { fastpath: 'tc' });
      return fast;
    } catch (e) {
      for (const p of ports) if (p instanceof AfPacketPort) detachSocketFilter(p.fd);
      for (const fd of fds.reverse()) closeFd(fd);
      map?.close();
      const why = (e as Error).message;
      if (mode === 'tc') throw new Error(`--fastpath tc: ${why}`);
      log('warn', `fast path off (the packet-socket path carries everything): ${why.split('; verifier:')[0]}`, { fastpath: 'off' });
      return null;
    }
  }

  /** Timer work: fold the counters; re-derive the entries (neighbours, routes); drop every entry while a trace or --pcap watches. */
  tick(now: number): void {
    const dir = this.dp.director;
    // An address came or went (VRRP released a VIP): re-derive the entries now, not at the next second.
    if (dir.addrGen !== this.addrGen) {
      this.addrGen = dir.addrGen;
      this.lastFold = -Infinity;
    }
    if (now - this.lastFold < FOLD_MS) return;
    this.lastFold = now;
    if (dir.tracer.active || dir.pcap !== null) this.cache.removeAll();
    else this.cache.refresh(); // folds on the way
    if (this.carried.packets !== this.lastLogged) {
      this.lastLogged = this.carried.packets;
      let ring = 0;
      for (const p of this.ports) ring += p.stats().rxFrames;
      const st = this.cache.stats;
      this.log('debug', `fast path: ${this.cache.size} conns in the map, ${this.carried.packets} packets (${this.carried.bytes} bytes) carried; the packet sockets received ${ring} frames; full ${st.full}, errors ${st.errors}`, {
        fastConns: this.cache.size, fastPackets: this.carried.packets, fastBytes: this.carried.bytes, ringFrames: ring, fastFull: st.full, fastErrors: st.errors,
      });
    }
  }

  /** After a control request: entries of conns whose real server is no longer available go (the TS path then decides). */
  revalidate(): void {
    const ipvs = this.dp.ipvs;
    const ct = ipvs.conns;
    this.cache.removeWhere((i) => {
      const d = ipvs.destById[ct.dest[i]!];
      return d === undefined || (d.flags & DEST_F.AVAILABLE) === 0;
    });
  }

  /** Folds the last counters, removes the hooks, detaches and closes everything. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cache.fold();
    this.cache.removeAll();
    this.restore();
    // The packet sockets outlive the fast path only briefly (they close next), but a filter left on
    // would still hold the map: take it off.
    for (const p of this.ports) detachSocketFilter(p.fd);
    for (const fd of this.fds.reverse()) closeFd(fd);
    this.map.close();
  }
}
