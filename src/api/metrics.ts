// Prometheus text exposition of the director, rendered from control-request results only when scraped.
//
// The eight node_ipvs_* families are node_exporter's (collector/ipvs_linux.go) to the letter: same
// names, types, HELP text and labels, so dashboards and alerts written for kernel LVS keep working.
// Everything tsvs adds lives under tsvs_*. Nothing here runs per packet: a scrape asks the data plane
// for `list` and `counters` (one message each) and formats their answers.
import type { CountersResult, DestEntry, ListResult, Rates, ServiceEntry, ServiceKey, Stats } from '../ctl/protocol.ts';
import type { HealthSnapshot } from '../health/index.ts';
import type { VrrpSnapshot } from '../vrrp/host.ts';
import { STATE_NAMES } from '../vrrp/instance.ts';

type Labels = ReadonlyArray<readonly [string, string]>;

interface Family {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  samples: Array<{ labels: Labels; value: number }>;
}

/** Escapes a label value as the text format requires: backslash, double quote and newline. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Escapes HELP text: backslash and newline only. */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value as Go's client prints it: integers plainly, NaN and infinities by name. */
function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function renderFamily(f: Family, out: string[]): void {
  out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
  for (const s of f.samples) {
    const l = s.labels.length ? `{${s.labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}` : '';
    out.push(`${f.name}${l} ${formatValue(s.value)}`);
  }
}

/** The proto label as /proc/net/ip_vs (and so node_exporter) names it. */
function protoLabel(k: ServiceKey): string {
  return k.type === 'fwmark' ? 'FWM' : k.type.toUpperCase();
}

/**
 * node_exporter's backend labels, in the order its Go client prints them (sorted by name). Firewall-mark
 * services have no address ("") and port "0", and carry the mark as 8 upper-case hex digits, as /proc prints it.
 */
function backendLabels(k: ServiceKey, d: { addr: string; port: number }): Labels {
  const fw = k.type === 'fwmark';
  return [
    ['local_address', fw ? '' : k.addr],
    ['local_mark', fw ? k.fwmark.toString(16).toUpperCase().padStart(8, '0') : ''],
    ['local_port', fw ? '0' : String(k.port)],
    ['proto', protoLabel(k)],
    ['remote_address', d.addr],
    ['remote_port', String(d.port)],
  ];
}

/** The service part of the backend labels, for tsvs's per-service families. */
function serviceLabels(k: ServiceKey): Labels {
  return backendLabels(k, { addr: '', port: 0 }).slice(0, 4);
}

const labelKey = (l: Labels) => l.map(([, v]) => v).join('\u0000');

/** Sums samples with identical label sets (node_exporter does the same when labels coincide). */
function summed(samples: Array<{ labels: Labels; value: number }>): Array<{ labels: Labels; value: number }> {
  const by = new Map<string, { labels: Labels; value: number }>();
  for (const s of samples) {
    const k = labelKey(s.labels);
    const had = by.get(k);
    if (had) had.value += s.value;
    else by.set(k, { labels: s.labels, value: s.value });
  }
  // Go's registry sorts a family's metrics by label values.
  return [...by.values()].sort((a, b) => compareLabels(a.labels, b.labels));
}

function compareLabels(a: Labels, b: Labels): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]![1];
    const y = b[i]![1];
    if (x !== y) return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

function sumStats(services: readonly ServiceEntry[]): Stats {
  const t: Stats = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
  for (const s of services) {
    t.conns += s.stats.conns;
    t.inpkts += s.stats.inpkts;
    t.outpkts += s.stats.outpkts;
    t.inbytes += s.stats.inbytes;
    t.outbytes += s.stats.outbytes;
  }
  return t;
}

/**
 * node_exporter's eight node_ipvs_* families from a `list` result. The totals are the director's own
 * when `totals` is given (the kernel's /proc/net/ip_vs_stats), else the sum over the listed services.
 */
export function nodeIpvsFamilies(list: ListResult, totals?: Stats): Family[] {
  const t = totals ?? sumStats(list.services);
  const backends = (pick: (d: DestEntry) => number) =>
    summed(list.services.flatMap((s) => s.dests.map((d) => ({ labels: backendLabels(s.key, d), value: pick(d) }))));
  // Sorted by name, as node_exporter's registry emits them.
  return [
    { name: 'node_ipvs_backend_connections_active', type: 'gauge', help: 'The current active connections by local and remote address.', samples: backends((d) => d.activeConns) },
    { name: 'node_ipvs_backend_connections_inactive', type: 'gauge', help: 'The current inactive connections by local and remote address.', samples: backends((d) => d.inactConns) },
    { name: 'node_ipvs_backend_weight', type: 'gauge', help: 'The current backend weight by local and remote address.', samples: backends((d) => d.weight) },
    { name: 'node_ipvs_connections_total', type: 'counter', help: 'The total number of connections made.', samples: [{ labels: [], value: t.conns }] },
    { name: 'node_ipvs_incoming_bytes_total', type: 'counter', help: 'The total amount of incoming data.', samples: [{ labels: [], value: t.inbytes }] },
    { name: 'node_ipvs_incoming_packets_total', type: 'counter', help: 'The total number of incoming packets.', samples: [{ labels: [], value: t.inpkts }] },
    { name: 'node_ipvs_outgoing_bytes_total', type: 'counter', help: 'The total amount of outgoing data.', samples: [{ labels: [], value: t.outbytes }] },
    { name: 'node_ipvs_outgoing_packets_total', type: 'counter', help: 'The total number of outgoing packets.', samples: [{ labels: [], value: t.outpkts }] },
  ];
}

const STAT_FIELDS: ReadonlyArray<readonly [keyof Stats, string, string]> = [
  ['conns', 'connections_total', 'Connections scheduled'],
  ['inpkts', 'incoming_packets_total', 'Packets received from clients'],
  ['outpkts', 'outgoing_packets_total', 'Packets sent back to clients'],
  ['inbytes', 'incoming_bytes_total', 'Bytes received from clients'],
  ['outbytes', 'outgoing_bytes_total', 'Bytes sent back to clients'],
];

const RATE_FIELDS: ReadonlyArray<readonly [keyof Rates, string]> = [
  ['cps', 'New connections per second'],
  ['inpps', 'Incoming packets per second'],
  ['outpps', 'Outgoing packets per second'],
  ['inbps', 'Incoming bytes per second'],
  ['outbps', 'Outgoing bytes per second'],
];

function trafficFamilies(list: ListResult): Family[] {
  const out: Family[] = [];
  for (const [f, suffix, help] of STAT_FIELDS) {
    out.push({
      name: `tsvs_service_${suffix}`,
      type: 'counter',
      help: `${help} by the virtual service (since it was added or zeroed).`,
      samples: summed(list.services.map((s) => ({ labels: serviceLabels(s.key), value: s.stats[f] }))),
    });
  }
  for (const [f, help] of RATE_FIELDS) {
    out.push({
      name: `tsvs_service_rate_${f}`,
      type: 'gauge',
      help: `${help} to the virtual service (2-second estimator, as ipvsadm --rate).`,
      samples: summed(list.services.map((s) => ({ labels: serviceLabels(s.key), value: s.rates[f] }))),
    });
  }
  for (const [f, suffix, help] of STAT_FIELDS) {
    out.push({
      name: `tsvs_backend_${suffix}`,
      type: 'counter',
      help: `${help} by the real server (since it was added or zeroed).`,
      samples: summed(list.services.flatMap((s) => s.dests.map((d) => ({ labels: backendLabels(s.key, d), value: d.stats[f] })))),
    });
  }
  for (const [f, help] of RATE_FIELDS) {
    out.push({
      name: `tsvs_backend_rate_${f}`,
      type: 'gauge',
      help: `${help} to the real server (2-second estimator, as ipvsadm --rate).`,
      samples: summed(list.services.flatMap((s) => s.dests.map((d) => ({ labels: backendLabels(s.key, d), value: d.rates[f] })))),
    });
  }
  out.push({
    name: 'tsvs_backend_connections_persistent',
    type: 'gauge',
    help: 'Persistence templates pointing at the real server.',
    samples: summed(list.services.flatMap((s) => s.dests.map((d) => ({ labels: backendLabels(s.key, d), value: d.persistConns })))),
  });
  return out;
}

function keyed(label: string, rec: Record<string, number>): Array<{ labels: Labels; value: number }> {
  return Object.keys(rec)
    .sort()
    .map((k) => ({ labels: [[label, k]] as Labels, value: rec[k]! }));
}

function counterFamilies(c: CountersResult): Family[] {
  const ports = (pick: (p: CountersResult['ports'][number]) => number) =>
    summed(c.ports.map((p) => ({ labels: [['ifname', p.ifname]] as Labels, value: pick(p) })));
  return [
    { name: 'tsvs_packets_dropped_total', type: 'counter', help: 'Frames the director dropped, by reason.', samples: keyed('reason', c.drops) },
    { name: 'tsvs_parse_total', type: 'counter', help: 'Frames received, by parser verdict.', samples: keyed('verdict', c.parse) },
    { name: 'tsvs_ipvs_verdicts_total', type: 'counter', help: 'Packets the ipvs hooks passed on or dropped, by reason.', samples: keyed('reason', c.ipvs) },
    { name: 'tsvs_conn_table_entries', type: 'gauge', help: 'Entries in the connection table (connections and persistence templates).', samples: [{ labels: [], value: c.conns.count }] },
    { name: 'tsvs_conn_table_capacity', type: 'gauge', help: 'Capacity of the connection table, fixed at start.', samples: [{ labels: [], value: c.conns.capacity }] },
    { name: 'tsvs_conn_table_overflow_total', type: 'counter', help: 'New connections refused because the connection table was full.', samples: [{ labels: [], value: c.conns.overflow }] },
    { name: 'tsvs_conn_table_early_drop_total', type: 'counter', help: 'Entries without established traffic evicted to admit new connections when the table was full.', samples: [{ labels: [], value: c.conns.earlyDrop }] },
    { name: 'tsvs_arp_replies_total', type: 'counter', help: 'ARP replies the director sent for its own addresses.', samples: [{ labels: [], value: c.arpReplies }] },
    { name: 'tsvs_icmp_echo_replies_total', type: 'counter', help: 'ICMP echo replies the director sent.', samples: [{ labels: [], value: c.icmpEchoReplies }] },
    { name: 'tsvs_port_rx_frames_total', type: 'counter', help: 'Frames received on the port.', samples: ports((p) => p.rxFrames) },
    { name: 'tsvs_port_rx_bytes_total', type: 'counter', help: 'Bytes received on the port.', samples: ports((p) => p.rxBytes) },
    { name: 'tsvs_port_rx_dropped_total', type: 'counter', help: 'Frames the port lost before the director saw them (ring full).', samples: ports((p) => p.rxDropped) },
    { name: 'tsvs_port_tx_frames_total', type: 'counter', help: 'Frames sent on the port.', samples: ports((p) => p.txFrames) },
    { name: 'tsvs_port_tx_bytes_total', type: 'counter', help: 'Bytes sent on the port.', samples: ports((p) => p.txBytes) },
    { name: 'tsvs_port_tx_errors_total', type: 'counter', help: 'Frames the port failed to send.', samples: ports((p) => p.txErrors) },
    { name: 'tsvs_fullnat_lport_exhausted_total', type: 'counter', help: 'New FullNAT connections refused: no local address of the service had a free port.', samples: [{ labels: [], value: c.conns.lportExhausted ?? 0 }] },
    { name: 'tsvs_proxy_protocol_headers_total', type: 'counter', help: 'PROXY protocol headers inserted before a FullNAT connection\'s first bytes (retransmissions included).', samples: [{ labels: [], value: c.fullnat?.proxyHeaders ?? 0 }] },
    { name: 'tsvs_snat_connections_total', type: 'counter', help: 'Connections real servers opened that SNAT took out through the director.', samples: [{ labels: [], value: c.fullnat?.snatCreated ?? 0 }] },
    { name: 'tsvs_snat_exhausted_total', type: 'counter', help: 'Connections real servers opened that SNAT refused: its address had no free port.', samples: [{ labels: [], value: c.fullnat?.snatExhausted ?? 0 }] },
    ...syncFamilies(c.sync ?? {}),
  ];
}

/** The sync daemons' counters: master_* and backup_* by name, backup_drop_<reason> by reason. */
function syncFamilies(s: Record<string, number>): Family[] {
  const pick = (prefix: string, names: string[]) => names.map((n) => s[`${prefix}_${n}`] ?? 0);
  const drops: Record<string, number> = {};
  for (const k of Object.keys(s)) if (k.startsWith('backup_drop_')) drops[k.slice('backup_drop_'.length)] = s[k]!;
  const [mMsgs, mConns, mBytes, mFull, mFail] = pick('master', ['messages', 'conns', 'bytes', 'queue_full', 'send_failed']);
  const [bMsgs, bNew, bUpd] = pick('backup', ['messages', 'conns_new', 'conns_updated']);
  const one = (name: string, help: string, value: number): Family => ({ name, type: 'counter', help, samples: [{ labels: [], value: value! }] });
  return [
    one('tsvs_sync_master_messages_total', 'Sync messages the master daemon sent.', mMsgs!),
    one('tsvs_sync_master_conns_total', 'Connection entries the master daemon put into sync messages.', mConns!),
    one('tsvs_sync_master_bytes_total', 'Bytes of sync messages the master daemon sent (UDP payload).', mBytes!),
    {
      name: 'tsvs_sync_master_dropped_total',
      type: 'counter',
      help: 'Sync messages the master daemon could not send, by reason.',
      samples: [{ labels: [['reason', 'queue_full']], value: mFull! }, { labels: [['reason', 'send_failed']], value: mFail! }],
    },
    one('tsvs_sync_backup_messages_total', 'Sync messages the backup daemon accepted.', bMsgs!),
    {
      name: 'tsvs_sync_backup_conns_total',
      type: 'counter',
      help: 'Connection entries the backup daemon installed (new) or applied to a connection it had (updated).',
      samples: [{ labels: [['result', 'new']], value: bNew! }, { labels: [['result', 'updated']], value: bUpd! }],
    },
    { name: 'tsvs_sync_backup_dropped_total', type: 'counter', help: 'Sync messages or entries the backup daemon refused, by reason.', samples: keyed('reason', drops) },
  ];
}

/** "TCP 198.18.1.100:80" (the health monitor's pool name) back into a service key. */
export function parsePoolName(name: string): ServiceKey | null {
  const m = /^(TCP|UDP|SCTP) \[?([0-9A-Fa-f:.]+?)\]?:(\d+)$/.exec(name);
  if (m) return { type: m[1]!.toLowerCase() as 'tcp' | 'udp' | 'sctp', addr: m[2]!, port: Number(m[3]) };
  const f = /^FWM (\d+)$/.exec(name);
  if (f) return { type: 'fwmark', fwmark: Number(f[1]) };
  return null;
}

function healthFamilies(h: HealthSnapshot): Family[] {
  const up: Family['samples'] = [];
  const latency: Family['samples'] = [];
  const checks: Family['samples'] = [];
  const failures: Family['samples'] = [];
  const transitions: Family['samples'] = [];
  const quorum: Family['samples'] = [];
  const sorry: Family['samples'] = [];
  for (const p of h.pools) {
    const key = parsePoolName(p.service);
    if (!key) continue;
    quorum.push({ labels: serviceLabels(key), value: p.quorumUp ? 1 : 0 });
    sorry.push({ labels: serviceLabels(key), value: p.sorryActive ? 1 : 0 });
    for (const s of p.servers) {
      const labels = backendLabels(key, s);
      up.push({ labels, value: s.state === 'up' ? 1 : 0 });
      if (s.lastLatencyMs !== null) latency.push({ labels, value: s.lastLatencyMs / 1000 });
      checks.push({ labels, value: s.checks });
      failures.push({ labels, value: s.failures });
      transitions.push({ labels, value: s.transitions });
    }
  }
  return [
    { name: 'tsvs_backend_up', type: 'gauge', help: 'Whether the real server passes its health checks (1) or not (0).', samples: summed(up) },
    { name: 'tsvs_healthcheck_latency_seconds', type: 'gauge', help: 'Duration of the last health check of the real server.', samples: summed(latency) },
    { name: 'tsvs_healthcheck_checks_total', type: 'counter', help: 'Health checks run against the real server.', samples: summed(checks) },
    { name: 'tsvs_healthcheck_failures_total', type: 'counter', help: 'Health checks of the real server that failed.', samples: summed(failures) },
    { name: 'tsvs_backend_transitions_total', type: 'counter', help: 'Up/down transitions of the real server.', samples: summed(transitions) },
    { name: 'tsvs_service_quorum_up', type: 'gauge', help: 'Whether the virtual service has quorum (1) or not (0).', samples: summed(quorum) },
    { name: 'tsvs_service_sorry_server_active', type: 'gauge', help: 'Whether the sorry server carries the virtual service (1) or not (0).', samples: summed(sorry) },
  ];
}

/** tsvs_vrrp_*: one series per instance (labels instance, interface, vrid), bad adverts by reason. */
function vrrpFamilies(v: VrrpSnapshot): Family[] {
  const fam = (name: string, type: 'gauge' | 'counter', help: string, value: (i: VrrpSnapshot['instances'][number]) => number): Family => ({
    name,
    type,
    help,
    samples: summed(v.instances.map((i) => ({ labels: [['instance', i.name], ['interface', i.interface], ['vrid', String(i.vrid)]] as Labels, value: value(i) }))),
  });
  const bad: Family['samples'] = [];
  for (const i of v.instances) for (const [reason, n] of Object.entries(i.bad)) if (reason !== 'own') bad.push({ labels: [['instance', i.name], ['interface', i.interface], ['reason', reason], ['vrid', String(i.vrid)]], value: n });
  return [
    fam('tsvs_vrrp_state', 'gauge', `State of the VRRP instance: ${STATE_NAMES.map((n, k) => `${k} ${n}`).join(', ')}.`, (i) => STATE_NAMES.indexOf(i.state)),
    fam('tsvs_vrrp_priority', 'gauge', 'Effective priority of the VRRP instance (configured priority moved by tracking weights).', (i) => i.priority),
    fam('tsvs_vrrp_transitions_total', 'counter', 'State transitions of the VRRP instance.', (i) => i.stats.transitions),
    fam('tsvs_vrrp_become_master_total', 'counter', 'Times the VRRP instance became MASTER.', (i) => i.stats.becomeMaster),
    fam('tsvs_vrrp_adverts_sent_total', 'counter', 'VRRP adverts sent (priority 0 included).', (i) => i.stats.advertsSent),
    fam('tsvs_vrrp_adverts_received_total', 'counter', 'VRRP adverts received that passed every check.', (i) => i.stats.advertsReceived),
    fam('tsvs_vrrp_priority_zero_received_total', 'counter', 'Priority-0 adverts received (a master stopping).', (i) => i.stats.priZeroReceived),
    fam('tsvs_vrrp_adverts_addrlist_mismatch_total', 'counter', 'VRRP adverts taken although their address list differs from the instance\'s (as keepalived; a misconfiguration).', (i) => i.stats.addrListMismatch),
    { name: 'tsvs_vrrp_adverts_bad_total', type: 'counter', help: 'VRRP adverts dropped by a check, by reason.', samples: summed(bad) },
  ];
}

export interface MetricsInput {
  /** VRRP instances (absent or empty: no tsvs_vrrp_* families). */
  vrrp?: VrrpSnapshot;
  list: ListResult;
  counters: CountersResult;
  /** The director's own totals (/proc/net/ip_vs_stats); the services' sum is used when absent. */
  totals?: Stats;
  health?: HealthSnapshot;
  /** Emit node_exporter's families (default true). */
  nodeCompat?: boolean;
  /** Requests refused by the admin API and by the control socket, by reason (camelCase keys). */
  refusals?: { admin?: Readonly<Record<string, number>>; control?: Readonly<Record<string, number>> };
}

/** "tooManyClients" -> "too_many_clients", Prometheus's label-value style. */
const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function refusalFamilies(r: NonNullable<MetricsInput['refusals']>): Family[] {
  const fam = (name: string, help: string, counts: Readonly<Record<string, number>>): Family => ({
    name,
    type: 'counter',
    help,
    samples: Object.entries(counts).map(([k, v]) => ({ labels: [['reason', snake(k)]], value: v })),
  });
  const out: Family[] = [];
  if (r.admin) out.push(fam('tsvs_admin_refused_total', 'Admin API requests refused before any route ran, by reason.', r.admin));
  if (r.control) out.push(fam('tsvs_control_refused_total', 'Control socket lines refused or connections closed by a limit, by reason.', r.control));
  return out;
}

/** The whole exposition, in Prometheus text format 0.0.4. */
export function renderMetrics(m: MetricsInput): string {
  const families: Family[] = [];
  if (m.nodeCompat !== false) families.push(...nodeIpvsFamilies(m.list, m.totals));
  families.push(...trafficFamilies(m.list), ...counterFamilies(m.counters));
  if (m.health) families.push(...healthFamilies(m.health));
  if (m.refusals) families.push(...refusalFamilies(m.refusals));
  if (m.vrrp?.instances.length) families.push(...vrrpFamilies(m.vrrp));
  const out: string[] = [];
  for (const f of families) renderFamily(f, out);
  return out.join('\n') + '\n';
}

/** The content type of the text format. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
