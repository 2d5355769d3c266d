// What the fast path should do for one direction of a connection, derived from the director's state as the TS transmitters would.
import type { Director } from '../dp/director.ts';
import type { ConnTable } from '../ipvs/conn.ts';
import { CONN_F } from '../ipvs/conn.ts';
import { Fwd } from '../ipvs/types.ts';
import { METHOD, type FastEntry } from './layout.ts';

/** The client → real server direction (key: CIP, VIP, cport, vport) or the NAT reply (key: RIP, CIP, rport, cport). */
export type Side = 'in' | 'out';

/**
 * Fills `out` with the entry for `side` of conn `i`: the rewrite of its transmitter (NAT: the
 * conn's RIP:rport in, VIP:vport out; DR: none; TUN: DIP → RIP), the egress port and next hop the
 * director's `output()` would pick (the route of the new destination, its gateway when it has one),
 * that neighbour's MAC (while the TS path would use it) and the port's own. Returns null, changing nothing the caller relies on, when
 * the fast path must leave the direction to the TS path: a method it does not execute (local, bypass;
 * a reply of a non-NAT conn), a VIP that is not (or no longer) one of the director's addresses, no
 * route, a next hop not resolved (Reachable) on that port, or an address the TS path would need to
 * answer itself. `ifindexOf(port)` gives the kernel ifindex of a port.
 */
export function fastEntryFor(dir: Director, ct: ConnTable, i: number, side: Side, ifindexOf: (port: number) => number, out: FastEntry): FastEntry | null {
  const fwd = ct.flags[i]! & CONN_F.FWD_MASK;
  let dst: number;
  let forward = false;
  if (side === 'out') {
    if (fwd !== Fwd.Masq) return null;
    out.method = METHOD.NAT_OUT;
    out.addr = ct.vaddr[i]!;
    out.port = ct.vport[i]!;
    dst = ct.caddr[i]!;
    forward = true;
    // A reply to a local address is the director's own traffic, not FORWARD's.
    if (dir.isLocal(dst)) return null;
  } else {
    dst = ct.daddr[i]!;
    // Client frames are IPVS's only while the VIP is the director's (the TS path's INPUT hook): a
    // director VRRP made BACKUP released it and must not go on forwarding frames still sent to it.
    if (!dir.isLocal(ct.vaddr[i]!)) return null;
    if (fwd === Fwd.Masq) {
      out.method = METHOD.NAT_IN;
      out.addr = ct.daddr[i]!;
      out.port = ct.dport[i]!;
    } else if (fwd === Fwd.Route) {
      out.method = METHOD.DR;
      out.addr = 0;
      out.port = 0;
    } else if (fwd === Fwd.Tunnel) {
      out.method = METHOD.TUN;
      out.addr = 0;
      out.port = 0;
    } else {
      return null;
    }
  }
  const r = dir.routes.lookup(dst);
  if (r === undefined) return null;
  const port = r.port;
  const hop = r.gateway !== 0 ? r.gateway : dst;
  // The MAC the TS path would use now (Reachable, or Stale while re-probed), on the route's port. This
  // is also the fast path's use of the neighbour: refresh() calls it every second for every entry, so
  // the neighbour ages and is re-probed as if the TS path sent to it.
  const n = dir.neigh.usable(hop, dir.clock);
  if (n === undefined || n.port !== port) return null;
  const p = dir.ports[port]!;
  out.forward = forward;
  out.mtu = p.mtu;
  out.ifindex = ifindexOf(port);
  out.dmac = n.mac;
  out.smac = p.mac;
  if (out.method === METHOD.TUN) {
    out.tunSaddr = dir.sourceFor(port);
    out.tunDaddr = dst;
    if (out.tunSaddr === 0) return null;
  } else {
    out.tunSaddr = 0;
    out.tunDaddr = 0;
  }
  return out;
}

/** A FastEntry to fill (the MACs are replaced by references to the neighbour's and port's arrays). */
export function newFastEntry(): FastEntry {
  return { method: METHOD.DR, forward: false, mtu: 0, ifindex: 0, addr: 0, port: 0, dmac: new Uint8Array(6), smac: new Uint8Array(6), tunSaddr: 0, tunDaddr: 0 };
}
