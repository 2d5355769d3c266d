// The control socket under hostile clients: malformed lines, huge lines, too many clients, stalls, idlers, pipelining.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:net';
import { MemoryPort } from '../../src/io/memory.ts';
import { Dataplane } from '../../src/dp/dataplane.ts';
import { validateConfig } from '../../src/ctl/config.ts';
import { PROTOCOL_VERSION } from '../../src/ctl/protocol.ts';
import { requestOnce } from '../../src/ctl/client.ts';
import { rawControlClient as client, streamWithoutNewline } from './raw-client.ts';
import { CONTROL_LIMITS, controlRefusals, startControlServer, stopControlServer, type ControlLimits, type RequestHandler } from '../../src/ctl/server.ts';

function handler(delayMs = 0): RequestHandler {
  const lan = new MemoryPort('lan0', { mac: new Uint8Array([2, 0, 0, 0, 1, 1]) });
  const config = validateConfig({
    interfaces: ['lan0'],
    addresses: ['198.18.1.100/32@lan0'],
    services: [{ protocol: 'tcp', address: '198.18.1.100', port: 80, realservers: [{ address: '198.18.1.11', port: 80 }] }],
  });
  const dp = new Dataplane([lan], config, () => {});
  return async (req) => {
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    return dp.handle(req);
  };
}

async function withServer(limits: Partial<ControlLimits>, fn: (path: string, server: Server) => Promise<void>, delayMs = 0): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-ctl-'));
  const path = join(dir, 'ctl.sock');
  const server = await startControlServer(path, handler(delayMs), { ...CONTROL_LIMITS, ...limits });
  try {
    await fn(path, server);
  } finally {
    await stopControlServer(server, path);
    rmSync(dir, { recursive: true, force: true });
  }
}


const req = (id: number, op = 'get-timeout') => JSON.stringify({ v: PROTOCOL_VERSION, id, op }) + '\n';
const until = async (what: string, f: () => boolean, ms = 5000) => {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('malformed lines get EINVAL and the connection keeps serving', async () => {
  await withServer({}, async (path, server) => {
    const c = client(path);
    await c.connected;
    c.sock.write('{"v":1,"id":\n' + 'not json at all\n' + '\u0000\u00ff garbage\n' + '{"v":1,"id":7,"op":"no-such-op"}\n' + req(8));
    await until('five answers', () => c.lines.length === 5);
    assert.deepEqual(c.lines.slice(0, 3).map((l) => [l.ok, l.error!.code, l.error!.message]), Array(3).fill([false, 'EINVAL', 'malformed request: not JSON']));
    assert.equal(c.lines[3]!.id, 7);
    assert.match(c.lines[3]!.error!.message, /malformed no-such-op request/);
    assert.equal(c.lines[4]!.id, 8);
    assert.equal(c.lines[4]!.ok, true);
    assert.equal(controlRefusals(server).malformed, 4);
    c.sock.destroy();
  });
});

test('a 50 MB request line is answered "too long" and closed after maxLine bytes; others are served meanwhile', async () => {
  await withServer({}, async (path, server) => {
    const c = client(path);
    await c.connected;
    const before = process.memoryUsage();
    const sent = await streamWithoutNewline(c.sock, 50 << 20);
    await c.closed;
    assert.ok(sent < 50 << 20, `hung up after ${sent} bytes`);
    assert.equal(c.lines.length, 1);
    assert.deepEqual([c.lines[0]!.ok, c.lines[0]!.error!.code], [false, 'EINVAL']);
    assert.equal(c.lines[0]!.error!.message, `request line too long (limit ${CONTROL_LIMITS.maxLine} bytes)`);
    assert.equal(controlRefusals(server).lineTooLong, 1);
    // What the server held for that client never exceeded the line limit (plus a read chunk).
    const grown = process.memoryUsage().arrayBuffers - before.arrayBuffers;
    assert.ok(grown < 8 << 20, `external memory grew ${grown} bytes`);
    assert.deepEqual(await requestOnce(path, { op: 'get-timeout' }), { tcp: 900, tcpfin: 120, udp: 300 });
  });
});

test('a line just under the limit is parsed (EINVAL as JSON), one byte over is refused', async () => {
  const maxLine = 4096;
  await withServer({ maxLine }, async (path) => {
    const ok = client(path);
    await ok.connected;
    ok.sock.write(' '.repeat(maxLine - 1) + 'x\n');
    await until('answer', () => ok.lines.length === 1);
    assert.equal(ok.lines[0]!.error!.message, 'malformed request: not JSON');
    ok.sock.destroy();
    const over = client(path);
    await over.connected;
    // Over the limit across two writes, the newline in the second.
    over.sock.write('y'.repeat(maxLine));
    await new Promise((r) => setTimeout(r, 20));
    over.sock.write('y\n');
    await over.closed;
    assert.match(over.lines[0]!.error!.message, /too long/);
  });
});

test('beyond maxClients a connection is answered EBUSY and closed; a freed slot serves again', async () => {
  await withServer({ maxClients: 8 }, async (path, server) => {
    const held = Array.from({ length: 8 }, () => client(path));
    await Promise.all(held.map((c) => c.connected));
    // Each holder is served: its slot is real.
    for (const [i, c] of held.entries()) c.sock.write(req(i + 1));
    await until('8 answers', () => held.every((c) => c.lines.length === 1));
    const extra = Array.from({ length: 200 }, () => client(path));
    await Promise.all(extra.map((c) => c.closed));
    for (const c of extra) {
      assert.equal(c.lines.length, 1);
      assert.equal(c.lines[0]!.error!.code, 'EBUSY');
      assert.equal(c.lines[0]!.error!.message, 'too many control clients (8): try again');
    }
    assert.equal(controlRefusals(server).tooManyClients, 200);
    held[0]!.sock.destroy();
    await held[0]!.closed;
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await requestOnce(path, { op: 'get-timeout' }), { tcp: 900, tcpfin: 120, udp: 300 });
    for (const c of held) c.sock.destroy();
  });
});

test('a started line that stalls (even dripping a byte at a time) is closed at the line deadline; an idle client at the idle deadline', async () => {
  await withServer({ lineTimeoutMs: 400, idleTimeoutMs: 600 }, async (path, server) => {
    const drip = client(path);
    await drip.connected;
    const t0 = Date.now();
    const iv = setInterval(() => drip.sock.write('{'), 50);
    const closedAt = await drip.closed;
    clearInterval(iv);
    assert.ok(closedAt - t0 >= 350 && closedAt - t0 < 2000, `closed after ${closedAt - t0} ms`);
    assert.deepEqual([drip.lines[0]!.error!.code, drip.lines[0]!.error!.message], ['ETIMEDOUT', 'request line not completed within 0.4 s']);

    const idle = client(path);
    await idle.connected;
    idle.sock.write(req(1));
    const t1 = Date.now();
    const idleAt = await idle.closed;
    assert.ok(idleAt - t1 >= 550, `idle close after ${idleAt - t1} ms`);
    assert.equal(idle.lines[0]!.ok, true);
    assert.deepEqual([idle.lines[1]!.error!.code, idle.lines[1]!.error!.message], ['ETIMEDOUT', 'idle for 0.6 s: connection closed']);
    assert.equal(controlRefusals(server).stalled, 1);
    assert.equal(controlRefusals(server).idle, 1);
  });
});

test('a request in flight is not idle: a slow answer outlives the idle deadline', async () => {
  await withServer(
    { idleTimeoutMs: 200 },
    async (path) => {
      const c = client(path);
      await c.connected;
      c.sock.write(req(5));
      await until('answer', () => c.lines.length === 1, 3000);
      assert.equal(c.lines[0]!.id, 5);
      assert.equal(c.lines[0]!.ok, true);
      await c.closed;
    },
    500,
  );
});

test('pipelining 20000 requests without pausing is answered in order with bounded queueing', async () => {
  let inFlight = 0;
  let peak = 0;
  const base = handler();
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-ctl-'));
  const path = join(dir, 'ctl.sock');
  const server = await startControlServer(path, async (r, s, sig) => {
    peak = Math.max(peak, ++inFlight);
    try {
      return await base(r, s, sig);
    } finally {
      inFlight--;
    }
  }, { ...CONTROL_LIMITS, maxQueued: 16 });
  try {
    const c = client(path);
    await c.connected;
    const n = 20_000;
    c.sock.write(Array.from({ length: n }, (_, i) => req(i + 1)).join(''));
    await until('all answers', () => c.lines.length === n, 20_000);
    assert.ok(c.lines.every((l, i) => l.id === i + 1 && l.ok), 'in order, all answered');
    assert.equal(peak, 1, 'one request of a connection at a time');
    c.sock.destroy();
  } finally {
    await stopControlServer(server, path);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a client that never reads its replies is dropped once maxUnread bytes wait for it', async () => {
  await withServer({ maxUnread: 64 * 1024 }, async (path, server) => {
    const c = client(path);
    await c.connected;
    c.sock.pause();
    // `list` answers are ~1 KB each; the client reads none of them.
    let i = 0;
    const iv = setInterval(() => c.sock.write(Array.from({ length: 200 }, () => req(++i, 'list')).join('')), 5);
    await c.closed;
    clearInterval(iv);
    assert.equal(controlRefusals(server).slowReader, 1);
    assert.deepEqual(await requestOnce(path, { op: 'get-timeout' }), { tcp: 900, tcpfin: 120, udp: 300 });
  });
});
