// tsvsd's one typed configuration: command-line flags and the YAML file, validated before anything starts.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { LineCounter, parseDocument, isMap, isSeq, type Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { vrrpSchema } from '../vrrp/config.ts';

/** Where the control socket lives unless --socket or TSVS_SOCKET says otherwise. */
export const DEFAULT_SOCKET = '/run/tsvs/tsvsd.sock';

export const IO_KINDS = ['afpacket', 'tap', 'macvtap', 'xdp'] as const;
export type IoKind = (typeof IO_KINDS)[number];

const ipv4 = z.string().refine((s) => isIP(s) === 4, { message: 'must be an IPv4 address' });
const port = z.number().int().min(0).max(65535);

/** "ADDR/PREFIX@IFNAME", e.g. 198.18.1.100/32@eth1. */
const addressSpec = z.string().regex(/^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})@([^\s@/]{1,15})$/, {
  message: 'must look like ADDR/PREFIX@IFNAME, e.g. 198.18.1.100/32@eth1',
}).refine((s) => {
  const [a, p] = s.split('@')[0]!.split('/');
  return isIP(a!) === 4 && Number(p) <= 32;
}, { message: 'address must be IPv4 and prefix 0..32' });

/** "PREFIX=GATEWAY", e.g. 198.19.0.0/24=198.18.1.1. */
const routeSpec = z.string().regex(/^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})=(\d{1,3}(?:\.\d{1,3}){3})$/, {
  message: 'must look like PREFIX=GATEWAY, e.g. 198.19.0.0/24=198.18.1.1',
}).refine((s) => {
  const [pfx, gw] = s.split('=');
  const [a, l] = pfx!.split('/');
  return isIP(a!) === 4 && isIP(gw!) === 4 && Number(l) <= 32;
}, { message: 'prefix and gateway must be IPv4, prefix length 0..32' });

const method = z.enum(['nat', 'dr', 'tun', 'fullnat', 'masq', 'route', 'tunnel']).transform((m) =>
  m === 'masq' ? 'nat' : m === 'route' ? 'dr' : m === 'tunnel' ? 'tun' : m,
);

const seconds = z.number().positive().max(86400);

/** "200", "200-299 301", or a list of those: accepted HTTP status codes. */
const statusSpec = z.union([z.number().int().min(100).max(599), z.string().regex(/^\s*\d{3}(-\d{3})?([\s,]+\d{3}(-\d{3})?)*\s*$/, {
  message: 'must be status codes or ranges, e.g. "200-299 301"',
}), z.array(z.union([z.number().int().min(100).max(599), z.string().regex(/^\d{3}(-\d{3})?$/)])).min(1)]);

/**
 * A health check of one real server. Defaults are tsvs's, not keepalived's (keepalived's
 * delay_loop 60 s takes a dead server out only after minutes); the keepalived.conf reader fills in
 * keepalived's own defaults explicitly. Times are seconds (fractions allowed).
 */
export const checkSchema = z
  .object({
    type: z.enum(['tcp', 'http', 'https', 'udp', 'ping', 'misc']),
    /** Address probed (default: the real server's; keepalived's connect_ip). */
    address: ipv4.optional(),
    /** Port probed (default: the port the director forwards to). */
    port: port.min(1).optional(),
    /** Source address of the probes (keepalived's bindto; default health.source). */
    source: ipv4.optional(),
    path: z.string().startsWith('/').optional(),
    status: statusSpec.optional(),
    digest: z.string().regex(/^[0-9a-fA-F]{32}$/, { message: 'must be an MD5 digest in hex (32 hex digits)' }).optional(),
    regex: z.string().min(1).refine((r) => { try { new RegExp(r); return true; } catch { return false; } }, { message: 'is not a valid regular expression' }).optional(),
    virtualhost: z.string().min(1).optional(),
    verify_tls: z.boolean().default(false),
    /** udp: payload as text, or payload_hex as hex bytes. */
    payload: z.string().optional(),
    payload_hex: z.string().regex(/^(?:[0-9a-fA-F]{2})+$/, { message: 'must be hex bytes' }).optional(),
    /** udp: a reply is required (false = only an ICMP error fails the check, as keepalived without require_reply). */
    require_reply: z.boolean().default(true),
    /** udp: the reply must start with these hex nibbles ("x" = any). */
    reply_hex: z.string().regex(/^[0-9a-fA-FxX]+$/, { message: 'must be hex digits or x' }).optional(),
    command: z.string().min(1).optional(),
    /** misc: exit codes 2..255 set the weight to code-2 (keepalived's misc_dynamic). */
    dynamic: z.boolean().default(false),
    interval: seconds.default(5),
    timeout: seconds.default(3),
    rise: z.number().int().min(1).max(100).default(1),
    fall: z.number().int().min(1).max(100).default(2),
    /** Delay before re-checking a failing server that is still up (keepalived: 3 s for HTTP/HTTPS, 1 s otherwise). */
    delay_before_retry: seconds.optional(),
    /** Random delay up to this before the first check, to spread probes (default 0). */
    warmup: z.number().min(0).max(86400).default(0),
    /** Start this check as failed (default: the service's alpha). */
    alpha: z.boolean().optional(),
    inhibit_on_failure: z.boolean().default(false),
  })
  .strict()
  .refine((c) => c.type !== 'misc' || c.command !== undefined, { message: 'a misc check needs a command', path: ['command'] })
  .refine((c) => c.payload === undefined || c.payload_hex === undefined, { message: 'give payload or payload_hex, not both', path: ['payload_hex'] });

const sorryServerSchema = z
  .object({
    address: ipv4,
    port: port.optional(),
    method: method.optional(),
    weight: z.number().int().min(0).max(65535).default(1),
  })
  .strict();

export const realServerSchema = z
  .object({
    address: ipv4,
    port: port.optional(),
    method: method.default('dr'),
    weight: z.number().int().min(0).max(65535).default(1),
    upper_threshold: z.number().int().min(0).max(2147483647).default(0),
    lower_threshold: z.number().int().min(0).max(2147483647).default(0),
    /** Health checks: one block or a list; the server is up when all pass. */
    check: z.union([checkSchema, z.array(checkSchema)]).optional().transform((c) => (c === undefined ? [] : Array.isArray(c) ? c : [c])),
    /** On failure set weight 0 instead of removing the server. */
    inhibit_on_failure: z.boolean().default(false),
    /** Commands run when the server goes up / down. */
    notify_up: z.string().min(1).optional(),
    notify_down: z.string().min(1).optional(),
  })
  .strict()
  .refine((r) => r.lower_threshold <= r.upper_threshold || r.upper_threshold === 0 && r.lower_threshold === 0, {
    message: 'lower_threshold must not exceed upper_threshold',
    path: ['lower_threshold'],
  });

export const serviceSchema = z
  .object({
    protocol: z.enum(['tcp', 'udp']),
    address: ipv4,
    port,
    scheduler: z.string().min(1).max(15).default('wlc'),
    sched_flags: z.array(z.enum(['flag-1', 'flag-2', 'flag-3', 'sh-fallback', 'sh-port', 'mh-fallback', 'mh-port'])).default([]),
    persistent: z.number().int().min(1).max(2678400).optional(),
    netmask: ipv4.optional(),
    ops: z.boolean().default(false),
    realservers: z.array(realServerSchema).default([]),
    /** A PROXY protocol header (v1 text, v2 binary) before the first byte of each FullNAT TCP conn. */
    proxy_protocol: z.enum(['v1', 'v2']).optional(),
    /** FullNAT local addresses (DPVS's --add-laddr): the director owns them; fullnat real servers' conns leave from them. */
    laddrs: z.array(z.object({ address: ipv4, interface: z.string().min(1).max(15).optional() }).strict()).default([]),
    /** Added (weight 1) when quorum is lost — by default when no real server is up — and removed when it is regained. */
    sorry_server: sorryServerSchema.optional(),
    /** Keep the sorry server in the table with weight 0 while it is not needed. */
    sorry_server_inhibit: z.boolean().default(false),
    /** Minimum summed weight of live real servers for the service to have quorum (keepalived default 1). */
    quorum: z.number().int().min(0).max(2147483647).default(1),
    /** Quorum is gained at quorum+hysteresis and lost below quorum-hysteresis. */
    hysteresis: z.number().int().min(0).max(2147483647).default(0),
    quorum_up: z.string().min(1).optional(),
    quorum_down: z.string().min(1).optional(),
    /** Checked real servers start as down and join after their first good checks. */
    alpha: z.boolean().default(false),
    /** On shutdown run quorum_down and the real servers' notify_down. */
    omega: z.boolean().default(false),
  })
  .strict()
  .refine((s) => s.hysteresis <= s.quorum, { message: 'hysteresis must not exceed quorum', path: ['hysteresis'] })
  .refine((s) => !s.sorry_server || !s.realservers.some((r) => r.address === s.sorry_server!.address && (r.port ?? s.port) === (s.sorry_server!.port ?? s.port)), {
    message: 'the sorry server must not also be a real server of the service',
    path: ['sorry_server'],
  })
  .refine((s) => s.port !== 0 || s.persistent !== undefined, { message: 'Zero port specified for non-persistent service', path: ['port'] })
  .refine((s) => !s.ops || s.protocol === 'udp', { message: 'One-Packet Scheduling is only for UDP virtual services', path: ['ops'] })
  .refine((s) => !s.realservers.some((r) => r.method === 'fullnat') || s.laddrs.length > 0, {
    message: 'fullnat real servers need local addresses (laddrs)',
    path: ['laddrs'],
  });

/**
 * A connection-sync daemon, as `ipvsadm --start-daemon` starts it. With `vrrp_instance` (keepalived's
 * lvs_sync_daemon) the role follows that instance: master while it is MASTER, backup otherwise;
 * `state` is the role it starts in.
 */
export const syncDaemonSchema = z
  .object({
    state: z.enum(['master', 'backup']),
    interface: z.string().min(1).max(15),
    syncid: z.number().int().min(0).max(255).default(0),
    /** sync_maxlen (0: the kernel's default from the MTU). */
    maxlen: z.number().int().min(0).max(65507).default(0),
    group: ipv4.refine((a) => Number(a.split('.')[0]) >= 224 && Number(a.split('.')[0]) <= 239, { message: 'must be an IPv4 multicast group' }).optional(),
    port: port.min(1).optional(),
    ttl: z.number().int().min(1).max(255).optional(),
    vrrp_instance: z.string().min(1).optional(),
  })
  .strict();

/** A BGP neighbor (a router) of the director. */
const bgpNeighborSchema = z.object({ address: ipv4, as: z.number().int().min(1).max(4294967295) }).strict();

/**
 * `bgp:` — the director announces its VIPs (as /32) to routers through BIRD 2, which tsvsd starts and
 * reconfigures. The session runs from `source`, a kernel address (owned interfaces have none); the
 * announced next hop is `next_hop`, an address tsvsd owns on the segment the routers reach it by.
 */
export const bgpSchema = z
  .object({
    daemon: z.literal('bird').default('bird'),
    local_as: z.number().int().min(1).max(4294967295),
    source: ipv4,
    router_id: ipv4.optional(),
    next_hop: ipv4,
    neighbors: z.array(bgpNeighborSchema).min(1).max(16),
    /** BGP hold time, seconds (keepalives every third of it). */
    hold_time: z.number().int().min(3).max(65535).default(3),
    /** BFD on every session (sub-second detection of a dead director), or false. */
    bfd: z
      .union([
        z.literal(false),
        z.object({ interval_ms: z.number().int().min(10).max(10000).default(100), multiplier: z.number().int().min(2).max(255).default(3) }).strict(),
      ])
      .default({ interval_ms: 100, multiplier: 3 }),
    /** Only these VIPs (default: every address of a TCP/UDP service). */
    vips: z.array(ipv4).optional(),
    /** Where the generated bird.conf and its control socket go (default: the control socket's directory). */
    state_dir: z.string().min(1).optional(),
    /** The BIRD binary (default: bird on PATH, then /usr/sbin/bird). */
    bird: z.string().min(1).optional(),
  })
  .strict();

export const configSchema = z
  .object({
    interfaces: z.array(z.string().min(1).max(15)).default([]),
    io: z.enum(IO_KINDS).optional(),
    addresses: z.array(addressSpec).default([]),
    routes: z.array(routeSpec).default([]),
    gateway: ipv4.optional(),
    socket: z.string().min(1).optional(),
    promiscuous: z.boolean().default(false),
    /**
     * What the kernel's own stack does with frames arriving on owned interfaces: `drop` (default; a tcx
     * ingress program, after tsvsd's packet socket has seen them) or `pass` (the kernel processes them
     * too: only for an interface that also carries kernel addresses). AF_PACKET ports; restart-only.
     */
    kernel_rx: z.enum(['drop', 'pass']).default('drop'),
    /** The data-plane thread spins instead of sleeping in poll() when idle (lower latency, a whole core). */
    busy_poll: z.boolean().default(false),
    /**
     * The kernel fast path (docs/fastpath.md): established conns forwarded by a tcx program from
     * entries TS installs. `auto` where the kernel allows it, `tc` required, `off`. Restart-only.
     */
    fastpath: z.enum(['auto', 'tc', 'off']).default('off'),
    conn_table_size: z.number().int().min(1024).max(1 << 26).default(1 << 20),
    timeouts: z
      .object({ tcp: z.number().int().min(1).optional(), tcpfin: z.number().int().min(1).optional(), udp: z.number().int().min(1).optional() })
      .strict()
      .default({}),
    /**
     * net.ipv4.vs sysctls the director honours, by their kernel names (reloadable). sloppy_tcp: 1 lets a
     * TCP packet that is not a SYN create a conn (several directors behind ECMP); sloppy_sctp is
     * accepted for parity and changes nothing (no SCTP here).
     */
    sysctl: z
      .object({ sloppy_tcp: z.union([z.literal(0), z.literal(1)]).default(0), sloppy_sctp: z.union([z.literal(0), z.literal(1)]).default(0) })
      .strict()
      .default({ sloppy_tcp: 0, sloppy_sctp: 0 }),
    /** Route announcement over BGP by a routing daemon tsvsd drives (src/bgp); off when absent. Restart-only. */
    bgp: bgpSchema.optional(),
    expire_nodest_conn: z.boolean().default(false),
    expire_quiescent_template: z.boolean().default(false),
    pcap: z.string().optional(),
    /** Admin HTTP API (src/api): ADDR:PORT, [IPV6]:PORT or unix:PATH; off when absent. Restart-only. */
    admin: z
      .string()
      .regex(/^(?:unix:\/\S+|\[[0-9A-Fa-f:.]+\]:\d{1,5}|[^:\s\[\]]+:\d{1,5})$/, { message: 'must be ADDR:PORT, [IPV6]:PORT or unix:/PATH' })
      .optional(),
    /** Serve the web dashboard at / of the admin API. Restart-only. */
    dashboard: z.boolean().default(false),
    /** Where health checks come from: a network namespace that reaches the real servers and a source address. */
    health: z
      .object({ namespace: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { message: 'must be a namespace name' }).optional(), source: ipv4.optional() })
      .strict()
      .default({}),
    services: z.array(serviceSchema).default([]),
    /** VRRP instances and sync groups (src/vrrp/config.ts). Restart-only. */
    vrrp: vrrpSchema.default({ instances: [], sync_groups: [] }),
    /** SNAT (DPVS's SNAT mode) for connections real servers open: sources in `source` leave from `address`, owned by the director. */
    snat: z
      .array(z.object({ source: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, { message: 'must be a CIDR, e.g. 198.18.2.0/24' }), address: ipv4, interface: z.string().min(1).max(15).optional() }).strict())
      .default([]),
    /** The kernel's sync sysctls (net.ipv4.vs.sync_*): when the master sends a conn. Restart-only. */
    sync_threshold: z.number().int().min(0).max(65535).default(3),
    sync_period: z.number().int().min(0).max(65535).default(50),
    sync_refresh_period: z.number().int().min(0).max(86400).default(0),
    sync_retries: z.number().int().min(0).max(3).default(0),
    sync_persist_mode: z.union([z.literal(0), z.literal(1)]).default(0),
    /** The most of the conn table (percent) a sync backup's conns may fill; the rest stays for local traffic. Restart-only. */
    sync_conn_share: z.number().int().min(1).max(100).default(50),
    /** Connection-sync daemons started with tsvsd: at most one master and one backup. */
    sync_daemon: z
      .array(syncDaemonSchema)
      .max(2)
      .default([])
      .refine((d) => new Set(d.map((x) => x.state)).size === d.length, { message: 'at most one master and one backup sync daemon' }),
  })
  .strict()
  // proc_do_sync_threshold: the threshold must stay below a non-zero period.
  .refine((c) => c.sync_period === 0 || c.sync_threshold < c.sync_period, { message: 'sync_threshold must be less than sync_period', path: ['sync_threshold'] });

export type Config = z.output<typeof configSchema>;
export type BgpConfig = z.output<typeof bgpSchema>;
export type ServiceConfig = z.output<typeof serviceSchema>;
export type RealServerConfig = z.output<typeof realServerSchema>;
export type CheckConfig = z.output<typeof checkSchema>;
export type SorryServerConfig = z.output<typeof sorryServerSchema>;
export type SyncDaemonConfig = z.output<typeof syncDaemonSchema>;

/** A configuration error, naming the field and (for files) the line. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** An address the director owns. */
export interface AddressSpec {
  addr: string;
  prefix: number;
  ifname: string;
}

export function parseAddressSpec(s: string): AddressSpec {
  const [cidr, ifname] = s.split('@');
  const [addr, prefix] = cidr!.split('/');
  return { addr: addr!, prefix: Number(prefix), ifname: ifname! };
}

export interface RouteSpec {
  prefix: string;
  len: number;
  gateway: string;
}

export function parseRouteSpec(s: string): RouteSpec {
  const [pfx, gateway] = s.split('=');
  const [prefix, len] = pfx!.split('/');
  return { prefix: prefix!, len: Number(len), gateway: gateway! };
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

/** Finds the YAML node at a zod issue path, walking up to the nearest node that exists. */
function nodeAt(root: YamlNode | null, path: readonly PropertyKey[]): YamlNode | null {
  let node: YamlNode | null = root;
  let found = root;
  for (const key of path) {
    if (isMap(node)) node = (node.get(key as string, true) as YamlNode | undefined) ?? null;
    else if (isSeq(node)) node = (node.get(key as number, true) as YamlNode | undefined) ?? null;
    else node = null;
    if (!node) break;
    found = node;
  }
  return found;
}

/** Validates a configuration object; throws ConfigError listing every problem. */
export function validateConfig(input: unknown, where = 'config'): Config {
  const r = configSchema.safeParse(input ?? {});
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `${where}: ${formatPath(i.path)}: ${i.message}`);
  throw new ConfigError(lines.join('\n'));
}

/** Reads and validates a YAML config file; errors name the file, the line and the field. */
export function loadConfigFile(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read: ${(e as Error).message}`);
  }
  return parseConfigText(text, file);
}

/** Where each path of a config read from a file came from: a non-enumerable property set by the readers. */
export const CONFIG_WHERE = Symbol('config source lines');

/** "file:line" of a config path, when the config was read from a file (else `fallback`). */
export function configWhere(config: object, fallback: string): (path: readonly (string | number)[]) => string {
  const f = (config as { [CONFIG_WHERE]?: (path: readonly (string | number)[]) => string })[CONFIG_WHERE];
  return f ?? (() => fallback);
}

/** Attaches a source-line lookup to a parsed config (not copied by spreads, not serialised). */
export function attachWhere<T extends object>(config: T, where: (path: readonly (string | number)[]) => string): T {
  Object.defineProperty(config, CONFIG_WHERE, { value: where, enumerable: false });
  return config;
}

/** Parses and validates YAML config text (see loadConfigFile). */
export function parseConfigText(text: string, file = 'config'): Config {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = lc.linePos(e.pos[0]);
    throw new ConfigError(`${file}:${pos.line}: ${e.message.split('\n')[0]}`);
  }
  const r = configSchema.safeParse(doc.toJS() ?? {});
  if (r.success) {
    return attachWhere(r.data, (path) => {
      const node = nodeAt(doc.contents as YamlNode | null, path);
      return `${file}:${node?.range ? lc.linePos(node.range[0]).line : 1}`;
    });
  }
  const lines = r.error.issues.map((i) => {
    const node = nodeAt(doc.contents as YamlNode | null, i.path);
    const line = node?.range ? lc.linePos(node.range[0]).line : 1;
    return `${file}:${line}: ${formatPath(i.path)}: ${i.message}`;
  });
  throw new ConfigError(lines.join('\n'));
}
