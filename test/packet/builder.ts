// Test-only frame builder: readable field-by-field construction of vnet+Ethernet/IP/TCP/UDP/ICMP/ARP frames.
// It computes checksums with its own straightforward code so tests do not check src/packet against itself.

export function ip(s: string): number {
  const p = s.split('.').map(Number);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

export function mac(s: string): Uint8Array {
  return Uint8Array.from(s.split(':').map((h) => parseInt(h, 16)));
}

/** One's-complement sum of bytes as big-endian words, folded, not complemented. */
export function refSum(bytes: ArrayLike<number>, start = 0, end = bytes.length, init = 0): number {
  let s = init;
  for (let i = start; i < end; i += 2) s += (bytes[i]! << 8) + (i + 1 < end ? bytes[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

export interface VnetSpec {
  flags?: number;
  gsoType?: number;
  hdrLen?: number;
  gsoSize?: number;
  csumStart?: number;
  csumOffset?: number;
}
export interface EthSpec {
  dst?: string;
  src?: string;
  vlan?: number; // TCI; adds an 802.1Q tag
  type?: number; // override ethertype
}
export interface Ipv4Spec {
  src?: string;
  dst?: string;
  ttl?: number;
  tos?: number;
  id?: number;
  df?: boolean;
  mf?: boolean;
  fragOff?: number; // bytes, multiple of 8
  options?: number[]; // raw option bytes, padded to 4 by the builder
  proto?: number; // override
  ihl?: number; // override (words)
  totLen?: number; // override
  version?: number; // override
  badChecksum?: boolean;
}
export interface TcpSpec {
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  window?: number;
  doff?: number; // override (words)
}
export interface UdpSpec {
  sport?: number;
  dport?: number;
  len?: number; // override
  zeroChecksum?: boolean;
}
export interface IcmpSpec {
  type: number;
  code?: number;
  rest?: number; // 32-bit rest of header (id<<16|seq for echo, MTU for frag-needed)
}
export interface ArpSpec {
  op: number;
  sha: string;
  spa: string;
  tha?: string;
  tpa: string;
}

export interface BuiltFrame {
  buf: Uint8Array;
  /** Start of the vnet header. */
  off: number;
  /** Bytes from off, vnet header included. */
  len: number;
}

export class PacketBuilder {
  private vnetSpec: VnetSpec = {};
  private ethSpec: EthSpec = {};
  private l3: { kind: 'ipv4'; spec: Ipv4Spec } | { kind: 'arp'; spec: ArpSpec } | { kind: 'ipv6' } | { kind: 'raw'; type: number } | null = null;
  private l4: { kind: 'tcp'; spec: TcpSpec } | { kind: 'udp'; spec: UdpSpec } | { kind: 'icmp'; spec: IcmpSpec } | null = null;
  private data: number[] = [];
  private partial = false;
  private badL4 = false;

  vnet(spec: VnetSpec): this {
    this.vnetSpec = spec;
    return this;
  }
  eth(spec: EthSpec = {}): this {
    this.ethSpec = spec;
    return this;
  }
  ipv4(spec: Ipv4Spec = {}): this {
    this.l3 = { kind: 'ipv4', spec };
    return this;
  }
  ipv6(): this {
    this.l3 = { kind: 'ipv6' };
    return this;
  }
  ethertype(type: number): this {
    this.l3 = { kind: 'raw', type };
    return this;
  }
  arp(spec: ArpSpec): this {
    this.l3 = { kind: 'arp', spec };
    return this;
  }
  tcp(spec: TcpSpec = {}): this {
    this.l4 = { kind: 'tcp', spec };
    return this;
  }
  udp(spec: UdpSpec = {}): this {
    this.l4 = { kind: 'udp', spec };
    return this;
  }
  icmp(spec: IcmpSpec): this {
    this.l4 = { kind: 'icmp', spec };
    return this;
  }
  payload(bytes: ArrayLike<number>): this {
    this.data = Array.from(bytes);
    return this;
  }
  /** Make the TCP/UDP checksum partial: NEEDS_CSUM in the vnet header and the pseudo-header seed in the field. */
  partialChecksum(): this {
    this.partial = true;
    return this;
  }
  /** Corrupt the L4 checksum. */
  badL4Checksum(): this {
    this.badL4 = true;
    return this;
  }

  /** The bytes from the Ethernet header on. */
  ethBytes(): number[] {
    const e = this.ethSpec;
    const out: number[] = [...mac(e.dst ?? '02:00:00:00:01:01'), ...mac(e.src ?? '02:00:00:00:02:02')];
    if (e.vlan !== undefined) out.push(0x81, 0x00, e.vlan >> 8, e.vlan & 0xff);
    const l3 = this.l3;
    const type = e.type ?? (l3 === null ? 0x0800 : l3.kind === 'ipv4' ? 0x0800 : l3.kind === 'arp' ? 0x0806 : l3.kind === 'ipv6' ? 0x86dd : l3.type);
    out.push(type >> 8, type & 0xff);
    if (l3 === null || l3.kind === 'raw') return out.concat(this.data);
    if (l3.kind === 'ipv6') {
      const h = [0x60, 0, 0, 0, 0, this.data.length, 59, 64, ...new Array(32).fill(0)];
      return out.concat(h, this.data);
    }
    if (l3.kind === 'arp') {
      const a = l3.spec;
      const u32 = (v: number) => [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
      return out.concat(
        [0, 1, 8, 0, 6, 4, 0, a.op],
        [...mac(a.sha)], u32(ip(a.spa)), [...mac(a.tha ?? '00:00:00:00:00:00')], u32(ip(a.tpa)),
      );
    }
    const s = l3.spec;
    const opts = [...(s.options ?? [])];
    while (opts.length % 4) opts.push(0);
    const ihl = s.ihl ?? 5 + opts.length / 4;
    const l4 = this.l4Bytes(ip(s.src ?? '198.18.0.2'), ip(s.dst ?? '198.18.1.100'));
    const proto = s.proto ?? (this.l4 === null ? 253 : this.l4.kind === 'tcp' ? 6 : this.l4.kind === 'udp' ? 17 : 1);
    const totLen = s.totLen ?? 20 + opts.length + l4.length;
    const frag = (s.df ? 0x4000 : 0) | (s.mf ? 0x2000 : 0) | ((s.fragOff ?? 0) >> 3);
    const saddr = ip(s.src ?? '198.18.0.2');
    const daddr = ip(s.dst ?? '198.18.1.100');
    const h = [
      ((s.version ?? 4) << 4) | (ihl & 0xf), s.tos ?? 0, totLen >> 8, totLen & 0xff,
      (s.id ?? 0x1234) >> 8, (s.id ?? 0x1234) & 0xff, frag >> 8, frag & 0xff,
      s.ttl ?? 64, proto, 0, 0,
      saddr >>> 24, (saddr >>> 16) & 0xff, (saddr >>> 8) & 0xff, saddr & 0xff,
      daddr >>> 24, (daddr >>> 16) & 0xff, (daddr >>> 8) & 0xff, daddr & 0xff,
      ...opts,
    ];
    let c = ~refSum(h) & 0xffff;
    if (s.badChecksum) c ^= 0x5a5a;
    h[10] = c >> 8;
    h[11] = c & 0xff;
    return out.concat(h, l4);
  }

  private l4Bytes(saddr: number, daddr: number): number[] {
    const l = this.l4;
    if (l === null) return this.data;
    let b: number[];
    let csumAt: number;
    let proto: number;
    if (l.kind === 'tcp') {
      const t = l.spec;
      const seq = t.seq ?? 1000;
      const ack = t.ack ?? 0;
      b = [
        (t.sport ?? 40000) >> 8, (t.sport ?? 40000) & 0xff, (t.dport ?? 80) >> 8, (t.dport ?? 80) & 0xff,
        seq >>> 24, (seq >>> 16) & 0xff, (seq >>> 8) & 0xff, seq & 0xff,
        ack >>> 24, (ack >>> 16) & 0xff, (ack >>> 8) & 0xff, ack & 0xff,
        (t.doff ?? 5) << 4, t.flags ?? 0x02, (t.window ?? 65535) >> 8, (t.window ?? 65535) & 0xff,
        0, 0, 0, 0,
        ...this.data,
      ];
      csumAt = 16;
      proto = 6;
    } else if (l.kind === 'udp') {
      const u = l.spec;
      const len = u.len ?? 8 + this.data.length;
      b = [(u.sport ?? 40000) >> 8, (u.sport ?? 40000) & 0xff, (u.dport ?? 53) >> 8, (u.dport ?? 53) & 0xff, len >> 8, len & 0xff, 0, 0, ...this.data];
      csumAt = 6;
      proto = 17;
      if (u.zeroChecksum) return b;
    } else {
      const r = l.spec.rest ?? 0;
      b = [l.spec.type, l.spec.code ?? 0, 0, 0, r >>> 24, (r >>> 16) & 0xff, (r >>> 8) & 0xff, r & 0xff, ...this.data];
      let c = ~refSum(b) & 0xffff;
      if (this.badL4) c ^= 0x0101;
      b[2] = c >> 8;
      b[3] = c & 0xff;
      return b;
    }
    const pseudo = (saddr >>> 16) + (saddr & 0xffff) + (daddr >>> 16) + (daddr & 0xffff) + proto + b.length;
    let c: number;
    if (this.partial) {
      c = refSum([], 0, 0, pseudo);
    } else {
      c = ~refSum(b, 0, b.length, pseudo) & 0xffff;
      if (c === 0 && proto === 17) c = 0xffff;
      if (this.badL4) c ^= 0x0101;
    }
    b[csumAt] = c >> 8;
    b[csumAt + 1] = c & 0xff;
    return b;
  }

  /** Builds into a fresh buffer with `headroom` bytes before the vnet header; `truncate` caps len. */
  build(opt: { headroom?: number; tailroom?: number; truncate?: number; pad?: number } = {}): BuiltFrame {
    const ethb = this.ethBytes();
    while (opt.pad !== undefined && ethb.length < opt.pad) ethb.push(0);
    const v = { ...this.vnetSpec };
    if (this.partial && this.l3?.kind === 'ipv4' && (this.l4?.kind === 'tcp' || this.l4?.kind === 'udp')) {
      const ehl = this.ethSpec.vlan !== undefined ? 18 : 14;
      const s = this.l3.spec;
      const ihl = 20 + Math.ceil((s.options?.length ?? 0) / 4) * 4;
      v.flags = (v.flags ?? 0) | 1;
      v.csumStart ??= ehl + ihl;
      v.csumOffset ??= this.l4.kind === 'tcp' ? 16 : 6;
    }
    const vn = [
      v.flags ?? 0, v.gsoType ?? 0, (v.hdrLen ?? 0) & 0xff, (v.hdrLen ?? 0) >> 8, (v.gsoSize ?? 0) & 0xff, (v.gsoSize ?? 0) >> 8,
      (v.csumStart ?? 0) & 0xff, (v.csumStart ?? 0) >> 8, (v.csumOffset ?? 0) & 0xff, (v.csumOffset ?? 0) >> 8,
    ];
    const all = vn.concat(ethb);
    const headroom = opt.headroom ?? 64;
    const len = Math.min(all.length, opt.truncate ?? all.length);
    // The buffer ends at the (possibly truncated) frame, so reading past it would show up as undefined.
    const buf = new Uint8Array(headroom + len + (opt.tailroom ?? 0));
    buf.set(all.slice(0, len), headroom);
    return { buf, off: headroom, len };
  }
}

/** Hex dump helper for failure messages. */
export function hex(b: Uint8Array, off = 0, len = b.length - off): string {
  return Buffer.from(b.subarray(off, off + len)).toString('hex');
}
