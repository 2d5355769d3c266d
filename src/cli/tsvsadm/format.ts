// ipvsadm 1.31's listing formats, byte for byte: titles, service and real-server lines, counters, connections, timeouts.
import type { ConnEntry, DaemonEntry, DestEntry, ListResult, ServiceEntry, Timeouts } from '../../ctl/protocol.ts';
import type { Format } from './args.ts';
import { addrWords, inetPton6, type Names, type ServProto } from './resolve.ts';

/** printf("%-Ns"). */
export function padR(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}
/** printf("%Ns"). */
export function padL(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

/** ipvsadm's print_largenum: 9 columns, abbreviated with K/M/G/T unless --exact. */
export function largenum(i: number, exact: boolean): string {
  if (exact) {
    const s = String(i);
    return padL(s, s.length <= 8 ? 9 : s.length + 1);
  }
  if (i < 1e8) return padL(String(i), 9);
  if (i < 1e9) return padL(String(Math.floor(i / 1e3)), 8) + 'K';
  if (i < 1e11) return padL(String(Math.floor(i / 1e6)), 8) + 'M';
  if (i < 1e14) return padL(String(Math.floor(i / 1e9)), 8) + 'G';
  return padL(String(Math.floor(i / 1e12)), 8) + 'T';
}

const isV6 = (addr: string) => addr.includes(':');

/**
 * addrport_to_anyname: "addr:port", IPv6 in brackets and in inet_ntop's form whatever text the daemon
 * sent; names (host, service) unless numeric. Cut at 59 chars as its 60-byte buffer.
 */
export function addrPort(addr: string, port: number, proto: ServProto | null, names: Names | null): string {
  const v6 = isV6(addr);
  const [o, c] = v6 ? ['[', ']'] : ['', ''];
  const text = v6 ? (inetPton6(addr) ?? addr) : addr;
  if (!names) return `${o}${text}${c}:${port}`.slice(0, 59);
  const host = names.host(addr) ?? text;
  const serv = (proto && names.service(port, proto)) || String(port);
  return `${o}${host}${c}:${serv}`.slice(0, 59);
}

function servProto(svc: ServiceEntry): ServProto | null {
  return svc.key.type === 'fwmark' ? 'tcp' : svc.key.type;
}

/** The service's af: fwmark services say it themselves; others by their address. */
export function svcIsV6(svc: ServiceEntry): boolean {
  return svc.key.type === 'fwmark' ? !!svc.key.ipv6 : isV6(svc.key.addr);
}

/** The service column of listings: "TCP  addr:port" (cut to 33 for IPv4) or "FWM  n". */
export function listingServiceName(svc: ServiceEntry, names: Names | null): string {
  const k = svc.key;
  if (k.type === 'fwmark') return k.ipv6 ? `FWM  ${k.fwmark} IPv6` : `FWM  ${k.fwmark}`;
  const s = padR(k.type.toUpperCase(), 4) + ' ' + addrPort(k.addr, k.port, k.type, names);
  return isV6(k.addr) ? s : s.slice(0, 33);
}

/** Scheduler flag names as ipvsadm prints them (sh/mh have their own names), comma separated. */
export function schedFlagNames(svc: ServiceEntry): string {
  const f = svc.schedFlags;
  const out: string[] = [];
  if (svc.scheduler === 'sh' || svc.scheduler === 'mh') {
    if (f & 1) out.push(`${svc.scheduler}-fallback`);
    if (f & 2) out.push(`${svc.scheduler}-port`);
  } else {
    if (f & 1) out.push('flag-1');
    if (f & 2) out.push('flag-2');
    if (f & 4) out.push('flag-3');
  }
  return out.join(',');
}

/** The persistence mask as ipvsadm shows it, or null when it is the default (/32, /128). */
export function nonDefaultMask(svc: ServiceEntry): string | null {
  if (svcIsV6(svc)) return svc.netmask !== '128' ? svc.netmask : null;
  return svc.netmask !== '255.255.255.255' ? svc.netmask : null;
}

const FWD_NAME: Record<DestEntry['fwd'], string> = { masq: 'Masq', local: 'Local', tunnel: 'Tunnel', route: 'Route', fullnat: 'FullNat' };
const TUN_FLAG: Record<DestEntry['tunCsum'], string> = { nocsum: '-c', csum: '+c', remcsum: 'r+c' };

function tunInfo(d: DestEntry): string {
  if (d.fwd !== 'tunnel') return 'n/a';
  if (d.tunType === 'ipip') return 'ipip';
  if (d.tunType === 'gue') return `gue:${d.tunPort}:${TUN_FLAG[d.tunCsum]}`.slice(0, 15);
  return `gre:${TUN_FLAG[d.tunCsum]}`;
}

// ---------------------------------------------------------------------------------------------
// ipvsadm's sort: qsort (glibc merge sort) with comparisons done as wrapped int subtraction.

/** C's `int r = (u32)a - (u32)b`: the sign flips for values more than 2^31 apart. */
const wrapSub = (a: number, b: number) => (a - b) | 0;

/** ipvs_cmp_services: fwmark, af, protocol, address words, port. */
export function cmpServices(a: ServiceEntry, b: ServiceEntry): number {
  const fa = a.key.type === 'fwmark' ? a.key.fwmark : 0;
  const fb = b.key.type === 'fwmark' ? b.key.fwmark : 0;
  let r = wrapSub(fa, fb);
  if (r) return r;
  r = (svcIsV6(a) ? 10 : 2) - (svcIsV6(b) ? 10 : 2);
  if (r) return r;
  const proto = (s: ServiceEntry) => (s.key.type === 'udp' ? 17 : s.key.type === 'sctp' ? 132 : 6);
  r = proto(a) - proto(b);
  if (r) return r;
  const wa = a.key.type === 'fwmark' ? [0] : addrWords(a.key.addr);
  const wb = b.key.type === 'fwmark' ? [0] : addrWords(b.key.addr);
  for (let i = 0; !r && i < wa.length; i++) r = wrapSub(wa[i]!, wb[i] ?? 0);
  if (r) return r;
  return (a.key.type === 'fwmark' ? 0 : a.key.port) - (b.key.type === 'fwmark' ? 0 : b.key.port);
}

/** ipvs_cmp_dests: address words, then port. */
export function cmpDests(a: DestEntry, b: DestEntry): number {
  const wa = addrWords(a.addr);
  const wb = addrWords(b.addr);
  let r = 0;
  for (let i = 0; !r && i < wa.length; i++) r = wrapSub(wa[i]!, wb[i] ?? 0);
  if (r) return r;
  return a.port - b.port;
}

/**
 * glibc's qsort merge sort (msort): halves of n/2 and n - n/2, merged taking the left element when
 * cmp <= 0. With ipvsadm's non-transitive comparison the algorithm decides the order, so it is mirrored.
 */
export function msort<T>(items: readonly T[], cmp: (a: T, b: T) => number): T[] {
  const a = items.slice();
  const tmp = new Array<T>(a.length);
  const rec = (lo: number, n: number) => {
    if (n <= 1) return;
    const n1 = n >> 1;
    const n2 = n - n1;
    rec(lo, n1);
    rec(lo + n1, n2);
    let i = lo;
    let j = lo + n1;
    let k = 0;
    const iEnd = lo + n1;
    const jEnd = lo + n;
    while (i < iEnd && j < jEnd) tmp[k++] = cmp(a[i]!, a[j]!) <= 0 ? a[i++]! : a[j++]!;
    while (i < iEnd) tmp[k++] = a[i++]!;
    for (let m = 0; m < k; m++) a[lo + m] = tmp[m]!;
  };
  rec(0, a.length);
  return a;
}

/** Services (and each one's real servers) in ipvsadm's listing order; kernel order with --nosort. */
export function sortForListing(services: readonly ServiceEntry[], nosort: boolean): ServiceEntry[] {
  if (nosort) return services.slice();
  return msort(services, cmpServices).map((s) => ({ ...s, dests: msort(s.dests, cmpDests) }));
}

// ---------------------------------------------------------------------------------------------
// Listings

/** print_title for the listing modes (not -S). */
export function title(f: Format): string {
  const first = padR('Prot LocalAddress:Port', 33);
  const cols = (names: string[], w: number, left: boolean) => names.map((n) => (left ? padR(n, w) : padL(n, w))).join(' ');
  if (f.stats) return `${first} ${cols(['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'], 8, false)}\n  -> RemoteAddress:Port\n`;
  if (f.rate) return `${first} ${cols(['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'], 8, false)}\n  -> RemoteAddress:Port\n`;
  if (f.thresholds) return `${first} ${cols(['Uthreshold', 'Lthreshold', 'ActiveConn', 'InActConn'], 10, true)}\n  -> RemoteAddress:Port\n`;
  if (f.persistentConn)
    return `${first} ${padR('Weight', 9)} ${padR('PersistConn', 11)} ${padR('ActiveConn', 10)} ${padR('InActConn', 10)}\n  -> RemoteAddress:Port\n`;
  if (f.tunInfo)
    return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n';
  return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
}

/** One service and its real servers as ipvsadm's print_service_entry prints them in listing mode. */
export function serviceEntry(svc: ServiceEntry, f: Format, names: Names | null): string {
  const name = listingServiceName(svc, names);
  let out: string;
  if (f.stats) {
    const s = svc.stats;
    out = padR(name, 33) + [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes].map((v) => largenum(v, f.exact)).join('');
  } else if (f.rate) {
    const r = svc.rates;
    out = padR(name, 33) + [r.cps, r.inpps, r.outpps, r.inbps, r.outbps].map((v) => largenum(v, f.exact)).join('');
  } else {
    out = `${name} ${svc.scheduler}`;
    if (svc.schedFlags & 7) out += ` (${schedFlagNames(svc)})`;
    if (svc.persistent) {
      out += ` persistent ${svc.timeout}`;
      const mask = nonDefaultMask(svc);
      if (mask !== null) out += ` mask ${mask}`;
      if (svc.pe) out += ` pe ${svc.pe}`;
    }
    if (svc.onePacket) out += ' ops';
    // DPVS's print_service_entry: " pp" and the version.
    if (svc.proxyProtocol && svc.proxyProtocol !== 'disable') out += ` pp${svc.proxyProtocol}`;
  }
  out += '\n';
  const proto = servProto(svc);
  for (const d of svc.dests) {
    let dname = addrPort(d.addr, d.port, proto, names);
    if (!isV6(d.addr)) dname = dname.slice(0, 28);
    const u = (v: number, w: number) => padR(String(v), w);
    if (f.stats) {
      const s = d.stats;
      out += `  -> ${padR(dname, 28)}` + [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes].map((v) => largenum(v, f.exact)).join('') + '\n';
    } else if (f.rate) {
      const r = d.rates;
      out += `  -> ${padR(dname, 28)} ${padL(String(r.cps), 8)} ${padL(String(r.inpps), 8)} ${padL(String(r.outpps), 8)}`;
      out += largenum(r.inbps, f.exact) + largenum(r.outbps, f.exact) + '\n';
    } else if (f.thresholds) {
      out += `  -> ${padR(dname, 28)} ${u(d.uThreshold, 10)} ${u(d.lThreshold, 10)} ${u(d.activeConns, 10)} ${u(d.inactConns, 10)}\n`;
    } else if (f.persistentConn) {
      out += `  -> ${padR(dname, 28)} ${u(d.weight, 9)} ${u(d.persistConns, 11)} ${u(d.activeConns, 10)} ${u(d.inactConns, 10)}\n`;
    } else if (f.tunInfo) {
      out += `  -> ${padR(dname, 28)} ${padR(FWD_NAME[d.fwd], 7)} ${padR(tunInfo(d), 13)} ${u(d.weight, 6)} ${u(d.activeConns, 10)} ${u(d.inactConns, 10)}\n`;
    } else {
      out += `  -> ${padR(dname, 28)} ${padR(FWD_NAME[d.fwd], 7)} ${u(d.weight, 6)} ${u(d.activeConns, 10)} ${u(d.inactConns, 10)}\n`;
    }
  }
  return out;
}

/** `-L` of the whole table: version header, title, services in order (sorted unless --nosort). */
export function formatList(list: ListResult, f: Format, names: Names | null): string {
  let out = `IP Virtual Server version ${list.version} (size=${list.size})\n` + title(f);
  for (const s of sortForListing(list.services, f.nosort)) out += serviceEntry(s, f, names);
  return out;
}

/** `-L -t svc`: title and the one service, no version header. */
export function formatOneService(svc: ServiceEntry, f: Format, names: Names | null): string {
  const [s] = sortForListing([svc], f.nosort);
  return title(f) + serviceEntry(s!, f, names);
}

function connProto(p: string): ServProto | null {
  return p === 'TCP' ? 'tcp' : p === 'UDP' ? 'udp' : p === 'SCTP' ? 'sctp' : null;
}

const two = (n: number) => (n < 10 ? '0' + n : String(n));

/** `-L -c`: the connection table (kernel order), with pe columns under --persistent-conn. */
export function formatConnections(conns: readonly ConnEntry[], f: Format, names: Names | null): string {
  let out = 'IPVS connection entries\n';
  out += f.persistentConn
    ? `pro expire ${padR('state', 11)} ${padR('source', 18)} ${padR('virtual', 18)} ${padR('destination', 18)} ${padR('pe name', 16)} pe_data\n`
    : `pro expire ${padR('state', 11)} ${padR('source', 18)} ${padR('virtual', 18)} destination\n`;
  for (const c of conns) {
    const p = connProto(c.proto);
    const exp = `${two(Math.floor(c.expire / 60))}:${two(c.expire % 60)}`;
    const cname = addrPort(c.caddr, c.cport, p, names);
    const vname = addrPort(c.vaddr, c.vport, p, names);
    const dname = addrPort(c.daddr, c.dport, p, names);
    const head = `${padR(c.proto, 3)} ${padR(exp, 6)} ${padR(c.state, 11)} ${padR(cname, 18)} ${padR(vname, 18)}`;
    if (f.persistentConn && c.peName !== undefined && c.peData !== undefined)
      out += `${head} ${padR(dname, 16)} ${padR(c.peName, 18)} ${c.peData}\n`;
    else out += `${head} ${dname}\n`;
  }
  return out;
}

/** `-L --timeout`. */
export function formatTimeouts(t: Timeouts): string {
  return `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpfin} ${t.udp}\n`;
}

/** `-L --daemon`: one line per running sync daemon, master first. */
export function formatDaemons(ds: readonly DaemonEntry[]): string {
  let out = '';
  for (const state of ['master', 'backup'] as const) {
    for (const d of ds.filter((x) => x.state === state)) {
      out += `${d.state} sync daemon (mcast=${d.mcastIfn}, syncid=${d.syncid}`;
      if (d.maxlen) out += `, maxlen=${d.maxlen}`;
      if (d.group) out += `, group=${d.group}`;
      if (d.port) out += `, port=${d.port}`;
      if (d.ttl) out += `, ttl=${d.ttl}`;
      out += ')\n';
    }
  }
  return out;
}

/** Every address a listing would name (for reverse resolution before formatting without -n). */
export function listAddresses(services: readonly ServiceEntry[]): string[] {
  const out: string[] = [];
  for (const s of services) {
    if (s.key.type !== 'fwmark') out.push(s.key.addr);
    for (const d of s.dests) out.push(d.addr);
  }
  return out;
}
