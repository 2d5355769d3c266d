// The control client over a real unix socket, against a test responder (responder.ts) answering canned lines;
// the real server is tsvsd's (wired by the lead onto the ipvs core). Also the server-side request validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { responder } from './responder.ts';
import { ControlClient, NoDaemonError, requestOnce } from '../../src/ctl/client.ts';
import { IpvsError } from '../../src/ctl/errors.ts';
import { errorResponse, okResponse, parseRequestLine, type Request } from '../../src/ctl/protocol.ts';
import { run } from '../../src/cli/tsvsadm/main.ts';
import { Dataplane } from '../../src/dp/dataplane.ts';
import { MemoryPort } from '../../src/io/memory.ts';
import { validateConfig } from '../../src/ctl/config.ts';

test('ok response: the request carries v, id, op; the result comes back', async () => {
  const r = await responder((req) => okResponse(req.id, { tcp: 900, tcpfin: 120, udp: 300 }));
  try {
    assert.deepEqual(await requestOnce(r.path, { op: 'get-timeout' }), { tcp: 900, tcpfin: 120, udp: 300 });
    assert.deepEqual(r.seen, [{ v: 1, id: 1, op: 'get-timeout' }]);
  } finally {
    r.done();
  }
});

test('error response: rejects with IpvsError carrying the code and op', async () => {
  const r = await responder((req) => errorResponse(req.id, req.op, 'EEXIST'));
  try {
    const c = new ControlClient(r.path);
    await assert.rejects(
      c.request({ op: 'add-service', service: { type: 'tcp', addr: '1.2.3.4', port: 80 }, config: { scheduler: 'wlc', persistent: false, timeout: 0, netmask: '255.255.255.255', onePacket: false, schedFlags: 0, pe: '' } }),
      (e: unknown) => e instanceof IpvsError && e.code === 'EEXIST' && e.op === 'add-service' && e.message === 'Service already exists',
    );
    // The same connection answers a second request (ids advance).
    await assert.rejects(c.request({ op: 'flush' }), (e: unknown) => e instanceof IpvsError && e.op === 'flush');
    c.close();
    assert.deepEqual((r.seen as Request[]).map((q) => q.id), [1, 2]);
  } finally {
    r.done();
  }
});

test('no daemon: absent socket, and a peer that hangs up, give one NoDaemonError naming the path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvsadm-'));
  const missing = join(dir, 'nobody.sock');
  try {
    await assert.rejects(requestOnce(missing, { op: 'hello' }), (e: unknown) => e instanceof NoDaemonError && e.message.includes(missing) && e.message.includes('ENOENT'));
    let err = '';
    const code = await run(['-L', '-n', '--socket', missing], { stdout: () => {}, stderr: (s) => (err += s), readStdin: async () => '', env: {} });
    assert.equal(code, 2);
    assert.equal(err.split('\n').length, 2, 'one line');
    assert.match(err, new RegExp(`^tsvsadm: no tsvsd answering on ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(ENOENT\\)`));
    let err2 = '';
    await run(['-C'], { stdout: () => {}, stderr: (s) => (err2 += s), readStdin: async () => '', env: { TSVS_SOCKET: missing } });
    assert.match(err2, /no tsvsd answering on .*nobody\.sock/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const r = await responder(() => null);
  try {
    await assert.rejects(requestOnce(r.path, { op: 'flush' }), (e: unknown) => e instanceof NoDaemonError && e.message.includes(r.path));
  } finally {
    r.done();
  }
});

test('tsvsadm end to end over the socket: -L -n prints the canned listing', async () => {
  const r = await responder((req) => okResponse(req.id, { version: '1.2.1', size: 4096, services: [] }));
  try {
    let out = '';
    const code = await run(['-Ln', '--socket=' + r.path], { stdout: (s) => (out += s), stderr: () => {}, readStdin: async () => '', env: {} });
    assert.equal(code, 0);
    assert.equal(out, 'IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n');
  } finally {
    r.done();
  }
});

test('server-side validation: good requests typed, malformed ones answered with EINVAL', () => {
  const good = parseRequestLine(JSON.stringify({ v: 1, id: 4, op: 'delete-server', service: { type: 'fwmark', fwmark: 3 }, dest: { addr: '198.18.1.11', port: 0 } }));
  assert.equal(good.ok, true);
  const cases = [
    'not json',
    JSON.stringify({ v: 2, id: 1, op: 'flush' }),
    JSON.stringify({ v: 1, id: 5, op: 'nope' }),
    JSON.stringify({ v: 1, id: 6, op: 'delete-service', service: { type: 'tcp', addr: '1.2.3', port: 80 } }),
    JSON.stringify({ v: 1, id: 7, op: 'add-server', service: { type: 'tcp', addr: '1.2.3.4', port: 80 }, dest: { addr: '1.2.3.5', port: 80 } }),
  ];
  for (const c of cases) {
    const r = parseRequestLine(c);
    assert.equal(r.ok, false, c);
    if (!r.ok) assert.equal(r.response.ok === false && r.response.error.code, 'EINVAL');
  }
  const bad = parseRequestLine(cases[3]!);
  assert.equal(!bad.ok && bad.response.id, 6);
});

test('tsvsadm --start-daemon / --stop-daemon / -L --daemon against a Dataplane: ipvsadm\'s output, messages and exit codes', async () => {
  const dp = new Dataplane([new MemoryPort('eth1')], validateConfig({ interfaces: ['eth1'], addresses: ['198.18.1.2/24@eth1'] }), () => {});
  const r = await responder((req) => dp.handle(req));
  const adm = async (line: string) => {
    let out = '';
    let err = '';
    const code = await run([...line.split(' '), '--socket', r.path], { stdout: (s) => (out += s), stderr: (s) => (err += s), readStdin: async () => '', env: {} });
    return { code, out, err };
  };
  try {
    assert.deepEqual(await adm('-L --daemon'), { code: 0, out: '', err: '' });
    assert.deepEqual(await adm('--stop-daemon master'), { code: 255, out: '', err: 'No daemon is running\n' });
    assert.deepEqual(await adm('--start-daemon master'), { code: 255, out: '', err: 'No such device\n' }, 'the default interface is eth0');
    assert.deepEqual(await adm('--start-daemon master --mcast-interface eth1 --syncid 3 --mcast-ttl 2'), { code: 0, out: '', err: '' });
    assert.deepEqual(await adm('--start-daemon master --mcast-interface eth1'), { code: 255, out: '', err: 'Daemon has already run\n' });
    assert.deepEqual(await adm('--start-daemon backup --mcast-interface=eth1 --sync-maxlen 9000 --mcast-group 239.0.0.9 --mcast-port 9999'), { code: 0, out: '', err: '' });
    assert.deepEqual(await adm('-L --daemon'), {
      code: 0,
      out: 'master sync daemon (mcast=eth1, syncid=3, maxlen=1472, group=224.0.0.81, port=8848, ttl=2)\n'
        + 'backup sync daemon (mcast=eth1, syncid=0, maxlen=9000, group=239.0.0.9, port=9999, ttl=1)\n',
      err: '',
    });
    assert.equal((await adm('--start-daemon backup --mcast-group 10.0.0.1')).code, 2);
    assert.deepEqual(await adm('--stop-daemon backup'), { code: 0, out: '', err: '' });
    assert.deepEqual(await adm('--stop-daemon master'), { code: 0, out: '', err: '' });
    assert.deepEqual(await adm('-L --daemon'), { code: 0, out: '', err: '' });
  } finally {
    r.done();
  }
});
