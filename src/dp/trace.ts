// The packet-path trace: collects each matching packet's hooks with addresses, ports and MACs per step.
import { Hook, HOOK_NAMES, TRACE_VERDICT_NAMES, TraceVerdict, type TraceSink, type Tracer } from '../stack/hooks.ts';
import { ParsedFrame, parseFrame, Verdict } from '../packet/parse.ts';
import { DROP_NAMES } from './drops.ts';
import { u32ToIp, ipToU32 } from '../lib/inet.ts';
import { readU32 } from '../packet/checksum.ts';

/** What a trace follows: packets whose addresses or ports (before or after any rewrite) match. */
export interface TraceFilter {
  cip?: number;
  vip?: number;
  port?: number;
  /** Include each step's frame bytes (hex), for pcap output by the client. */
  frames?: boolean;
}

/** One hook crossed by one packet. */
export interface TraceStep {
  hook: (typeof HOOK_NAMES)[number];
  ifname: string;
  verdict: (typeof TRACE_VERDICT_NAMES)[number];
  /** Why it was dropped (drop reason or parse verdict), when it was. */
  reason?: string;
  srcMac: string;
  dstMac: string;
  /** "ARP", "IPv4", "IPv6", ... */
  type: string;
  proto?: string;
  saddr?: string;
  daddr?: string;
  sport?: number;
  dport?: number;
  ttl?: number;
  len: number;
  tcpFlags?: string;
  icmp?: string;
  /** The datagram inside an IPIP packet (TUN). */
  inner?: { proto: string; saddr: string; daddr: string; sport?: number; dport?: number };
  /** ARP summary, e.g. "who-has 198.18.1.100 tell 198.18.1.1". */
  arp?: string;
  frame?: string;
}

/** One traced packet: every hook it (and what it caused) crossed, in order. */
export interface TracePacket {
  seq: number;
  time: number;
  steps: TraceStep[];
}

const PROTO: Record<number, string> = { 1: 'ICMP', 4: 'IPIP', 6: 'TCP', 17: 'UDP' };

function mac(b: Uint8Array, at: number): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + b[at + i]!.toString(16).padStart(2, '0');
  return s;
}

function tcpFlagText(f: number): string {
  let s = '';
  if (f & 0x02) s += 'S';
  if (f & 0x10) s += '.';
  if (f & 0x01) s += 'F';
  if (f & 0x04) s += 'R';
  if (f & 0x08) s += 'P';
  return s;
}

/**
 * A TraceSink that keeps the steps of the packet in progress and, when the packet is done, hands it
 * to `emit` if any step matched the filter, until `count` packets were emitted. Allocates freely:
 * it only runs while someone traces.
 */
export class TraceCollector implements TraceSink {
  private readonly pf = new ParsedFrame();
  private steps: TraceStep[] = [];
  private matched = false;
  private seq = 0;
  emitted = 0;

  constructor(
    private readonly filter: TraceFilter,
    private readonly count: number,
    private readonly ifnames: string[],
    private readonly emit: (p: TracePacket) => void,
    private readonly done: () => void,
  ) {}

  onHook(hook: Hook, port: number, buf: Uint8Array, eth: number, end: number, verdict: TraceVerdict, reason: number): void {
    if (this.emitted >= this.count) return;
    const step = this.describe(hook, port, buf, eth, end, verdict, reason);
    this.steps.push(step);
    if (!this.matched && this.matches(step)) this.matched = true;
  }

  onPacketEnd(): void {
    const steps = this.steps;
    this.steps = [];
    this.seq++;
    if (!this.matched || steps.length === 0 || this.emitted >= this.count) {
      this.matched = false;
      return;
    }
    this.matched = false;
    this.emitted++;
    this.emit({ seq: this.seq, time: Date.now(), steps });
    if (this.emitted >= this.count) this.done();
  }

  private matches(s: TraceStep): boolean {
    const f = this.filter;
    const addrs = [s.saddr, s.daddr, s.inner?.saddr, s.inner?.daddr];
    const ports = [s.sport, s.dport, s.inner?.sport, s.inner?.dport];
    if (f.cip !== undefined && !addrs.includes(u32ToIp(f.cip))) return false;
    if (f.vip !== undefined && !addrs.includes(u32ToIp(f.vip))) return false;
    if (f.port !== undefined && !ports.includes(f.port)) return false;
    // ARP and other non-IP frames match only an empty filter.
    return s.type === 'IPv4' || (f.cip === undefined && f.vip === undefined && f.port === undefined);
  }

  private describe(hook: Hook, port: number, buf: Uint8Array, eth: number, end: number, verdict: TraceVerdict, reason: number): TraceStep {
    const p = this.pf;
    const v = parseFrame(buf, eth - 10, end - eth + 10, p, 0);
    const step: TraceStep = {
      hook: HOOK_NAMES[hook]!,
      ifname: this.ifnames[port] ?? `port${port}`,
      verdict: TRACE_VERDICT_NAMES[verdict]!,
      // A queued frame waits for ARP: its Ethernet addresses are not written yet.
      srcMac: verdict === TraceVerdict.QUEUED ? '(pending)' : mac(buf, eth + 6),
      dstMac: verdict === TraceVerdict.QUEUED ? '(resolving next hop)' : mac(buf, eth),
      type: v === Verdict.ARP ? 'ARP' : v === Verdict.IPV6 ? 'IPv6' : p.ethertype === 0x0800 ? 'IPv4' : `0x${p.ethertype.toString(16)}`,
      len: end - eth,
    };
    if (verdict === TraceVerdict.DROP) step.reason = DROP_NAMES[reason] ?? String(reason);
    if (v === Verdict.ARP && p.l3 + 28 <= end) {
      const op = buf[p.l3 + 7];
      const spa = u32ToIp(readU32(buf, p.l3 + 14));
      const tpa = u32ToIp(readU32(buf, p.l3 + 24));
      step.arp = op === 1 ? `who-has ${tpa} tell ${spa}` : `${spa} is-at ${mac(buf, p.l3 + 8)}`;
    }
    if (p.ethertype === 0x0800 && p.l3 > 0 && p.totLen > 0) {
      step.proto = PROTO[p.proto] ?? String(p.proto);
      step.saddr = u32ToIp(p.saddr);
      step.daddr = u32ToIp(p.daddr);
      step.ttl = p.ttl;
      if (p.proto === 6 || p.proto === 17) {
        step.sport = p.sport;
        step.dport = p.dport;
        if (p.proto === 6) step.tcpFlags = tcpFlagText(p.tcpFlags);
      } else if (p.proto === 1) step.icmp = `type ${p.icmpType} code ${p.icmpCode}`;
      else if (p.proto === 4 && p.l4 + 20 <= end) {
        const i = p.l4;
        const ip = buf[i + 9]!;
        const ihl = (buf[i]! & 15) * 4;
        step.inner = { proto: PROTO[ip] ?? String(ip), saddr: u32ToIp(readU32(buf, i + 12)), daddr: u32ToIp(readU32(buf, i + 16)) };
        if ((ip === 6 || ip === 17) && i + ihl + 4 <= end) {
          step.inner.sport = (buf[i + ihl]! << 8) | buf[i + ihl + 1]!;
          step.inner.dport = (buf[i + ihl + 2]! << 8) | buf[i + ihl + 3]!;
        }
      }
    }
    if (this.filter.frames) step.frame = Buffer.from(buf.subarray(eth, end)).toString('hex');
    return step;
  }
}

/** The trace sessions running in a worker: one collector per client, fanned out from one sink. */
export class TraceSessions implements TraceSink {
  private readonly sessions = new Map<number, { c: TraceCollector; finish: (packets: number) => void }>();

  constructor(
    private readonly tracer: Tracer,
    private readonly ifnames: string[],
  ) {}

  /** Starts following packets for request `seq`; `finish` is called once, when done or stopped. */
  start(seq: number, req: { filter: { cip?: string; vip?: string; port?: number; frames?: boolean }; count: number }, emit: (p: TracePacket) => void, finish: (packets: number) => void): void {
    const f = req.filter;
    const filter: TraceFilter = {
      cip: f.cip !== undefined ? ipToU32(f.cip) : undefined,
      vip: f.vip !== undefined ? ipToU32(f.vip) : undefined,
      port: f.port,
      frames: f.frames,
    };
    const c = new TraceCollector(filter, req.count, this.ifnames, emit, () => this.stop(seq));
    this.sessions.set(seq, { c, finish });
    this.tracer.set(this);
  }

  stop(seq: number): void {
    const s = this.sessions.get(seq);
    if (!s) return;
    this.sessions.delete(seq);
    if (this.sessions.size === 0) this.tracer.set(null);
    s.finish(s.c.emitted);
  }

  onHook(hook: Hook, port: number, buf: Uint8Array, eth: number, end: number, verdict: TraceVerdict, reason: number): void {
    for (const s of this.sessions.values()) s.c.onHook(hook, port, buf, eth, end, verdict, reason);
  }

  onPacketEnd(): void {
    for (const s of [...this.sessions.values()]) s.c.onPacketEnd();
  }
}
