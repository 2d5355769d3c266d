// The lab client: bounded HTTP and UDP request runs against a VIP, counting which real server answered.
import { request, Agent } from 'node:http';
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';
import { connect } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

/** Result of a run: answers per real-server name, failures, and the bytes checked. */
export interface ClientRun {
  kind: 'http' | 'udp' | 'xfer';
  requests: number;
  ok: number;
  failed: number;
  byServer: Record<string, number>;
  errors: string[];
  ms: number;
}

function bump(r: ClientRun, name: string): void {
  r.byServer[name] = (r.byServer[name] ?? 0) + 1;
}

/**
 * `count` HTTP GETs to vip:port, one new connection each (Connection: close), `concurrency` at a
 * time. The real servers answer with their name; the body is checked to be exactly one line.
 */
export async function httpRun(vip: string, port: number, count: number, concurrency = 1, timeoutMs = 3000): Promise<ClientRun> {
  const r: ClientRun = { kind: 'http', requests: count, ok: 0, failed: 0, byServer: {}, errors: [], ms: 0 };
  const t0 = Date.now();
  let next = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const req = request({ host: vip, port, path: '/', agent: false, headers: { connection: 'close' }, timeout: timeoutMs }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          const name = body.trim();
          if (res.statusCode === 200 && /^[\w.-]+$/.test(name)) {
            r.ok++;
            bump(r, name);
          } else {
            r.failed++;
            if (r.errors.length < 5) r.errors.push(`status ${res.statusCode} body ${JSON.stringify(body.slice(0, 40))}`);
          }
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => {
        r.failed++;
        if (r.errors.length < 5) r.errors.push(e.message);
        resolve();
      });
      req.end();
    });
  const worker = async () => {
    while (next < count) {
      next++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  r.ms = Date.now() - t0;
  return r;
}

/**
 * `count` UDP requests to vip:port, each from a new source port (so each is a new connection for
 * the director), one at a time; the echo server answers "NAME payload" and the payload is checked.
 */
export async function udpRun(vip: string, port: number, count: number, timeoutMs = 2000): Promise<ClientRun> {
  const r: ClientRun = { kind: 'udp', requests: count, ok: 0, failed: 0, byServer: {}, errors: [], ms: 0 };
  const t0 = Date.now();
  for (let i = 0; i < count; i++) {
    const payload = `req-${i}-${Math.random().toString(36).slice(2, 10)}`;
    await new Promise<void>((resolve) => {
      const s = createSocket('udp4');
      const timer = setTimeout(() => {
        r.failed++;
        if (r.errors.length < 5) r.errors.push(`no answer to ${payload}`);
        s.close();
        resolve();
      }, timeoutMs);
      s.on('message', (m) => {
        clearTimeout(timer);
        const text = m.toString();
        const sep = text.indexOf(' ');
        if (sep > 0 && text.slice(sep + 1) === payload) {
          r.ok++;
          bump(r, text.slice(0, sep));
        } else {
          r.failed++;
          if (r.errors.length < 5) r.errors.push(`bad answer ${JSON.stringify(text.slice(0, 40))}`);
        }
        s.close();
        resolve();
      });
      s.on('error', (e) => {
        clearTimeout(timer);
        r.failed++;
        if (r.errors.length < 5) r.errors.push(e.message);
        s.close();
        resolve();
      });
      s.send(payload, port, vip);
    });
  }
  r.ms = Date.now() - t0;
  return r;
}

/**
 * One upload and one download of `bytes` each through vip:port: the upload's SHA-256 must come back
 * from the real server ("NAME SHA BYTES"), the download must carry the real server's byte pattern.
 * Exercises large TCP segments (GSO) and checksum handling in both directions.
 */
export async function xferRun(vip: string, port: number, bytes: number, timeoutMs = 30_000): Promise<ClientRun> {
  const r: ClientRun = { kind: 'xfer', requests: 2, ok: 0, failed: 0, byServer: {}, errors: [], ms: 0 };
  const t0 = Date.now();
  const fail = (m: string) => {
    r.failed++;
    r.errors.push(m);
  };
  const body = randomBytes(bytes);
  const want = createHash('sha256').update(body).digest('hex');
  await new Promise<void>((resolve) => {
    const req = request({ host: vip, port, method: 'POST', path: '/', agent: false, timeout: timeoutMs, headers: { 'content-length': bytes } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const [name, sha, n] = text.trim().split(' ');
        if (sha === want && Number(n) === bytes) {
          r.ok++;
          bump(r, name!);
        } else fail(`upload: sent ${bytes} bytes ${want.slice(0, 12)}, server saw ${text.trim().slice(0, 80)}`);
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('upload timeout')));
    req.on('error', (e) => {
      fail(`upload: ${e.message}`);
      resolve();
    });
    req.end(body);
  });
  await new Promise<void>((resolve) => {
    const req = request({ host: vip, port, path: `/bytes/${bytes}`, agent: false, timeout: timeoutMs }, (res) => {
      const h = createHash('sha256');
      let n = 0;
      res.on('data', (c: Buffer) => {
        h.update(c);
        n += c.length;
      });
      res.on('end', () => {
        const chunk = Buffer.alloc(65536);
        for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31 + 7) & 255;
        const e = createHash('sha256');
        for (let left = bytes; left > 0; left -= chunk.length) e.update(left >= chunk.length ? chunk : chunk.subarray(0, left));
        if (n === bytes && h.digest('hex') === e.digest('hex')) {
          r.ok++;
          bump(r, String(res.headers['x-real-server'] ?? '?'));
        } else fail(`download: got ${n} of ${bytes} bytes or wrong content`);
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('download timeout')));
    req.on('error', (e) => {
      fail(`download: ${e.message}`);
      resolve();
    });
    req.end();
  });
  r.ms = Date.now() - t0;
  return r;
}

/** One long-lived flow of `flowsRun`: its client side, the real server that hashed it, and how it ended. */
export interface FlowResult {
  cip: string;
  cport: number;
  ok: boolean;
  server: string;
  bytes: number;
  /** "reset", "timeout", "hash mismatch ...", "" when ok. */
  error: string;
}

/**
 * `flows` long-lived TCP connections from the `sources` addresses in turn, each an HTTP POST whose
 * body goes out in `chunk`-byte pieces every `intervalMs` for `durationMs`; the real server answers
 * "NAME SHA256 BYTES", which must match what was sent. `onConnected` runs once every flow is
 * established (a test changes the directors then). A reset or a stall past the deadline fails the flow.
 */
export async function flowsRun(
  vip: string,
  port: number,
  o: { flows: number; sources: string[]; durationMs: number; chunk?: number; intervalMs?: number; graceMs?: number; onConnected?: (flows: FlowResult[]) => void },
): Promise<FlowResult[]> {
  const chunk = o.chunk ?? 1000;
  const interval = o.intervalMs ?? 100;
  const pieces = Math.max(1, Math.round(o.durationMs / interval));
  const total = chunk * pieces;
  const results: FlowResult[] = [];
  let connected = 0;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const r: FlowResult = { cip: o.sources[i % o.sources.length]!, cport: 0, ok: false, server: '', bytes: total, error: '' };
      results.push(r);
      const hash = createHash('sha256');
      const sock = connect({ host: vip, port, localAddress: r.cip });
      let timer: NodeJS.Timeout | undefined;
      let reply = '';
      // Generous by default: a flow moved by ECMP stalls for a retransmission timeout or two, never this long.
      const deadline = setTimeout(() => done('timeout'), o.durationMs + (o.graceMs ?? 20_000));
      const done = (err: string) => {
        clearTimeout(deadline);
        if (timer) clearInterval(timer);
        if (!r.ok && !r.error) r.error = err;
        sock.destroy();
        resolve();
      };
      sock.setNoDelay(true);
      sock.on('connect', () => {
        r.cport = sock.localPort ?? 0;
        sock.write(`POST /flow HTTP/1.1\r\nHost: ${vip}\r\nContent-Length: ${total}\r\nConnection: close\r\n\r\n`);
        let sent = 0;
        timer = setInterval(() => {
          const b = randomBytes(chunk);
          hash.update(b);
          sock.write(b);
          if (++sent === pieces) clearInterval(timer);
        }, interval);
        if (++connected === o.flows) o.onConnected?.(results);
      });
      sock.setEncoding('utf8');
      sock.on('data', (c: string) => (reply += c));
      sock.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNRESET' ? 'reset' : e.message));
      sock.on('end', () => {
        const body = reply.split('\r\n\r\n')[1]?.trim() ?? '';
        const [name, sha, n] = body.split(' ');
        const want = hash.digest('hex');
        if (reply.startsWith('HTTP/1.1 200') && sha === want && Number(n) === total) {
          r.ok = true;
          r.server = name!;
        } else r.error = `hash mismatch or bad answer: ${JSON.stringify(reply.slice(-80))}`;
        done('');
      });
    });
  await Promise.all(Array.from({ length: o.flows }, (_, i) => one(i)));
  return results;
}

/**
 * Opens one keep-alive connection, makes a request, then waits for a line on stdin before making a
 * second request on the same connection: lets a test change the director between the two.
 * Prints JSON lines {step, server, sameSocket}.
 */
export async function keepAliveRun(vip: string, port: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let firstSocket: unknown = null;
  const get = () =>
    new Promise<{ server: string; same: boolean }>((resolve, reject) => {
      const req = request({ host: vip, port, path: '/', agent, timeout: 3000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ server: body.trim(), same: firstSocket === null || firstSocket === req.socket }));
      });
      req.on('socket', (s) => {
        if (firstSocket === null) firstSocket = s;
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  const a = await get();
  process.stdout.write(JSON.stringify({ step: 1, server: a.server, sameSocket: a.same }) + '\n');
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  const b = await get();
  process.stdout.write(JSON.stringify({ step: 2, server: b.server, sameSocket: b.same }) + '\n');
  agent.destroy();
}

/** What a paced download saw: bytes per second of wall time, and whether every byte was the real server's. */
export interface DownloadRun {
  bytes: number;
  ok: boolean;
  server: string;
  error: string | null;
  start: number;
  end: number;
  /** Bytes received in each second since `start`. */
  perSecond: number[];
}

/**
 * Downloads `bytes` of the real server's pattern from vip:port (/bytes/N) reading at most `rate`
 * bytes/s (TCP flow control holds the server back), so the transfer lasts long enough to live
 * through a director failover. Checks every byte against the pattern.
 */
export async function downloadRun(vip: string, port: number, bytes: number, rate: number, timeoutMs = 60_000): Promise<DownloadRun> {
  const r: DownloadRun = { bytes: 0, ok: false, server: '', error: null, start: Date.now(), end: 0, perSecond: [] };
  const pattern = Buffer.alloc(65536);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 31 + 7) & 255;
  await new Promise<void>((resolve) => {
    const req = request({ host: vip, port, path: `/bytes/${bytes}`, agent: false, timeout: timeoutMs }, (res) => {
      r.server = String(res.headers['x-real-server'] ?? '');
      let good = true;
      res.on('data', (c: Buffer) => {
        for (let i = 0; i < c.length; i++) if (c[i] !== pattern[(r.bytes + i) & 0xffff]) good = false;
        r.bytes += c.length;
        const sec = Math.floor((Date.now() - r.start) / 1000);
        while (r.perSecond.length <= sec) r.perSecond.push(0);
        r.perSecond[sec]! += c.length;
        // Pace: pause for as long as this chunk is worth at `rate`.
        res.pause();
        setTimeout(() => res.resume(), (c.length / rate) * 1000);
      });
      res.on('end', () => {
        r.ok = good && r.bytes === bytes;
        resolve();
      });
      res.on('error', (e) => {
        r.error = e.message;
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => {
      r.error = (e as NodeJS.ErrnoException).code ?? e.message;
      resolve();
    });
    req.end();
  });
  r.end = Date.now();
  return r;
}

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mode: { type: 'string', default: 'http' },
      vip: { type: 'string' },
      port: { type: 'string' },
      count: { type: 'string', default: '30' },
      concurrency: { type: 'string', default: '1' },
      sources: { type: 'string', default: '' },
      duration: { type: 'string', default: '5000' },
      grace: { type: 'string', default: '20000' },
      rate: { type: 'string', default: '2000000' },
    },
  });
  if (!values.vip || !values.port) {
    process.stderr.write('usage: client --mode http|udp|xfer|keepalive|flows|download --vip ADDR --port N [--count N] [--concurrency N] [--sources A,B --duration MS --grace MS] [--rate BYTES/S]\n');
    process.exit(2);
  }
  // A lab tool: it only ever talks to the lab's benchmark range, never to a real network.
  const a = values.vip.split('.').map(Number);
  if (a.length !== 4 || a[0] !== 198 || (a[1] !== 18 && a[1] !== 19)) {
    process.stderr.write(`client: ${values.vip} is outside 198.18.0.0/15, the lab's address range\n`);
    process.exit(2);
  }
  const port = Number(values.port);
  const count = Math.min(values.mode === 'xfer' || values.mode === 'download' ? 256 << 20 : 100_000, Number(values.count));
  if (values.mode === 'keepalive') return keepAliveRun(values.vip, port);
  if (values.mode === 'flows') {
    // One JSON line once all flows are up, then one per flow when they end.
    const flows = await flowsRun(values.vip, port, {
      flows: Math.min(2000, count),
      sources: values.sources ? values.sources.split(',') : ['0.0.0.0'],
      durationMs: Math.min(120_000, Number(values.duration)),
      graceMs: Math.min(120_000, Number(values.grace)),
      onConnected: (f) => process.stdout.write(JSON.stringify({ event: 'connected', flows: f.map((x) => ({ cip: x.cip, cport: x.cport })) }) + '\n'),
    });
    process.stdout.write(JSON.stringify({ event: 'done', flows }) + '\n');
    process.exit(0);
  }
  if (values.mode === 'download') {
    const d = await downloadRun(values.vip, port, Number(values.count), Number(values.rate));
    process.stdout.write(JSON.stringify(d) + '\n');
    process.exit(d.ok ? 0 : 1);
  }
  const r =
    values.mode === 'udp'
      ? await udpRun(values.vip, port, count)
      : values.mode === 'xfer'
        ? await xferRun(values.vip, port, count)
        : await httpRun(values.vip, port, count, Number(values.concurrency));
  process.stdout.write(JSON.stringify(r) + '\n');
  process.exit(r.failed === 0 ? 0 : 1);
}

// As a process (the sources through tsx, or dist/ once built): the lab starts it with moduleCommand.
if (/\/client\.(ts|js)$/.test(process.argv[1] ?? '')) void cli();
