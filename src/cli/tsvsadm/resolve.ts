// Address and port parsing as ipvsadm does it (inet_aton, inet_pton, strtol) plus host/service name lookups.
import { readFileSync } from 'node:fs';
import { lookup, lookupService } from 'node:dns/promises';
import { isIPv6 } from 'node:net';
import { ipv6FromString, ipv6ToString } from '../../packet/ipv6.ts';

/** Protocol names getservbyname/getservbyport take. */
export type ServProto = 'tcp' | 'udp' | 'sctp';

/** Name lookups used while parsing arguments (ipvsadm resolves names in arguments even with -n). */
export interface Resolver {
  /** gethostbyname for IPv4: the first address as a dotted quad, or null. */
  hostToAddr(name: string): Promise<string | null>;
  /** getservbyname(name, proto): the port, or null. */
  serviceToPort(name: string, proto: ServProto): number | null;
}

/** Reverse lookups used for listings without -n, answered synchronously after a pre-resolution pass. */
export interface Names {
  host(addr: string): string | null;
  service(port: number, proto: ServProto | null): string | null;
}

/** strtol(s, &end, 10) accepted whole (leading blanks, optional sign) and within [min, max]; else -1 as ipvsadm's string_to_number. */
export function stringToNumber(s: string, min: number, max: number): number {
  const m = /^[ \t\n\v\f\r]*([+-]?[0-9]+)$/.exec(s);
  if (!m) return -1;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : -1;
}

/** True when every character is a digit (an empty string counts, as in ipvsadm's str_is_digit). */
export function strIsDigit(s: string): boolean {
  return /^[0-9]*$/.test(s);
}

function strtoulPart(p: string): number | null {
  let v: number;
  if (/^0[xX][0-9a-fA-F]*$/.test(p)) v = p.length > 2 ? parseInt(p.slice(2), 16) : 0;
  else if (/^0[0-7]*$/.test(p)) v = parseInt(p, 8);
  else if (/^[1-9][0-9]*$/.test(p)) v = parseInt(p, 10);
  else return null;
  return v;
}

/** glibc inet_aton: 1 to 4 parts, each decimal, octal (0...) or hex (0x...); trailing text after a blank is ignored. Host-order u32 or null. */
export function inetAton(s: string): number | null {
  const ws = s.search(/[ \t\n\v\f\r]/);
  const body = ws >= 0 ? s.slice(0, ws) : s;
  if (body === '') return null;
  const parts = body.split('.');
  if (parts.length > 4) return null;
  const vals: number[] = [];
  for (const p of parts) {
    const v = strtoulPart(p);
    if (v === null) return null;
    vals.push(v);
  }
  for (let i = 0; i < vals.length - 1; i++) if (vals[i]! > 255) return null;
  const last = vals[vals.length - 1]!;
  const lastMax = [0xffffffff, 0xffffff, 0xffff, 0xff][vals.length - 1]!;
  if (last > lastMax) return null;
  let v = 0;
  for (let i = 0; i < vals.length - 1; i++) v += vals[i]! * 2 ** (24 - 8 * i);
  return (v + last) >>> 0;
}

/** Dotted quad of a host-order u32 (inet_ntoa). */
export function ntoa(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

const words6 = new Uint32Array(4);

/**
 * inet_pton(AF_INET6, s), answered as the text inet_ntop gives back for it (glibc's forms, which
 * ipvsadm prints: "::ffff:198.18.1.100" keeps its dotted quad), or null when not an IPv6 address.
 */
export function inetPton6(s: string): string | null {
  if (s.includes('%') || !isIPv6(s) || !ipv6FromString(s, words6, 0)) return null;
  return ipv6ToString(words6, 0);
}

/**
 * The four 32-bit words of union nf_inet_addr for ipvsadm's sort: an IPv6 address's, or an IPv4
 * one's in the first word and zeros after (what the union holds, so mixed families compare as in C).
 */
export function addrWords(addr: string): number[] {
  if (!addr.includes(':')) {
    const v = inetAton(addr);
    return [v ?? 0, 0, 0, 0];
  }
  const [head, tail] = addr.split('::') as [string, string | undefined];
  const parse = (p: string): number[] => {
    if (p === '') return [];
    const out: number[] = [];
    for (const g of p.split(':')) {
      if (g.includes('.')) {
        const v = inetAton(g) ?? 0;
        out.push(v >>> 16, v & 0xffff);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const h = parse(head);
  const t = tail === undefined ? [] : parse(tail);
  const groups = [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  const words: number[] = [];
  for (let i = 0; i < 8; i += 2) words.push(((groups[i]! << 16) | groups[i + 1]!) >>> 0);
  return words;
}

interface ServEntry {
  name: string;
  port: number;
  proto: string;
  aliases: string[];
}

let servCache: ServEntry[] | null = null;

function services(): ServEntry[] {
  if (servCache) return servCache;
  const out: ServEntry[] = [];
  try {
    for (const raw of readFileSync('/etc/services', 'utf8').split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) continue;
      const [name, pp, ...aliases] = line.split(/\s+/);
      const m = /^(\d+)\/(\w+)$/.exec(pp ?? '');
      if (!name || !m) continue;
      out.push({ name, port: Number(m[1]), proto: m[2]!, aliases });
    }
  } catch {
    // No services database: every lookup fails, as getservbyname would.
  }
  servCache = out;
  return out;
}

/** getservbyname from /etc/services. */
export function serviceToPort(name: string, proto: ServProto): number | null {
  if (name === '') return null;
  for (const e of services()) if (e.proto === proto && (e.name === name || e.aliases.includes(name))) return e.port;
  return null;
}

/** getservbyport from /etc/services. */
export function portToService(port: number, proto: ServProto): string | null {
  for (const e of services()) if (e.proto === proto && e.port === port) return e.name;
  return null;
}

/** The system's resolver (NSS through getaddrinfo, /etc/services). */
export const systemResolver: Resolver = {
  async hostToAddr(name) {
    if (name === '') return null;
    try {
      return (await lookup(name, { family: 4 })).address;
    } catch {
      return null;
    }
  },
  serviceToPort,
};

/** Reverse-resolve every address first (in parallel), then answer synchronously, as gethostbyaddr would. */
export async function systemNames(addrs: Iterable<string>): Promise<Names> {
  const hosts = new Map<string, string | null>();
  await Promise.all(
    [...new Set(addrs)].map(async (a) => {
      try {
        const r = await lookupService(a, 0);
        hosts.set(a, r.hostname && r.hostname !== a ? r.hostname : null);
      } catch {
        hosts.set(a, null);
      }
    }),
  );
  return {
    host: (a) => hosts.get(a) ?? null,
    service: (port, proto) => (proto ? portToService(port, proto) : null),
  };
}
