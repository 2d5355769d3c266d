// The client side of the failover tests: long-lived TCP connections streaming hashed bytes both ways through the VIP, plus a steady stream of short HTTP requests; driven by stdin ("open N", "finish").
import { connect, type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { vip: { type: 'string' }, port: { type: 'string' }, http: { type: 'string' } } });
const vip = values.vip!;
const CHUNK = 4096;
const EVERY_MS = 20;

interface Conn {
  local: string;
  sent: number;
  received: number;
  sentHash: string;
  recvHash: string;
  error: string | null;
  closed: boolean;
}

const conns: Conn[] = [];
const done: Promise<void>[] = [];
const streams: Array<() => void> = [];
const shorts: Array<{ t: number; ok: boolean; ms: number }> = [];
let stopShort = false;

function open(id: number): Promise<void> {
  return new Promise((ready, fail) => {
    const s: Socket = connect({ host: vip, port: Number(values.port) });
    const tx = createHash('sha256');
    const rx = createHash('sha256');
    const c: Conn = { local: '', sent: 0, received: 0, sentHash: '', recvHash: '', error: null, closed: false };
    let seed = (id * 2654435761) >>> 0;
    let timer: NodeJS.Timeout | undefined;
    let ending = false;
    const chunk = () => {
      const b = Buffer.allocUnsafe(CHUNK);
      for (let i = 0; i < CHUNK; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        b[i] = seed >>> 24;
      }
      return b;
    };
    s.on('connect', () => {
      c.local = `${s.localAddress}:${s.localPort}`;
      conns.push(c);
      timer = setInterval(() => {
        if (ending || s.writableLength > 1 << 20) return;
        const b = chunk();
        tx.update(b);
        c.sent += b.length;
        s.write(b);
      }, EVERY_MS);
      streams.push(() => {
        ending = true;
        clearInterval(timer);
        s.end();
      });
      ready();
    });
    s.on('data', (d) => {
      rx.update(d);
      c.received += d.length;
    });
    s.on('error', (e) => {
      c.error = (e as NodeJS.ErrnoException).code ?? e.message;
      clearInterval(timer);
      fail(e);
    });
    done.push(
      new Promise((r) => s.on('close', () => {
        c.closed = true;
        c.sentHash = tx.digest('hex');
        c.recvHash = rx.digest('hex');
        r();
      })),
    );
  });
}

async function shortLoop() {
  while (!stopShort) {
    const t = Date.now();
    const ok = await new Promise<boolean>((resolve) => {
      const req = request({ host: vip, port: Number(values.http), path: '/', agent: false, timeout: 1000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
        res.on('error', () => resolve(false));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve(false));
      req.end();
    });
    shorts.push({ t, ok, ms: Date.now() - t });
    await new Promise((r) => setTimeout(r, 100));
  }
}

let next = 0;
const loop = shortLoop();
for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === 'open') {
    const n = Number(arg);
    try {
      await Promise.all(Array.from({ length: n }, () => open(++next)));
      console.log(`opened ${n}`);
    } catch (e) {
      console.log(`failed ${(e as Error).message}`);
    }
  } else if (cmd === 'finish') {
    stopShort = true;
    for (const end of streams) end();
    // Everything sent must come back before the connections close (the echo ends after our FIN).
    await Promise.race([Promise.all(done), new Promise((r) => setTimeout(r, 30_000))]);
    await loop;
    console.log(JSON.stringify({ conns, shorts }));
    process.exit(0);
  }
}
