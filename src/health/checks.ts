// Health checkers: one async probe per check type (TCP, HTTP, HTTPS, UDP, ping, command), each bounded by a timeout and never throwing.
import { createConnection, isIP } from 'node:net';
import { request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createSocket } from 'node:dgram';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';

export const CHECK_TYPES = ['tcp', 'http', 'https', 'udp', 'ping', 'misc'] as const;
export type CheckType = (typeof CHECK_TYPES)[number];

/**
 * One probe, fully resolved (addresses, port, timeouts in ms). Plain JSON so it can be handed to a
 * helper process running in another network namespace.
 */
export interface CheckSpec {
  type: CheckType;
  /** Address probed (the real server's, or keepalived's connect_ip). */
  host: string;
  /** Port probed (tcp/http/https/udp). */
  port: number;
  timeoutMs: number;
  /** Source address to bind (keepalived's bindto). */
  source?: string;
  /**
   * Network namespace for the command-based checks (ping, misc): they run under `ip netns exec NS`.
   * Socket-based checks reach a namespace through the probe helper instead (see prober.ts).
   */
  netns?: string;
  /** http/https: request path (default "/"). */
  path?: string;
  /** http/https: accepted status ranges, inclusive (default 200-299). */
  status?: Array<[number, number]>;
  /** http/https: MD5 of the body in hex, as keepalived's genhash prints it. */
  digest?: string;
  /** http/https: JavaScript regular expression the body must match; udp: the reply must match (latin1). */
  regex?: string;
  /** http/https: Host header (and TLS SNI). */
  virtualhost?: string;
  /** https: verify the server certificate (off by default, as keepalived's SSL_GET). */
  verifyTls?: boolean;
  /** udp: payload bytes in hex (default: the text "tsvs-health"). */
  payloadHex?: string;
  /**
   * udp: true = a reply datagram is required; false = success unless an ICMP error comes back within
   * the timeout (keepalived's UDP_CHECK without require_reply).
   */
  requireReply?: boolean;
  /** udp: reply must match this hex pattern (prefix match, "x" nibbles are wildcards; keepalived's require_reply HEX). */
  replyHex?: string;
  /** misc: shell command (run with /bin/sh -c). */
  command?: string;
  /** misc: exit codes 2..255 mean "up, with weight code-2" (keepalived's misc_dynamic). */
  dynamic?: boolean;
}

/** Outcome of one probe. `weight` is set by a misc_dynamic command that asked for a weight. */
export interface CheckResult {
  ok: boolean;
  latencyMs: number;
  detail: string;
  weight?: number;
}

const MAX_BODY = 1 << 20;
const DEFAULT_UDP_PAYLOAD = Buffer.from('tsvs-health', 'latin1').toString('hex');

function elapsed(t0: number): number {
  return Math.round((performance.now() - t0) * 1000) / 1000;
}

function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err?.message ? err.message : String(e);
}

/** Runs one check of any type. Never throws. */
export async function runCheck(spec: CheckSpec): Promise<CheckResult> {
  try {
    switch (spec.type) {
      case 'tcp':
        return await checkTcp(spec);
      case 'http':
      case 'https':
        return await checkHttp(spec);
      case 'udp':
        return await checkUdp(spec);
      case 'ping':
        return await checkPing(spec);
      case 'misc':
        return await checkMisc(spec);
      default:
        return { ok: false, latencyMs: 0, detail: `unknown check type ${String((spec as { type: unknown }).type)}` };
    }
  } catch (e) {
    return { ok: false, latencyMs: 0, detail: `check error: ${(e as Error)?.message ?? String(e)}` };
  }
}

/** TCP connect: up when the three-way handshake completes within the timeout. */
export function checkTcp(spec: CheckSpec): Promise<CheckResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let done = false;
    const sock = createConnection({ host: spec.host, port: spec.port, localAddress: spec.source, family: isIP(spec.host) || undefined });
    const finish = (ok: boolean, detail: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ ok, latencyMs: elapsed(t0), detail });
    };
    const timer = setTimeout(() => finish(false, `connect timeout after ${spec.timeoutMs} ms`), spec.timeoutMs);
    sock.once('connect', () => finish(true, 'connected'));
    sock.once('error', (e) => finish(false, `connect failed: ${errText(e)}`));
  });
}

/** Parses "200", "200-299", "200-299 301 400-499" into inclusive ranges; throws on bad text (config time only). */
export function parseStatusRanges(text: string | number | Array<string | number>): Array<[number, number]> {
  const parts = Array.isArray(text) ? text.flatMap((t) => String(t).trim().split(/[\s,]+/)) : String(text).trim().split(/[\s,]+/);
  const out: Array<[number, number]> = [];
  for (const p of parts) {
    if (!p) continue;
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(p);
    if (!m) throw new Error(`bad status code or range "${p}" (want e.g. 200 or 200-299)`);
    const lo = Number(m[1]);
    const hi = m[2] ? Number(m[2]) : lo;
    if (lo < 100 || hi > 599 || hi < lo) throw new Error(`bad status code range "${p}"`);
    out.push([lo, hi]);
  }
  if (!out.length) throw new Error('empty status code list');
  return out;
}

/** HTTP or HTTPS GET: status in the accepted ranges, then optional MD5 digest and regex over the body. */
export function checkHttp(spec: CheckSpec): Promise<CheckResult> {
  const t0 = performance.now();
  const https = spec.type === 'https';
  const ranges = spec.status ?? [[200, 299]];
  return new Promise((resolve) => {
    let done = false;
    let req: ClientRequest | undefined;
    let res: IncomingMessage | undefined;
    const finish = (ok: boolean, detail: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      res?.destroy();
      req?.destroy();
      resolve({ ok, latencyMs: elapsed(t0), detail });
    };
    const timer = setTimeout(() => finish(false, `${https ? 'HTTPS' : 'HTTP'} timeout after ${spec.timeoutMs} ms`), spec.timeoutMs);
    const hostHeader = spec.virtualhost ?? (isIP(spec.host) === 6 ? `[${spec.host}]` : spec.host);
    const opts = {
      host: spec.host,
      port: spec.port,
      path: spec.path ?? '/',
      method: 'GET',
      localAddress: spec.source,
      agent: false as const,
      headers: { Host: spec.port === (https ? 443 : 80) ? hostHeader : `${hostHeader}:${spec.port}`, 'User-Agent': 'tsvs-health', Connection: 'close' },
      ...(https ? { rejectUnauthorized: spec.verifyTls === true, servername: spec.virtualhost && !isIP(spec.virtualhost) ? spec.virtualhost : undefined } : {}),
    };
    try {
      req = (https ? httpsRequest : httpRequest)(opts, (r) => {
        res = r;
        const code = r.statusCode ?? 0;
        if (!ranges.some(([lo, hi]) => code >= lo && code <= hi)) {
          finish(false, `HTTP status ${code}`);
          return;
        }
        if (!spec.digest && !spec.regex) {
          finish(true, `HTTP status ${code}`);
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        r.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) finish(false, `body larger than ${MAX_BODY} bytes`);
          else chunks.push(c);
        });
        r.once('error', (e) => finish(false, `read failed: ${errText(e)}`));
        r.once('end', () => {
          const body = Buffer.concat(chunks);
          if (spec.digest) {
            const got = createHash('md5').update(body).digest('hex');
            if (got !== spec.digest.toLowerCase()) {
              finish(false, `digest mismatch: ${got}`);
              return;
            }
          }
          if (spec.regex && !new RegExp(spec.regex).test(body.toString('utf8'))) {
            finish(false, `body does not match /${spec.regex}/`);
            return;
          }
          finish(true, `HTTP status ${code}${spec.digest ? ', digest ok' : ''}${spec.regex ? ', regex ok' : ''}`);
        });
      });
    } catch (e) {
      finish(false, `request failed: ${errText(e)}`);
      return;
    }
    req.once('error', (e) => finish(false, `${https ? 'HTTPS' : 'HTTP'} failed: ${errText(e)}`));
    req.end();
  });
}

/** Matches reply bytes against a hex pattern where "x" nibbles are wildcards (prefix match). */
export function matchHexPattern(reply: Buffer, pattern: string): boolean {
  const p = pattern.replace(/\s+/g, '').toLowerCase();
  const hex = reply.toString('hex');
  const n = Math.min(p.length, hex.length);
  if (hex.length < p.length && hex.length === 0) return false;
  for (let i = 0; i < n; i++) {
    if (p[i] !== 'x' && p[i] !== hex[i]) return false;
  }
  return true;
}

/**
 * UDP request/response from a connected socket, so an ICMP port unreachable surfaces as
 * ECONNREFUSED. With requireReply (default) a reply is needed (optionally matching regex/replyHex);
 * without it, silence until the timeout counts as up, as keepalived's UDP_CHECK does.
 */
export function checkUdp(spec: CheckSpec): Promise<CheckResult> {
  const t0 = performance.now();
  const requireReply = spec.requireReply !== false;
  return new Promise((resolve) => {
    let done = false;
    const v6 = isIP(spec.host) === 6;
    const sock = createSocket(v6 ? 'udp6' : 'udp4');
    const finish = (ok: boolean, detail: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        sock.close();
      } catch {
        // already closed
      }
      resolve({ ok, latencyMs: elapsed(t0), detail });
    };
    const timer = setTimeout(
      () => (requireReply ? finish(false, `no UDP reply within ${spec.timeoutMs} ms`) : finish(true, 'no ICMP error within the timeout')),
      spec.timeoutMs,
    );
    sock.on('error', (e) => finish(false, `UDP failed: ${errText(e)}`));
    sock.on('message', (msg) => {
      if (spec.replyHex && !matchHexPattern(msg, spec.replyHex)) return finish(false, `reply does not match ${spec.replyHex}`);
      if (spec.regex && !new RegExp(spec.regex).test(msg.toString('latin1'))) return finish(false, `reply does not match /${spec.regex}/`);
      finish(true, `UDP reply (${msg.length} bytes)`);
    });
    const payload = Buffer.from(spec.payloadHex ?? DEFAULT_UDP_PAYLOAD, 'hex');
    const send = () =>
      sock.connect(spec.port, spec.host, () => {
        sock.send(payload, (e) => {
          if (e) finish(false, `UDP send failed: ${errText(e)}`);
        });
      });
    if (spec.source) sock.bind({ address: spec.source, port: 0, exclusive: true }, send);
    else send();
  });
}

interface ExecOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  error?: string;
  output: string;
}

/**
 * Runs argv with a timeout in its own process group (so a shell's children die too), optionally
 * inside a network namespace through `ip netns exec`. Kills only the group it started.
 */
export function execWithTimeout(argv: string[], timeoutMs: number, netns?: string): Promise<ExecOutcome> {
  const full = netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv;
  return new Promise((resolve) => {
    let out = '';
    let timedOut = false;
    let settled = false;
    const child = spawn(full[0]!, full.slice(1), { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const grab = (d: Buffer) => {
      if (out.length < 4096) out += d.toString('utf8');
    };
    child.stdout?.on('data', grab);
    child.stderr?.on('data', grab);
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, timeoutMs);
    const settle = (o: Omit<ExecOutcome, 'output' | 'timedOut'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...o, timedOut, output: out.trim() });
    };
    child.once('error', (e) => settle({ code: null, signal: null, error: errText(e) }));
    child.once('close', (code, signal) => settle({ code, signal }));
  });
}

/** ICMP echo through the system's ping (iputils): one request, waiting up to the timeout. */
export async function checkPing(spec: CheckSpec): Promise<CheckResult> {
  const t0 = performance.now();
  const waitS = Math.max(1, Math.ceil(spec.timeoutMs / 1000));
  const argv = ['ping', '-n', '-q', '-c', '1', '-W', String(waitS)];
  if (isIP(spec.host) === 6) argv.push('-6');
  if (spec.source) argv.push('-I', spec.source);
  argv.push(spec.host);
  const r = await execWithTimeout(argv, spec.timeoutMs + 500, spec.netns);
  const latencyMs = elapsed(t0);
  if (r.error) return { ok: false, latencyMs, detail: `ping could not run: ${r.error}` };
  if (r.timedOut) return { ok: false, latencyMs, detail: `no echo reply within ${spec.timeoutMs} ms` };
  if (r.code === 0) {
    const rtt = /= [\d.]+\/([\d.]+)\//.exec(r.output);
    return { ok: true, latencyMs: rtt ? Number(rtt[1]) : latencyMs, detail: 'echo reply' };
  }
  return { ok: false, latencyMs, detail: r.code === 1 ? 'no echo reply' : `ping failed (exit ${r.code}): ${r.output.split('\n').pop() ?? ''}` };
}

/**
 * A custom command (keepalived's MISC_CHECK) run with /bin/sh -c: exit 0 = up, anything else = down,
 * except that with `dynamic` exit codes 2..255 mean up with weight code-2.
 */
export async function checkMisc(spec: CheckSpec): Promise<CheckResult> {
  const t0 = performance.now();
  if (!spec.command) return { ok: false, latencyMs: 0, detail: 'no command configured' };
  const r = await execWithTimeout(['/bin/sh', '-c', spec.command], spec.timeoutMs, spec.netns);
  const latencyMs = elapsed(t0);
  if (r.error) return { ok: false, latencyMs, detail: `command could not run: ${r.error}` };
  if (r.timedOut) return { ok: false, latencyMs, detail: `command timed out after ${spec.timeoutMs} ms` };
  if (r.code === null) return { ok: false, latencyMs, detail: `command killed by ${r.signal}` };
  if (r.code === 0) return { ok: true, latencyMs, detail: 'exit 0' };
  if (spec.dynamic && r.code >= 2) return { ok: true, latencyMs, detail: `exit ${r.code}: weight ${r.code - 2}`, weight: r.code - 2 };
  return { ok: false, latencyMs, detail: `exit ${r.code}${r.output ? `: ${r.output.split('\n').pop()}` : ''}` };
}
