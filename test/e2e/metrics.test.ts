// Metrics end to end: tsvsd with --admin on a unix socket in the lab, real traffic through the VIP, a scrape shows the node_ipvs_* counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNetns, waitFor } from '../../src/lab/netns.ts';
import { withDirectorLab, VIP } from './director-harness.ts';
import { parseExposition, type Sample } from '../api/exposition.ts';

/** GET over the admin API's unix socket (reachable from this namespace: it is a file). */
function get(socketPath: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, headers: { host: 'localhost', ...headers }, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

const one = (samples: Sample[], name: string, labels: Record<string, string> = {}) => {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.equal(hits.length, 1, `exactly one ${name} ${JSON.stringify(labels)}`);
  return hits[0]!.value;
};

/** inpkts and outpkts of the service line in `tsvsadm -L -n --stats --exact`. */
function servicePackets(text: string, svc: string): { conns: number; inpkts: number; outpkts: number } {
  const line = text.split('\n').find((l) => l.startsWith(`TCP  ${svc} `));
  assert.ok(line, `service ${svc} in:\n${text}`);
  const [, , conns, inpkts, outpkts] = line.trim().split(/\s+/);
  return { conns: Number(conns), inpkts: Number(inpkts), outpkts: Number(outpkts) };
}

const PROMTOOL = '/usr/bin/promtool';
const skip = !canUseNetns() ? 'needs root' : !existsSync(PROMTOOL) ? `needs Debian's promtool at ${PROMTOOL} (apt-get install -y prometheus)` : false;

/** `promtool check metrics` on a scrape: Prometheus's own parser and linter. */
function promtoolCheck(text: string): { code: number | null; out: string } {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

test('metrics e2e: NAT traffic through the VIP shows in node_ipvs_* and tsvs_* from a scrape; promtool accepts it', { skip, timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-metrics-'));
  const sock = join(dir, 'admin.sock');
  // A second service, health-checked, so that the scrape carries the health families too.
  const config = join(dir, 'tsvs.yaml');
  writeFileSync(
    config,
    `services:
  - protocol: tcp
    address: ${VIP}
    port: 80
    scheduler: wrr
    realservers:
      - { address: 198.18.2.11, port: 80, method: nat, weight: 2, check: { type: http, path: /, interval: 1, timeout: 1 } }
      - { address: 198.18.2.12, port: 80, method: nat, weight: 1, check: { type: tcp, interval: 1, timeout: 1 } }
`,
  );
  try {
    await withDirectorLab(
      'nat',
      async (d) => {
        const rs = d.lab.realServers;
        await d.restore([`-A -t ${VIP}:8080 -s rr`, ...rs.map((r, i) => `-a -t ${VIP}:8080 -r ${r.ip}:80 -m -w ${i + 1}`)].join('\n') + '\n');

        const idle = await get(sock, '/metrics');
        assert.equal(idle.status, 200);
        assert.match(idle.type, /^text\/plain; version=0\.0\.4/);
        let s = parseExposition(idle.body);
        assert.equal(one(s, 'node_ipvs_connections_total'), 0);
        for (const [i, r] of rs.entries()) {
          const labels = { local_address: VIP, local_port: '8080', proto: 'TCP', local_mark: '', remote_address: r.ip, remote_port: '80' };
          assert.equal(one(s, 'node_ipvs_backend_weight', labels), i + 1, `weight of ${r.ip}`);
        }

        // rr ignores weights: 30 new connections give each real server 10.
        const http = await d.client('http', 8080, 30);
        assert.equal(http.failed, 0, http.errors.join('; '));

        const first = parseExposition((await get(sock, '/metrics')).body);
        const stats = servicePackets(await d.admOk('-L', '-n', '--stats', '--exact'), `${VIP}:8080`);
        const second = parseExposition((await get(sock, '/metrics')).body);
        s = second;
        assert.equal(one(s, 'node_ipvs_connections_total'), 30);
        assert.equal(stats.conns, 30);
        // Stray late packets (a retransmitted FIN) may land between the reads: tsvsadm's figure lies between the two scrapes.
        for (const [metric, v] of [
          ['node_ipvs_incoming_packets_total', stats.inpkts],
          ['node_ipvs_outgoing_packets_total', stats.outpkts],
        ] as const) {
          assert.ok(one(first, metric) <= v && v <= one(second, metric), `${metric}: ${one(first, metric)} ≤ tsvsadm ${v} ≤ ${one(second, metric)}`);
        }
        // Each connection carries at least SYN, ACK, request, FIN in and SYN-ACK, response, FIN out.
        assert.ok(one(s, 'node_ipvs_incoming_packets_total') >= 30 * 3, 'incoming packets');
        assert.ok(one(s, 'node_ipvs_outgoing_packets_total') >= 30 * 2, 'outgoing packets (NAT replies cross the director)');
        assert.ok(one(s, 'node_ipvs_incoming_bytes_total') > one(s, 'node_ipvs_incoming_packets_total') * 40, 'incoming bytes');
        assert.ok(one(s, 'node_ipvs_outgoing_bytes_total') > 0, 'outgoing bytes');

        let tracked = 0;
        for (const r of rs) {
          const labels = { local_address: VIP, local_port: '8080', proto: 'TCP', remote_address: r.ip, remote_port: '80' };
          assert.equal(one(s, 'tsvs_backend_connections_total', labels), 10, `conns to ${r.ip}`);
          tracked += one(s, 'node_ipvs_backend_connections_active', labels) + one(s, 'node_ipvs_backend_connections_inactive', labels);
        }
        // Closed connections linger (TIME_WAIT/CLOSE) well past this test: the table still holds them.
        assert.ok(tracked > 0 && tracked <= 30, `active + inactive = ${tracked}`);
        assert.equal(one(s, 'tsvs_conn_table_entries') >= tracked, true);
        assert.ok(one(s, 'tsvs_conn_table_capacity') > 0);
        assert.ok(one(s, 'tsvs_port_rx_frames_total', { ifname: 'lan0' }) > 0, 'lan0 received frames');
        assert.ok(one(s, 'tsvs_port_tx_frames_total', { ifname: 'nat0' }) > 0, 'nat0 sent frames');
        assert.ok(one(s, 'tsvs_parse_total', { verdict: 'OK' }) > 0);

        // The API's JSON agrees with the scrape.
        const list = JSON.parse((await get(sock, '/api/v1/services')).body);
        assert.equal(list.services.find((x: { key: { port: number } }) => x.key.port === 8080).stats.conns, 30);

        // Prometheus's promtool parses and lints a scrape of the live director: both services, their
        // real servers, traffic on each, health checks up, and the refusal counters.
        const web = await d.client('http', 80, 20);
        assert.equal(web.failed, 0, web.errors.join('; '));
        await waitFor('both checked servers up', async () => parseExposition((await get(sock, '/metrics')).body).filter((x) => x.name === 'tsvs_backend_up' && x.value === 1).length === 2, 20_000, 200);
        const scrape = (await get(sock, '/metrics')).body;
        s = parseExposition(scrape);
        assert.ok(one(s, 'tsvs_service_connections_total', { local_port: '80' }) >= 20, 'traffic on the checked service');
        assert.ok(one(s, 'tsvs_healthcheck_checks_total', { remote_address: '198.18.2.11', local_port: '80' }) > 0);
        assert.ok(s.some((x) => x.name === 'tsvs_admin_refused_total') && s.some((x) => x.name === 'tsvs_control_refused_total'));
        const lint = promtoolCheck(scrape);
        assert.equal(lint.code, 0, `promtool check metrics:\n${lint.out}`);
        assert.equal(lint.out.trim(), '', 'no lint findings');
        // The check can fail: a counter without _total is one promtool names.
        assert.notEqual(promtoolCheck(scrape.replace(/tsvs_parse_total/g, 'tsvs_parse')).code, 0);
      },
      3,
      ['--admin', `unix:${sock}`, '--config', config],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
