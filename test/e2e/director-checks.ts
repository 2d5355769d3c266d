// The checks every forwarding method's e2e test runs against a lab with tsvsd configured.
import assert from 'node:assert/strict';
import { VIP, serviceRows, type DirectorLab } from './director-harness.ts';

export interface ForwardingCase {
  tcpPort: number;
  udpPort: number;
  /** The real servers' TCP port (differs from tcpPort only for NAT port mapping). */
  rsPort: number;
  /** Forwarding name ipvsadm prints: Masq, Route, Tunnel. */
  method: string;
  /** ipvsadm's flag for the method, used when editing a real server. */
  flag?: string;
}

function shares(r: { byServer: Record<string, number> }): Record<string, number> {
  return Object.fromEntries(Object.entries(r.byServer).sort(([a], [b]) => a.localeCompare(b)));
}

/** Conns column of each real-server line under the service `proto vip:port` in `-L -n --stats`. */
function statsConns(text: string, proto: 'TCP' | 'UDP', svc: string): Record<string, number> {
  return Object.fromEntries(serviceRows(text, proto, svc).map((f) => [f[0]!, Number(f[1])]));
}

/**
 * 30 HTTP requests (new connection each) and 30 UDP requests: exact round-robin shares, no failure,
 * answers checked byte for byte by the client; the listing's per-real-server conns agree; then one
 * real server is quiesced (weight 0) while a keep-alive connection to it is open: the open connection
 * keeps working and new connections go elsewhere.
 */
export async function checkForwarding(d: DirectorLab, c: ForwardingCase): Promise<void> {
  const rs = d.lab.realServers;
  const n = rs.length;
  const expected = Object.fromEntries(rs.map((r) => [r.role, 10]));
  const before = await tcpCsumErrors(d);
  const http = await d.client('http', c.tcpPort, 10 * n);
  assert.equal(http.failed, 0, `HTTP failures: ${http.errors.join('; ')}`);
  assert.deepEqual(shares(http), expected, 'HTTP round robin shares');
  const udp = await d.client('udp', c.udpPort, 10 * n);
  assert.equal(udp.failed, 0, `UDP failures: ${udp.errors.join('; ')}`);
  assert.deepEqual(shares(udp), expected, 'UDP round robin shares');

  const list = await d.admOk('-L', '-n');
  for (const r of rs) assert.match(list, new RegExp(`  -> ${r.ip.replace(/\./g, '\\.')}:${c.rsPort}\\s+${c.method}\\s+1\\s`), `listing shows ${r.ip} as ${c.method}`);
  const stats = await d.admOk('-L', '-n', '--stats');
  const conns = statsConns(stats, 'TCP', `${VIP}:${c.tcpPort}`);
  assert.deepEqual(Object.values(conns), rs.map(() => 10), `per-real-server conns in --stats:\n${stats}`);
  const udpConns = statsConns(stats, 'UDP', `${VIP}:${c.udpPort}`);
  assert.deepEqual(Object.values(udpConns), rs.map(() => 10), `per-real-server UDP conns in --stats:\n${stats}`);
  const table = await d.admOk('-L', '-n', '-c');
  assert.match(table, /UDP\s+\d\d:\d\d\s+UDP\s+198\.18\.0\.2:\d+\s+198\.18\.1\.100:/);

  // 8 MB up and 8 MB down through the director, every byte checked (large segments with offloads on).
  const xfer = await d.client('xfer', c.tcpPort, 8 << 20);
  assert.equal(xfer.failed, 0, `transfer failures: ${xfer.errors.join('; ')}`);
  assert.equal(xfer.ok, 2);

  const after0 = await tcpCsumErrors(d);
  assert.deepEqual(after0, before, 'no TCP checksum errors at the client or the real servers');

  // Quiesce the server an open keep-alive connection uses.
  const ka = await d.keepAlive(c.tcpPort);
  const victim = rs.find((r) => r.role === ka.first);
  assert.ok(victim, `keep-alive answered by a known server (${ka.first})`);
  await d.admOk('-e', '-t', `${VIP}:${c.tcpPort}`, '-r', `${victim.ip}:${c.rsPort}`, c.flag ?? flagOf(c.method), '-w', '0');
  const after = await d.client('http', c.tcpPort, 6 * (n - 1));
  assert.equal(after.failed, 0, `HTTP failures after quiesce: ${after.errors.join('; ')}`);
  assert.equal(after.byServer[victim.role] ?? 0, 0, 'no new connection to the quiesced server');
  const second = await ka.second();
  assert.equal(second.server, victim.role, 'the open connection still reaches its server');
  assert.equal(second.sameSocket, true);
}

function flagOf(method: string): string {
  return method === 'Masq' ? '-m' : method === 'Tunnel' ? '-i' : '-g';
}

/** TcpInCsumErrors of the client and each real server (nstat's absolute counters). */
export async function tcpCsumErrors(d: DirectorLab): Promise<number[]> {
  const roles = ['client', ...d.lab.realServers.map((r) => r.role)];
  const out: number[] = [];
  for (const role of roles) {
    const r = await d.lab.exec(role, ['nstat', '-az', 'TcpInCsumErrors']);
    const m = /TcpInCsumErrors\s+(\d+)/.exec(r.stdout);
    out.push(m ? Number(m[1]) : 0);
  }
  return out;
}
