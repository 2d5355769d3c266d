// FullNAT local-address control (DPVS's --add-laddr / --del-laddr / --get-laddr): service pools, director ownership, listing.
import { IpvsError } from '../ctl/errors.ts';
import type { LaddrEntry } from '../ctl/protocol.ts';
import type { Director } from '../dp/director.ts';
import { u32ToIp } from '../lib/inet.ts';
import type { Lip } from './laddr.ts';
import type { Ipvs, IpvsService } from './service.ts';
import { IPPROTO_TCP, IPPROTO_UDP } from './types.ts';
import type { SnatRule } from './snat.ts';

/**
 * Binds an Ipvs's LIPs to a Director: a LIP is one of the director's own /32 addresses (so it answers
 * ARP and the real servers' replies arrive at INPUT) from the first service that lists it until the
 * last conn holding one of its ports is gone. An address the director already owned (a DIP used as
 * LIP) stays owned afterwards.
 */
export class LaddrControl {
  /** LIPs whose address this control added to the director (and so removes when forgotten). */
  private readonly added = new Set<number>();

  constructor(
    private readonly ipvs: Ipvs,
    private readonly dir: Director,
    private readonly portOf: (ifname: string) => number | undefined,
  ) {
    ipvs.laddrs.onForget = (l) => {
      if (this.added.delete(l.addr)) this.dir.delAddress(l.addr);
    };
  }

  /** --add-laddr: EEXIST when the service lists it already; the interface defaults to the route's. */
  add(svc: IpvsService, addr: number, ifname: string): void {
    addr >>>= 0;
    if (svc.proto !== IPPROTO_TCP && svc.proto !== IPPROTO_UDP) throw new IpvsError('EOPNOTSUPP', 'other', 'local addresses are for TCP and UDP services');
    if (svc.laddrs.lips.some((l) => l.addr === addr)) throw new IpvsError('EEXIST', 'other', 'local address already exists');
    if (addr === 0 || addr === 0xffffffff || addr >>> 28 >= 0xe) throw new IpvsError('EINVAL', 'other', 'local address must be unicast');
    const lip = this.own(addr, this.portFor(addr, ifname), ifname);
    lip.refs++;
    svc.laddrs.lips.push(lip);
  }

  /** The director port an address lives on: `ifname`'s, or the one its route uses. */
  private portFor(addr: number, ifname: string): number {
    if (ifname !== '') {
      const p = this.portOf(ifname);
      if (p === undefined) throw new IpvsError('ENODEV', 'other', `interface ${ifname} is not owned by this director`);
      return p;
    }
    const r = this.dir.routes.lookup(addr);
    if (r === undefined) throw new IpvsError('EINVAL', 'other', `no interface for local address ${u32ToIp(addr)}: give -F interface`);
    return r.port;
  }

  /** The LIP for `addr` on `port`, the director owning the address from now on. */
  private own(addr: number, port: number, ifname: string): Lip {
    const existing = this.ipvs.laddrs.get(addr);
    if (existing !== undefined && existing.port !== port) {
      throw new IpvsError('EINVAL', 'other', `local address ${u32ToIp(addr)} is already used on ${this.dir.ports[existing.port]!.ifname}`);
    }
    const lip = this.ipvs.laddrs.obtain(addr, port, ifname);
    if (!this.dir.isLocal(addr)) {
      this.dir.addAddress(addr, 32, port);
      this.added.add(addr);
    }
    return lip;
  }

  /** --del-laddr: new conns stop using it; conns holding its ports keep it until they end. */
  del(svc: IpvsService, addr: number): void {
    addr >>>= 0;
    const i = svc.laddrs.lips.findIndex((l) => l.addr === addr);
    if (i < 0) throw new IpvsError('ENOENT', 'other', 'no such local address');
    const lip = svc.laddrs.lips[i]!;
    svc.laddrs.lips.splice(i, 1);
    lip.refs--;
    this.ipvs.laddrs.forgetIfUnused(lip);
  }

  /**
   * A SNAT rule: connections real servers in prefix/len open leave from `addr` (owned by the director
   * on `ifname`, or the interface its route uses), each with a port of its pool.
   */
  addSnat(rules: SnatRule[], prefix: number, len: number, addr: number, ifname: string): void {
    if (!Number.isInteger(len) || len < 0 || len > 32) throw new IpvsError('EINVAL', 'other', 'SNAT source prefix length must be 0..32');
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    const pfx = (prefix & mask) >>> 0;
    if (rules.some((r) => r.prefix === pfx && r.mask === mask)) throw new IpvsError('EEXIST', 'other', 'SNAT rule for this source already exists');
    const port = this.portFor(addr >>> 0, ifname);
    const lip = this.own(addr >>> 0, port, ifname);
    lip.refs++;
    rules.push({ prefix: pfx, mask, len, lip });
  }

  /** --get-laddr rows of one service. */
  list(svc: IpvsService): LaddrEntry[] {
    return svc.laddrs.lips.map((l: Lip) => ({
      addr: u32ToIp(l.addr),
      ifname: l.ifname,
      conns: l.conns,
      conflicts: l.conflicts,
      available: l.available,
    }));
  }
}
