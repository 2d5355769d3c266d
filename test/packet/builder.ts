// Test-only frame builder: readable field-by-field construction of vnet+Ethernet/IP/TCP/UDP/ICMP/ARP frames.
// It computes checksums with its own straightforward code so tests do not check src/packet against itself.

export function ip(s: string): number {
  const p = s.split('.').map(Number);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

/** IPv6 text → 16 bytes (its own small parser: hex groups, one "::", no embedded dotted quad). */
export function ip6(s: string): number[] {
  const [h, t] = s.includes('::') ? s.split('::') : [s, undefined];
  const g = (x: string | undefined) => (x ? x.split(':').map((v) => parseInt(v, 16)) : []);
  const head = g(h);
  const tail = g(t);
  const groups = t === undefined ? head : [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
  if (groups.length !== 8) throw new Error(`bad IPv6 address in test: ${s}`);
  return groups.flatMap((v) => [v >> 8, v & 0xff]);
}

/** IPv6 text → four host-order words (what src/packet's IPv6 functions take). */
export function ip6w(s: string): Uint32Array {
  const b = ip6(s);
  const out = new Uint32Array(4);
  for (let i = 0; i < 4; i++) out[i] = ((b[4 * i]! << 24) | (b[4 * i + 1]! << 16) | (b[4 * i + 2]! << 8) | b[4 * i + 3]!) >>> 0;
  return out;
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
export interface Ipv6Spec {
  src?: string;
  dst?: string;
  hopLimit?: number;
  tclass?: number;
  flowLabel?: number;
  ext?: ExtSpec[];
  nextHeader?: number; // override of the fixed header's next header
  payloadLen?: number; // override
  version?: number; // override
}
/** One extension header, in chain order; the builder fills in each one's next-header byte. */
export type ExtSpec =
  | { type: 'hop' | 'dest'; units?: number } // (units + 1) * 8 bytes of PadN options
  | { type: 'routing'; segmentsLeft?: number; units?: number; routingType?: number }
  | { type: 'frag'; offset?: number; more?: boolean; id?: number }
  | { type: 'ah'; len?: number } // AH payload-length field: (len + 2) * 4 bytes
  | { type: 'raw'; nh: number; bytes: number[] }; // any header, bytes[0] overwritten with the next header
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
  private l3: { kind: 'ipv4'; spec: Ipv4Spec } | { kind: 'arp'; spec: ArpSpec } | { kind: 'ipv6'; spec: Ipv6Spec } | { kind: 'raw'; type: number } | null = null;
  private l4: { kind: 'tcp'; spec: TcpSpec } | { kind: 'udp'; spec: UdpSpec } | { kind: 'icmp' | 'icmp6'; spec: IcmpSpec } | null = null;
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
  ipv6(spec: Ipv6Spec = {}): this {
    this.l3 = { kind: 'ipv6', spec };
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
  /** ICMPv6: its checksum covers the IPv6 pseudo-header. */
  icmp6(spec: IcmpSpec): this {
    this.l4 = { kind: 'icmp6', spec };
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
    if (l3.kind === 'ipv6') return out.concat(this.ipv6Bytes(l3.spec));
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
    const sa = ip(s.src ?? '198.18.0.2');
    const da = ip(s.dst ?? '198.18.1.100');
    const l4 = this.l4Bytes((proto, len) => (sa >>> 16) + (sa & 0xffff) + (da >>> 16) + (da & 0xffff) + proto + len);
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

  private l4Proto(): number {
    const l = this.l4;
    return l === null ? 59 : l.kind === 'tcp' ? 6 : l.kind === 'udp' ? 17 : l.kind === 'icmp6' ? 58 : 1;
  }

  /** Bytes of the extension headers, each one's next-header byte pointing at the following one. */
  private extBytes(spec: Ipv6Spec, upper: number): { first: number; bytes: number[] } {
    const ext = spec.ext ?? [];
    const code = (e: ExtSpec): number => {
      if (e.type === 'raw') return e.nh;
      return { hop: 0, dest: 60, routing: 43, frag: 44, ah: 51 }[e.type];
    };
    const codes = ext.map(code);
    const bytes: number[] = [];
    ext.forEach((e, i) => {
      const next = i + 1 < ext.length ? codes[i + 1]! : upper;
      let h: number[];
      if (e.type === 'hop' || e.type === 'dest') {
        const u = e.units ?? 0;
        h = [next, u, 1, u * 8 + 4, ...new Array(u * 8 + 4).fill(0)]; // one PadN option filling the header
      } else if (e.type === 'routing') {
        const u = e.units ?? 2;
        h = [next, u, e.routingType ?? 4, e.segmentsLeft ?? 0, ...new Array(u * 8 + 4).fill(0)];
      } else if (e.type === 'frag') {
        const fo = ((e.offset ?? 0) & 0xfff8) | (e.more ? 1 : 0);
        const id = e.id ?? 0x01020304;
        h = [next, 0, fo >> 8, fo & 0xff, id >>> 24, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff];
      } else if (e.type === 'ah') {
        const l = e.len ?? 4;
        h = [next, l, 0, 0, ...new Array((l + 2) * 4 - 4).fill(0x11)];
      } else if (e.type === 'raw') {
        h = [next, ...e.bytes.slice(1)];
      } else {
        h = [];
      }
      bytes.push(...h);
    });
    return { first: ext.length ? codes[0]! : upper, bytes };
  }

  private ipv6Bytes(s: Ipv6Spec): number[] {
    const src = ip6(s.src ?? '2001:db8::2');
    const dst = ip6(s.dst ?? '2001:db8:1::100');
    const { first, bytes: ext } = this.extBytes(s, this.l4Proto());
    const words = (b: number[]) => b.reduce((acc, _, i) => (i % 2 ? acc : acc + ((b[i]! << 8) | b[i + 1]!)), 0);
    const l4 = this.l4Bytes((proto, len) => words(src) + words(dst) + Math.floor(len / 65536) + (len & 0xffff) + proto);
    const plen = s.payloadLen ?? ext.length + l4.length;
    const tc = s.tclass ?? 0;
    const fl = s.flowLabel ?? 0;
    const h = [
      ((s.version ?? 6) << 4) | (tc >> 4), ((tc & 0xf) << 4) | ((fl >> 16) & 0xf), (fl >> 8) & 0xff, fl & 0xff,
      plen >> 8, plen & 0xff, s.nextHeader ?? first, s.hopLimit ?? 64,
      ...src, ...dst,
    ];
    return h.concat(ext, l4);
  }

  private l4Bytes(pseudoOf: (proto: number, len: number) => number): number[] {
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
      if (l.kind === 'icmp6') {
        let c = this.partial ? refSum([], 0, 0, pseudoOf(58, b.length)) : ~refSum(b, 0, b.length, pseudoOf(58, b.length)) & 0xffff;
        if (this.badL4) c ^= 0x0101;
        b[2] = c >> 8;
        b[3] = c & 0xff;
        return b;
      }
      let c = ~refSum(b) & 0xffff;
      if (this.badL4) c ^= 0x0101;
      b[2] = c >> 8;
      b[3] = c & 0xff;
      return b;
    }
    const pseudo = pseudoOf(proto, b.length);
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
    if (this.partial && this.l3?.kind === 'ipv6' && this.l4 !== null && this.l4.kind !== 'icmp') {
      const ehl = this.ethSpec.vlan !== undefined ? 18 : 14;
      const extLen = this.extBytes(this.l3.spec, 0).bytes.length;
      v.flags = (v.flags ?? 0) | 1;
      v.csumStart ??= ehl + 40 + extLen;
      v.csumOffset ??= this.l4.kind === 'tcp' ? 16 : this.l4.kind === 'udp' ? 6 : 2;
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

/** Arbitrary for fuzzing: one of `seeds`, cut at a random length, with up to six random bytes replaced. */
export function mutatedSeed(fc: typeof import('fast-check').default, seeds: readonly Uint8Array[]) {
  return fc
    .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat())
    .map(([seed, muts, cut]) => {
      const bytes = seed.slice(0, seed.length - (cut % (seed.length + 1)));
      for (const [i, v] of muts) if (bytes.length) bytes[i % bytes.length] = v;
      return bytes;
    });
}
