// Metrics rendering: node_exporter's node_ipvs_* families exactly, tsvs's own families, escaping, strict text-format check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderMetrics, escapeLabelValue, parsePoolName } from '../../src/api/metrics.ts';
import type { CountersResult, DestEntry, ListResult, ServiceEntry } from '../../src/ctl/protocol.ts';
import type { HealthSnapshot } from '../../src/health/index.ts';
import { checkExposition } from './exposition.ts';

const zeroRates = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };

function dest(addr: string, port: number, o: Partial<DestEntry>): DestEntry {
  return {
    addr,
    port,
    fwd: 'tunnel',
    weight: 1,
    uThreshold: 0,
    lThreshold: 0,
    tunType: 'ipip',
    tunPort: 0,
    tunCsum: 'nocsum',
    activeConns: 0,
    inactConns: 0,
    persistConns: 0,
    stats: { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 },
    rates: zeroRates,
    ...o,
  };
}

function svc(key: ServiceEntry['key'], dests: DestEntry[], stats: ServiceEntry['stats'], rates = zeroRates): ServiceEntry {
  return { key, scheduler: 'wlc', persistent: false, timeout: 0, netmask: '255.255.255.255', onePacket: false, schedFlags: 0, pe: '', stats, rates, dests };
}

// The same pool as node_exporter's fixture (collector/fixtures/proc/net/ip_vs), expressed as a list result.
const list: ListResult = {
  version: '1.2.1',
  size: 4096,
  services: [
    svc(
      { type: 'tcp', addr: '192.168.0.22', port: 3306 },
      [dest('192.168.82.22', 3306, { weight: 100, activeConns: 248, inactConns: 2 }), dest('192.168.83.24', 3306, { weight: 100, activeConns: 248, inactConns: 2 })],
      { conns: 23765872, inpkts: 3811989221, outpkts: 0, inbytes: 89991519156915, outbytes: 0 },
    ),
    svc(
      { type: 'fwmark', fwmark: 0x10001000 },
      [dest('192.168.49.32', 3306, { weight: 20, activeConns: 321, inactConns: 5 }), dest('192.168.50.26', 3306, { weight: 0, activeConns: 0, inactConns: 0 })],
      { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 },
    ),
  ],
};

const counters: CountersResult = {
  rxFrames: 10,
  txFrames: 9,
  parse: { OK: 8, TRUNCATED: 2 },
  drops: { no_service: 1, ttl_expired: 0 },
  ipvs: { no_service: 1 },
  conns: { count: 3, capacity: 1024, overflow: 0, earlyDrop: 0 },
  arpReplies: 1,
  icmpEchoReplies: 0,
  ports: [{ ifname: 'lan0', kind: 'memory', rxFrames: 10, txFrames: 9, rxBytes: 1000, txBytes: 900, rxDropped: 0, txErrors: 0 }],
};

const NODE_GOLDEN = `# HELP node_ipvs_backend_connections_active The current active connections by local and remote address.
# TYPE node_ipvs_backend_connections_active gauge
node_ipvs_backend_connections_active{local_address="",local_mark="10001000",local_port="0",proto="FWM",remote_address="192.168.49.32",remote_port="3306"} 321
node_ipvs_backend_connections_active{local_address="",local_mark="10001000",local_port="0",proto="FWM",remote_address="192.168.50.26",remote_port="3306"} 0
node_ipvs_backend_connections_active{local_address="192.168.0.22",local_mark="",local_port="3306",proto="TCP",remote_address="192.168.82.22",remote_port="3306"} 248
node_ipvs_backend_connections_active{local_address="192.168.0.22",local_mark="",local_port="3306",proto="TCP",remote_address="192.168.83.24",remote_port="3306"} 248
# HELP node_ipvs_backend_connections_inactive The current inactive connections by local and remote address.
# TYPE node_ipvs_backend_connections_inactive gauge
node_ipvs_backend_connections_inactive{local_address="",local_mark="10001000",local_port="0",proto="FWM",remote_address="192.168.49.32",remote_port="3306"} 5
node_ipvs_backend_connections_inactive{local_address="",local_mark="10001000",local_port="0",proto="FWM",remote_address="192.168.50.26",remote_port="3306"} 0
node_ipvs_backend_connections_inactive{local_address="192.168.0.22",local_mark="",local_port="3306",proto="TCP",remote_address="192.168.82.22",remote_port="3306"} 2
node_ipvs_backend_connections_inactive{local_address="192.168.0.22",local_mark="",local_port="3306",proto="TCP",remote_address="192.168.83.24",remote_port="3306"} 2
# HELP node_ipvs_backend_weight The current backend weight by local and remote address.
# TYPE node_ipvs_backend_weight gauge
node_ipvs_backend_weight{local_address="",local_mark="10001000",local_port="0",proto="FWM",remote_address="192.168.49.32",remote_port="3306"} 20
node_ipvs_backend_weight{local_address="",local_mark="10001000",local_port="0",proto="FWM",remote_address="192.168.50.26",remote_port="3306"} 0
node_ipvs_backend_weight{local_address="192.168.0.22",local_mark="",local_port="3306",proto="TCP",remote_address="192.168.82.22",remote_port="3306"} 100
node_ipvs_backend_weight{local_address="192.168.0.22",local_mark="",local_port="3306",proto="TCP",remote_address="192.168.83.24",remote_port="3306"} 100
# HELP node_ipvs_connections_total The total number of connections made.
# TYPE node_ipvs_connections_total counter
node_ipvs_connections_total 23765872
# HELP node_ipvs_incoming_bytes_total The total amount of incoming data.
# TYPE node_ipvs_incoming_bytes_total counter
node_ipvs_incoming_bytes_total 89991519156915
# HELP node_ipvs_incoming_packets_total The total number of incoming packets.
# TYPE node_ipvs_incoming_packets_total counter
node_ipvs_incoming_packets_total 3811989221
# HELP node_ipvs_outgoing_bytes_total The total amount of outgoing data.
# TYPE node_ipvs_outgoing_bytes_total counter
node_ipvs_outgoing_bytes_total 0
# HELP node_ipvs_outgoing_packets_total The total number of outgoing packets.
# TYPE node_ipvs_outgoing_packets_total counter
node_ipvs_outgoing_packets_total 0
`;

test('node_ipvs_* families: names, HELP, TYPE, labels and values exactly as node_exporter prints them', () => {
  const text = renderMetrics({ list, counters });
  assert.ok(text.startsWith(NODE_GOLDEN), 'the exposition opens with the eight node_exporter families');
  checkExposition(text);
});

test('node_ipvs totals come from the director totals when given, else from the services sum', () => {
  const t = { conns: 7, inpkts: 8, outpkts: 9, inbytes: 10, outbytes: 11 };
  const text = renderMetrics({ list, counters, totals: t });
  assert.match(text, /^node_ipvs_connections_total 7$/m);
  assert.match(text, /^node_ipvs_outgoing_bytes_total 11$/m);
  const none = renderMetrics({ list: { ...list, services: [] }, counters });
  assert.match(none, /^node_ipvs_connections_total 0$/m);
  // A family without samples still announces itself (as Go's client does for collectors that ran).
  assert.match(none, /^# TYPE node_ipvs_backend_weight gauge$/m);
  assert.doesNotMatch(renderMetrics({ list, counters, nodeCompat: false }), /node_ipvs_/);
});

test('tsvs families: drops by reason, parse verdicts, conn table, ports, service rates', () => {
  const withRates: ListResult = {
    ...list,
    services: [svc({ type: 'udp', addr: '198.18.1.100', port: 53 }, [dest('198.18.1.11', 53, { rates: { cps: 3, inpps: 4, outpps: 5, inbps: 600, outbps: 700 } })], list.services[0]!.stats, { cps: 1, inpps: 2, outpps: 3, inbps: 400, outbps: 500 })],
  };
  const text = renderMetrics({ list: withRates, counters });
  checkExposition(text);
  const lines = new Set(text.split('\n'));
  for (const l of [
    '# TYPE tsvs_packets_dropped_total counter',
    'tsvs_packets_dropped_total{reason="no_service"} 1',
    'tsvs_packets_dropped_total{reason="ttl_expired"} 0',
    'tsvs_parse_total{verdict="OK"} 8',
    'tsvs_parse_total{verdict="TRUNCATED"} 2',
    'tsvs_conn_table_entries 3',
    'tsvs_conn_table_capacity 1024',
    'tsvs_conn_table_overflow_total 0',
    'tsvs_conn_table_early_drop_total 0',
    'tsvs_port_rx_frames_total{ifname="lan0"} 10',
    'tsvs_port_tx_bytes_total{ifname="lan0"} 900',
    'tsvs_port_rx_dropped_total{ifname="lan0"} 0',
    '# TYPE tsvs_service_rate_cps gauge',
    'tsvs_service_rate_cps{local_address="198.18.1.100",local_mark="",local_port="53",proto="UDP"} 1',
    'tsvs_service_rate_outbps{local_address="198.18.1.100",local_mark="",local_port="53",proto="UDP"} 500',
    'tsvs_backend_rate_inpps{local_address="198.18.1.100",local_mark="",local_port="53",proto="UDP",remote_address="198.18.1.11",remote_port="53"} 4',
    'tsvs_service_connections_total{local_address="198.18.1.100",local_mark="",local_port="53",proto="UDP"} 23765872',
  ]) {
    assert.ok(lines.has(l), `missing line: ${l}`);
  }
  assert.doesNotMatch(text, /tsvs_backend_up/, 'no health families without a health snapshot');
});

test('health families from a snapshot: up, latency in seconds, failures', () => {
  const health: HealthSnapshot = {
    pools: [
      {
        service: 'TCP 198.18.1.100:80',
        quorumUp: true,
        sorryActive: false,
        liveWeight: 1,
        servers: [
          { addr: '198.18.1.11', port: 80, state: 'up', lastChange: 1, checks: 10, failures: 1, transitions: 1, lastLatencyMs: 2.5, lastDetail: 'HTTP 200', weight: 1 },
          { addr: '198.18.1.12', port: 80, state: 'down', lastChange: 2, checks: 10, failures: 6, transitions: 2, lastLatencyMs: null, lastDetail: 'refused', weight: null },
        ],
      },
    ],
    counters: { checks: 20, failures: 7, transitions: 3, quorumChanges: 0, requestErrors: 0 },
  };
  const text = renderMetrics({ list, counters, health });
  checkExposition(text);
  const b = (ip: string) => `{local_address="198.18.1.100",local_mark="",local_port="80",proto="TCP",remote_address="${ip}",remote_port="80"}`;
  assert.match(text, new RegExp(`^tsvs_backend_up${escapeRe(b('198.18.1.11'))} 1$`, 'm'));
  assert.match(text, new RegExp(`^tsvs_backend_up${escapeRe(b('198.18.1.12'))} 0$`, 'm'));
  assert.match(text, new RegExp(`^tsvs_healthcheck_latency_seconds${escapeRe(b('198.18.1.11'))} 0.0025$`, 'm'));
  assert.doesNotMatch(text, new RegExp(`^tsvs_healthcheck_latency_seconds${escapeRe(b('198.18.1.12'))}`, 'm'), 'no latency before a check answered');
  assert.match(text, new RegExp(`^tsvs_healthcheck_failures_total${escapeRe(b('198.18.1.12'))} 6$`, 'm'));
  assert.match(text, /^tsvs_service_quorum_up\{local_address="198.18.1.100",local_mark="",local_port="80",proto="TCP"\} 1$/m);
});

test('label values are escaped (backslash, quote, newline) and the result still parses', () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  const odd: CountersResult = { ...counters, drops: { 'we"ird\\reason\n': 4 }, ports: [{ ...counters.ports[0]!, ifname: 'e"th\\0' }] };
  const text = renderMetrics({ list, counters: odd });
  assert.ok(text.includes('tsvs_packets_dropped_total{reason="we\\"ird\\\\reason\\n"} 4'));
  assert.ok(text.includes('tsvs_port_rx_frames_total{ifname="e\\"th\\\\0"} 10'));
  checkExposition(text);
});

test('pool names of the health monitor map back to service keys', () => {
  assert.deepEqual(parsePoolName('TCP 198.18.1.100:80'), { type: 'tcp', addr: '198.18.1.100', port: 80 });
  assert.deepEqual(parsePoolName('UDP [2001:db8::1]:53'), { type: 'udp', addr: '2001:db8::1', port: 53 });
  assert.deepEqual(parsePoolName('FWM 7'), { type: 'fwmark', fwmark: 7 });
  assert.equal(parsePoolName('nonsense'), null);
});

test('the strict checker rejects malformed expositions (it can fail)', () => {
  assert.throws(() => checkExposition('# TYPE a counter\na{b="c} 1\n'));
  assert.throws(() => checkExposition('# TYPE a counter\na 1\n# TYPE a counter\na 2\n'), /twice/);
  assert.throws(() => checkExposition('a 1\n'), /no TYPE/);
  assert.throws(() => checkExposition('# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n'), /duplicate/);
  assert.throws(() => checkExposition('# TYPE a_total counter\na_total -1\n'), /negative/);
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
