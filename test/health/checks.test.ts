// The checkers against real servers on 127.0.0.1: TCP, HTTP (status, digest, regex), HTTPS, UDP, ping, commands; closed ports and timeouts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTcpServer, type Server as TcpServer, type AddressInfo } from 'node:net';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCheck, parseStatusRanges, matchHexPattern, type CheckSpec } from '../../src/health/checks.ts';

const HOST = '127.0.0.1';
const BODY = 'hello from the real server\n';
let tcp: TcpServer;
let http: HttpServer;
let https: HttpServer | null = null;
let udpEcho: UdpSocket;
let udpSilent: UdpSocket;
let closedPort = 0;
let closedUdpPort = 0;
let tmp = '';
const port = (s: { address(): unknown }) => (s.address() as AddressInfo).port;

function handler(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) {
  if (req.url === '/slow') return; // never answers: the check must time out
  if (req.url === '/500') {
    res.writeHead(500).end('broken');
    return;
  }
  if (req.url === '/redirect') {
    res.writeHead(301, { Location: '/' }).end();
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/plain' }).end(BODY);
}

before(async () => {
  tcp = createTcpServer((s) => s.end());
  await new Promise<void>((r) => tcp.listen(0, HOST, r));
  http = createHttpServer(handler);
  await new Promise<void>((r) => http.listen(0, HOST, r));
  const probe = createTcpServer();
  await new Promise<void>((r) => probe.listen(0, HOST, r));
  closedPort = port(probe);
  await new Promise((r) => probe.close(r));
  tmp = mkdtempSync(join(tmpdir(), 'tsvs-health-'));
  const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(tmp, 'k.pem'), '-out', join(tmp, 'c.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  if (gen.status === 0) {
    https = createHttpsServer({ key: readFileSync(join(tmp, 'k.pem')), cert: readFileSync(join(tmp, 'c.pem')) }, handler);
    await new Promise<void>((r) => https!.listen(0, HOST, r));
  }
  udpEcho = createSocket('udp4');
  udpEcho.on('message', (m, rinfo) => udpEcho.send(Buffer.concat([Buffer.from('PONG:'), m]), rinfo.port, rinfo.address));
  await new Promise<void>((r) => udpEcho.bind(0, HOST, r));
  udpSilent = createSocket('udp4');
  await new Promise<void>((r) => udpSilent.bind(0, HOST, r));
  const u = createSocket('udp4');
  await new Promise<void>((r) => u.bind(0, HOST, r));
  closedUdpPort = port(u);
  await new Promise<void>((r) => u.close(() => r()));
});

after(async () => {
  tcp.close();
  http.closeAllConnections();
  http.close();
  if (https) {
    (https as unknown as { closeAllConnections(): void }).closeAllConnections();
    https.close();
  }
  udpEcho.close();
  udpSilent.close();
  rmSync(tmp, { recursive: true, force: true });
});

const spec = (s: Partial<CheckSpec> & Pick<CheckSpec, 'type'>): CheckSpec => ({ host: HOST, port: 0, timeoutMs: 1000, ...s });

test('tcp: a listener is up, a closed port is down', async () => {
  const ok = await runCheck(spec({ type: 'tcp', port: port(tcp) }));
  assert.equal(ok.ok, true, ok.detail);
  assert.ok(ok.latencyMs >= 0);
  const bad = await runCheck(spec({ type: 'tcp', port: closedPort }));
  assert.equal(bad.ok, false);
  assert.match(bad.detail, /ECONNREFUSED/);
});

test('http: status ranges, digest and regex decide', async () => {
  const p = port(http);
  const md5 = createHash('md5').update(BODY).digest('hex');
  const cases: Array<[Partial<CheckSpec>, boolean, RegExp]> = [
    [{ path: '/' }, true, /HTTP status 200/],
    [{ path: '/500' }, false, /HTTP status 500/],
    [{ path: '/500', status: [[500, 599]] }, true, /500/],
    [{ path: '/redirect' }, false, /301/],
    [{ path: '/redirect', status: parseStatusRanges('200-299 301') }, true, /301/],
    [{ path: '/', digest: md5 }, true, /digest ok/],
    [{ path: '/', digest: '0'.repeat(32) }, false, /digest mismatch: [0-9a-f]{32}/],
    [{ path: '/', regex: 'real\\s+server' }, true, /regex ok/],
    [{ path: '/', regex: '^nope' }, false, /does not match/],
    [{ path: '/slow', timeoutMs: 300 }, false, /timeout after 300 ms/],
  ];
  for (const [extra, ok, detail] of cases) {
    const r = await runCheck(spec({ type: 'http', port: p, ...extra }));
    assert.equal(r.ok, ok, `${JSON.stringify(extra)}: ${r.detail}`);
    assert.match(r.detail, detail);
  }
  const closed = await runCheck(spec({ type: 'http', port: closedPort }));
  assert.equal(closed.ok, false);
  assert.match(closed.detail, /ECONNREFUSED/);
});

test('https: self-signed accepted by default (as keepalived), refused when verification is on', async (t) => {
  if (!https) return t.skip('openssl could not make a test certificate');
  const p = port(https);
  const r = await runCheck(spec({ type: 'https', port: p, path: '/', digest: createHash('md5').update(BODY).digest('hex') }));
  assert.equal(r.ok, true, r.detail);
  const v = await runCheck(spec({ type: 'https', port: p, verifyTls: true }));
  assert.equal(v.ok, false);
  assert.match(v.detail, /self.signed|certificate/i);
  const slow = await runCheck(spec({ type: 'https', port: p, path: '/slow', timeoutMs: 300 }));
  assert.equal(slow.ok, false);
  assert.match(slow.detail, /timeout/);
});

test('udp: a reply is up (optionally matched), silence or ICMP unreachable is down', async () => {
  const echo = port(udpEcho);
  let r = await runCheck(spec({ type: 'udp', port: echo, payloadHex: Buffer.from('ping').toString('hex') }));
  assert.equal(r.ok, true, r.detail);
  r = await runCheck(spec({ type: 'udp', port: echo, payloadHex: Buffer.from('ping').toString('hex'), regex: '^PONG:ping$' }));
  assert.equal(r.ok, true, r.detail);
  r = await runCheck(spec({ type: 'udp', port: echo, regex: '^nope' }));
  assert.equal(r.ok, false);
  r = await runCheck(spec({ type: 'udp', port: echo, replyHex: Buffer.from('PONG').toString('hex').replace(/^5/, 'x') }));
  assert.equal(r.ok, true, r.detail);
  r = await runCheck(spec({ type: 'udp', port: port(udpSilent), timeoutMs: 300 }));
  assert.equal(r.ok, false);
  assert.match(r.detail, /no UDP reply/);
  // keepalived's mode without require_reply: silence is fine, an ICMP port unreachable is not.
  r = await runCheck(spec({ type: 'udp', port: port(udpSilent), timeoutMs: 300, requireReply: false }));
  assert.equal(r.ok, true, r.detail);
  r = await runCheck(spec({ type: 'udp', port: closedUdpPort, timeoutMs: 1000, requireReply: false }));
  assert.equal(r.ok, false);
  assert.match(r.detail, /ECONNREFUSED/);
});

test('ping: loopback answers; the system ping is used', async (t) => {
  if (spawnSync('ping', ['-V']).status !== 0) return t.skip('no ping binary');
  const r = await runCheck(spec({ type: 'ping', timeoutMs: 2000 }));
  assert.equal(r.ok, true, r.detail);
});

test('misc: exit 0 up, 1 down, dynamic 2..255 up with weight code-2, timeout kills the command', async () => {
  const misc = (command: string, extra: Partial<CheckSpec> = {}) => runCheck(spec({ type: 'misc', command, ...extra }));
  assert.equal((await misc('exit 0')).ok, true);
  const one = await misc('echo broken >&2; exit 1');
  assert.equal(one.ok, false);
  assert.match(one.detail, /exit 1: broken/);
  const dyn = await misc('exit 12', { dynamic: true });
  assert.equal(dyn.ok, true);
  assert.equal(dyn.weight, 10);
  const dyn2 = await misc('exit 2', { dynamic: true });
  assert.equal(dyn2.weight, 0);
  assert.equal((await misc('exit 1', { dynamic: true })).ok, false);
  assert.equal((await misc('exit 12')).ok, false);
  const slow = await misc('sleep 5', { timeoutMs: 200 });
  assert.equal(slow.ok, false);
  assert.match(slow.detail, /timed out after 200 ms/);
});

test('checks never throw, whatever the spec', async () => {
  const odd: CheckSpec[] = [
    spec({ type: 'tcp', host: 'not an address', port: 1 }),
    spec({ type: 'http', port: 70000 }),
    spec({ type: 'udp', host: '::1', port: 1, timeoutMs: 200, source: '127.0.0.1' }),
    spec({ type: 'misc' }),
    spec({ type: 'nope' as CheckSpec['type'] }),
  ];
  for (const s of odd) {
    const r = await runCheck(s);
    assert.equal(r.ok, false, `${JSON.stringify(s)} → ${r.detail}`);
    assert.equal(typeof r.detail, 'string');
  }
});

test('status ranges and hex patterns parse as documented', () => {
  assert.deepEqual(parseStatusRanges('200-299 400-499 503'), [[200, 299], [400, 499], [503, 503]]);
  assert.deepEqual(parseStatusRanges([200, '301-302']), [[200, 200], [301, 302]]);
  assert.throws(() => parseStatusRanges('2xx'));
  assert.equal(matchHexPattern(Buffer.from([0xab, 0x12]), 'abx2'), true);
  assert.equal(matchHexPattern(Buffer.from([0xab, 0x12]), 'ac'), false);
});
