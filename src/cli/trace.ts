// `tsvs trace`: follows packets through a running tsvsd's hooks and prints each step; optional pcap.
import { connect } from 'node:net';
import { PcapWriter } from '../dp/pcap.ts';
import type { TracePacket, TraceStep } from '../dp/trace.ts';
import { socketPath, PROTOCOL_VERSION, type TraceRequestFilter } from '../ctl/protocol.ts';

export interface TraceOptions {
  socket?: string;
  cip?: string;
  vip?: string;
  port?: number;
  count: number;
  pcap?: string;
  json?: boolean;
  /** Give up after this long without the count reached (ms); 0 = wait forever. */
  timeoutMs?: number;
}

function endpoint(s: TraceStep): string {
  if (s.type === 'ARP') return `ARP ${s.arp ?? ''}`;
  if (s.type !== 'IPv4') return s.type;
  const a = s.sport !== undefined ? `${s.saddr}:${s.sport}` : s.saddr;
  const b = s.dport !== undefined ? `${s.daddr}:${s.dport}` : s.daddr;
  let t = `${s.proto} ${a} → ${b}`;
  if (s.tcpFlags) t += ` [${s.tcpFlags}]`;
  if (s.icmp) t += ` (${s.icmp})`;
  if (s.inner) {
    const ia = s.inner.sport !== undefined ? `${s.inner.saddr}:${s.inner.sport}` : s.inner.saddr;
    const ib = s.inner.dport !== undefined ? `${s.inner.daddr}:${s.inner.dport}` : s.inner.daddr;
    t += ` carrying ${s.inner.proto} ${ia} → ${ib}`;
  }
  if (s.ttl !== undefined) t += ` ttl ${s.ttl}`;
  return t;
}

/** What changed between two steps of one packet, in LVS words. */
function changes(prev: TraceStep, s: TraceStep): string[] {
  const out: string[] = [];
  if (s.inner && !prev.inner) out.push(`IPIP: wrapped in ${s.saddr} → ${s.daddr}`);
  if (prev.saddr !== s.saddr && !(s.inner && !prev.inner)) out.push(`source ${prev.saddr} → ${s.saddr}`);
  if (prev.daddr !== s.daddr && !(s.inner && !prev.inner)) out.push(`destination ${prev.daddr} → ${s.daddr}`);
  if (prev.sport !== s.sport && s.sport !== undefined && prev.sport !== undefined) out.push(`source port ${prev.sport} → ${s.sport}`);
  if (prev.dport !== s.dport && s.dport !== undefined && prev.dport !== undefined) out.push(`destination port ${prev.dport} → ${s.dport}`);
  if (prev.dstMac !== s.dstMac && s.verdict !== 'QUEUED') out.push(`MAC ${prev.srcMac} → ${prev.dstMac} becomes ${s.srcMac} → ${s.dstMac}`);
  if (prev.ttl !== undefined && s.ttl !== undefined && prev.ttl !== s.ttl && !(s.inner && !prev.inner)) out.push(`ttl ${prev.ttl} → ${s.ttl}`);
  return out;
}

/** Renders one traced packet as numbered steps (the LVS story of that packet). */
export function formatTracePacket(p: TracePacket, n: number): string {
  const lines = [`packet ${n}: ${endpoint(p.steps[0]!)}`];
  p.steps.forEach((s, i) => {
    const hook = s.hook.padEnd(11);
    const verdict = s.verdict === 'CONTINUE' ? '' : s.verdict === 'DROP' ? `  DROP (${s.reason})` : `  ${s.verdict}`;
    lines.push(`  ${i + 1}. ${hook} ${s.ifname.padEnd(6)} ${s.srcMac} → ${s.dstMac}  ${endpoint(s)}${verdict}`);
    if (i > 0) for (const c of changes(p.steps[i - 1]!, s)) lines.push(`       ${''.padEnd(11)} changed: ${c}`);
  });
  return lines.join('\n');
}

/**
 * Connects to tsvsd, asks it to trace, prints (or returns) the packets. Resolves with the packets
 * received; rejects with a clear message when no tsvsd answers or it refuses.
 */
export async function runTrace(o: TraceOptions, print: (s: string) => void = (s) => process.stdout.write(s + '\n')): Promise<TracePacket[]> {
  const path = socketPath(o.socket);
  const filter: TraceRequestFilter = {};
  if (o.cip) filter.cip = o.cip;
  if (o.vip) filter.vip = o.vip;
  if (o.port !== undefined) filter.port = o.port;
  if (o.pcap) filter.frames = true;
  const pcap = o.pcap ? new PcapWriter(o.pcap) : null;
  const packets: TracePacket[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const sock = connect(path);
      let buf = '';
      let timer: NodeJS.Timeout | undefined;
      if (o.timeoutMs) timer = setTimeout(() => {
        sock.destroy();
        resolve();
      }, o.timeoutMs);
      sock.on('connect', () => sock.write(JSON.stringify({ v: PROTOCOL_VERSION, id: 1, op: 'trace', filter, count: o.count }) + '\n'));
      sock.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new Error(e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? `no tsvsd answering on ${path} (${e.code}); is tsvsd running? (set --socket PATH or TSVS_SOCKET)` : e.message));
      });
      sock.setEncoding('utf8');
      sock.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const msg = JSON.parse(line) as { event?: TracePacket; ok?: boolean; error?: { message: string } };
          if (msg.event) {
            packets.push(msg.event);
            if (pcap) for (const s of msg.event.steps) if (s.frame && (s.hook === 'PREROUTING' || s.hook === 'POSTROUTING') && s.verdict !== 'QUEUED') {
              const b = Buffer.from(s.frame, 'hex');
              pcap.write(b, 0, b.length, msg.event.time - performance.timeOrigin);
            }
            print(o.json ? JSON.stringify(msg.event) : formatTracePacket(msg.event, packets.length));
          } else if (msg.ok === false) {
            clearTimeout(timer);
            sock.destroy();
            reject(new Error(msg.error?.message ?? 'trace refused'));
          } else if (msg.ok === true) {
            clearTimeout(timer);
            sock.end();
            resolve();
          }
        }
      });
      sock.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  } finally {
    pcap?.close();
  }
  return packets;
}
