// The versioned control protocol between tsvsadm (and other clients) and tsvsd: newline-delimited JSON over a unix socket.
//
// Every request is one line `{ v: 1, id, op, ...fields }`; the answer is one line
// `{ v: 1, id, ok: true, result }` or `{ v: 1, id, ok: false, error: { code, op, message } }`.
// Requests form a discriminated union on `op` so the server can `switch (req.op)`. Addresses travel
// as strings (dotted quad for IPv4, RFC 5952 text for IPv6); the director converts them. Counters are
// JSON numbers (exact up to 2^53). The server validates every request with `parseRequestLine` (zod) before
// touching state; a request that fails validation is answered with EINVAL.
import { createRequire } from 'node:module';
import type * as Zod from 'zod';
import type { IpvsErrno, IpvsOp } from './errors.ts';
import { ipvsMessage } from './errors.ts';
import type { VrrpSnapshot } from '../vrrp/host.ts';

export const PROTOCOL_VERSION = 1 as const;
/** Default path of tsvsd's control socket (override with TSVS_SOCKET or tsvsadm --socket). */
export const DEFAULT_SOCKET_PATH = '/run/tsvs/tsvsd.sock';

/** The socket path a client should use: explicit option, then TSVS_SOCKET, then the default. */
export function socketPath(option?: string, env: NodeJS.ProcessEnv = process.env): string {
  return option ?? (env.TSVS_SOCKET || DEFAULT_SOCKET_PATH);
}

// ---------------------------------------------------------------------------------------------
// Shared shapes

export type L4Proto = 'tcp' | 'udp' | 'sctp';
/**
 * Forwarding method of a real server, as the kernel's IP_VS_CONN_F_{MASQ,LOCALNODE,TUNNEL,DROUTE},
 * plus DPVS's IP_VS_CONN_F_FULLNAT.
 */
export type FwdMethod = 'masq' | 'local' | 'tunnel' | 'route' | 'fullnat';
export type TunType = 'ipip' | 'gue' | 'gre';
export type TunCsum = 'nocsum' | 'csum' | 'remcsum';

/**
 * Key of a virtual service: protocol + address + port, or a firewall mark (ipvsadm -f; `ipv6` for -6).
 * Kernel order of keys matters only to the lister's sort, which tsvsadm does itself.
 */
export type ServiceKey =
  | { type: L4Proto; addr: string; port: number }
  | { type: 'fwmark'; fwmark: number; ipv6?: boolean };

/**
 * Settings of a virtual service. add-service and edit-service always carry every field: as with the
 * kernel, edit replaces all settings (ipvsadm -E resets omitted options to their defaults).
 */
export interface ServiceConfig {
  scheduler: string;
  /** IP_VS_SVC_F_PERSISTENT. */
  persistent: boolean;
  /** Persistence timeout in seconds (0 when not persistent). */
  timeout: number;
  /** Persistence granularity: dotted mask for IPv4 services, decimal prefix length (e.g. "128") for IPv6. */
  netmask: string;
  /** IP_VS_SVC_F_ONEPACKET (ipvsadm -o). */
  onePacket: boolean;
  /** IP_VS_SVC_F_SCHED1..3 as bits 1, 2, 4 (sh/mh: 1 = fallback, 2 = port). */
  schedFlags: number;
  /** Persistence engine name ("" = none). */
  pe: string;
  /** DPVS's --proxy-protocol: a PROXY header before the first byte of each FullNAT TCP conn (absent = disable). */
  proxyProtocol?: 'disable' | 'v1' | 'v2';
}

/** Address of a real server within a service. */
export interface DestKey {
  addr: string;
  port: number;
}

/** Settings of a real server; add-server and edit-server carry every field (edit replaces all). */
export interface DestConfig extends DestKey {
  fwd: FwdMethod;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  /** Encapsulation for fwd 'tunnel' (ipip unless --tun-type). */
  tunType: TunType;
  /** UDP port for gue (0 otherwise). */
  tunPort: number;
  tunCsum: TunCsum;
}

export interface Stats {
  conns: number;
  inpkts: number;
  outpkts: number;
  inbytes: number;
  outbytes: number;
}

/** Rates from the 2-second estimator; bps are bytes per second, as the kernel reports them. */
export interface Rates {
  cps: number;
  inpps: number;
  outpps: number;
  inbps: number;
  outbps: number;
}

export interface DestEntry extends DestConfig {
  activeConns: number;
  inactConns: number;
  persistConns: number;
  stats: Stats;
  rates: Rates;
}

export interface ServiceEntry extends ServiceConfig {
  key: ServiceKey;
  stats: Stats;
  rates: Rates;
  /** Real servers in the director's own order (newest first, as the kernel); clients sort. */
  dests: DestEntry[];
}

export interface ListResult {
  /** IPVS version the director mimics, e.g. "1.2.1". */
  version: string;
  /** Connection hash table size reported in the listing header. */
  size: number;
  /** Services in the director's own order; clients sort. */
  services: ServiceEntry[];
  /** The director's own totals (the kernel's /proc/net/ip_vs_stats): they survive deleted services. */
  totals?: Stats;
}

/** One entry of the connection table, as /proc/net/ip_vs_conn shows it. */
export interface ConnEntry {
  /** "TCP", "UDP", "SCTP", or "IP" for firewall-mark persistence templates. */
  proto: string;
  caddr: string;
  cport: number;
  vaddr: string;
  vport: number;
  daddr: string;
  dport: number;
  /** Kernel state name: ESTABLISHED, SYN_RECV, FIN_WAIT, ..., UDP, NONE, ASSURED. */
  state: string;
  /** Seconds until the entry expires. */
  expire: number;
  peName?: string;
  peData?: string;
}

export interface ConnectionsResult {
  conns: ConnEntry[];
}

/** Connection timeouts in seconds (ipvsadm --set / -L --timeout). In set-timeout, 0 leaves a value unchanged. */
export interface Timeouts {
  tcp: number;
  tcpfin: number;
  udp: number;
}

export interface DaemonEntry {
  state: 'master' | 'backup';
  mcastIfn: string;
  syncid: number;
  maxlen: number;
  group: string;
  port: number;
  ttl: number;
}

export interface DaemonConfig {
  state: 'master' | 'backup';
  mcastIfn: string;
  syncid: number;
  /** 0 = let the director choose. */
  syncMaxlen: number;
  /** "" = default group. */
  mcastGroup: string;
  mcastPort: number;
  mcastTtl: number;
}

/** A local address the director owns (answers ARP for and accepts traffic to). */
export interface LocalAddress {
  addr: string;
  plen: number;
  ifname: string;
}

/** A FullNAT local address of a service (DPVS's ipvsadm --add-laddr -z LIP [-F ifname]). */
export interface LaddrConfig {
  addr: string;
  /** Interface the director owns the address on; '' = the one its route to the real servers uses. */
  ifname: string;
}

/** A SNAT rule: sources in `source` (CIDR) leave from `addr` on `ifname` ('' = by route). */
export interface SnatConfig {
  source: string;
  addr: string;
  ifname: string;
}

/** One LIP as --get-laddr lists it. */
export interface LaddrEntry extends LaddrConfig {
  /** Live conns holding one of its ports. */
  conns: number;
  /** Times a port was wanted and none was free. */
  conflicts: number;
  /** Free local ports left. */
  available: number;
}

/** `op: 'laddr-list'`: the services (all, or the one asked for) with their LIPs. */
export interface LaddrListResult {
  services: { key: ServiceKey; laddrs: LaddrEntry[] }[];
}

export interface HelloResult {
  server: string;
  version: string;
  protocol: number;
}

// ---------------------------------------------------------------------------------------------
// Requests

/** Fields of every request besides `op`. */
export interface Envelope {
  v: typeof PROTOCOL_VERSION;
  id: number;
}

export type Request = Envelope & RequestBody;

export type RequestBody =
  | { op: 'hello' }
  | { op: 'add-service'; service: ServiceKey; config: ServiceConfig }
  | { op: 'edit-service'; service: ServiceKey; config: ServiceConfig }
  | { op: 'delete-service'; service: ServiceKey }
  | { op: 'flush' }
  | { op: 'add-server'; service: ServiceKey; dest: DestConfig }
  | { op: 'edit-server'; service: ServiceKey; dest: DestConfig }
  | { op: 'delete-server'; service: ServiceKey; dest: DestKey }
  /** All services, or one (ESRCH when missing). */
  | { op: 'list'; service?: ServiceKey }
  /** Zero the counters of one service, or of everything when `service` is absent. */
  | { op: 'zero'; service?: ServiceKey }
  | { op: 'set-timeout'; timeouts: Timeouts }
  | { op: 'get-timeout' }
  | { op: 'connections' }
  | { op: 'start-daemon'; daemon: DaemonConfig }
  | { op: 'stop-daemon'; state: 'master' | 'backup'; syncid?: number }
  | { op: 'get-daemon' }
  | { op: 'address-list' }
  | { op: 'address-add'; address: LocalAddress }
  | { op: 'address-del'; address: LocalAddress }
  /** FullNAT local addresses of a service (DPVS's --add-laddr / --del-laddr / --get-laddr). */
  | { op: 'laddr-add'; service: ServiceKey; laddr: LaddrConfig }
  | { op: 'laddr-del'; service: ServiceKey; laddr: LaddrConfig }
  | { op: 'laddr-list'; service?: ServiceKey }
  /** SNAT for connections real servers in `source` open: their source becomes `addr` (owned by the director). */
  | { op: 'snat-add'; snat: SnatConfig }
  | { op: 'snat-list' }
  /** Counters of the packet path: frames, drops by reason, ipvs reasons, the conn table's fill. */
  | { op: 'counters' }
  /**
   * Follow packets through the director's hooks: the server answers with one `{v, id, event}` line
   * per matching packet (a TracePacket), then the final response once `count` packets were sent.
   */
  | { op: 'trace'; filter: TraceRequestFilter; count: number }
  /** Re-read the configuration file and apply the difference (as SIGHUP does). */
  | { op: 'reload' }
  /** The health checker's view: each real server's state, checks, failures, last latency. */
  | { op: 'health' }
  /** The director's /proc/sys/net/ipv4/vs-style settings (kernel names). */
  | { op: 'get-sysctl' }
  /** Sets some of them; an omitted one stays. */
  | { op: 'set-sysctl'; sysctl: Partial<SysctlValues> }
  /** Stop announcing this director's VIPs to the routers (it keeps forwarding what still arrives). */
  | { op: 'director-drain' }
  /** Announce again (where quorum allows). */
  | { op: 'director-undrain' }
  /** The route announcer's view: each VIP, whether it is announced and why, the routing daemon's sessions. */
  | { op: 'announce' }
  /** Each VRRP instance's state, priority, master and counters (src/vrrp/host.ts VrrpSnapshot). */
  | { op: 'vrrp' };

/** The sysctls an operator can set, by their kernel names (net.ipv4.vs.NAME). */
export interface SysctlValues {
  /** 1: a TCP packet without SYN (and without RST) that matches no conn may create one (scale-out, ECMP). */
  sloppy_tcp: number;
  /** Accepted for parity with the kernel; tsvsd has no SCTP, so it changes nothing. */
  sloppy_sctp: number;
}

/** One announced (or withheld) VIP. */
export interface AnnouncedVip {
  /** "198.18.1.100/32" */
  prefix: string;
  announced: boolean;
  /** Why: "quorum", "drained", "no quorum: TCP 198.18.1.100:80", "stopping". */
  reason: string;
}

/** One BGP session of the routing daemon, as it reports it. */
export interface AnnouncePeer {
  name: string;
  neighbor: string;
  /** BIRD's protocol state (up, start, ...) and BGP state (Established, Active, Connect, ...). */
  state: string;
  bgpState: string;
  since: string;
  /** Routes exported to the peer, from the daemon's own counters. */
  exported: number;
  bfd: string;
}

/** `op: 'announce'`. */
export interface AnnounceStatus {
  enabled: boolean;
  drained: boolean;
  daemon: string | null;
  /** The routing daemon process runs and answers its control socket. */
  running: boolean;
  vips: AnnouncedVip[];
  peers: AnnouncePeer[];
  /** The routing daemon's control socket (for birdc -s). */
  control: string | null;
}

/** What a reload did. */
export interface ReloadResult {
  summary: Record<string, number>;
  /** Fields that changed but only take effect after a restart. */
  restartNeeded: string[];
  /** Requests of the difference the director refused (the rest was applied). */
  errors: string[];
}

/** Which packets a trace follows (any field left out matches everything). */
export interface TraceRequestFilter {
  cip?: string;
  vip?: string;
  port?: number;
  /** Send each step's frame bytes too (hex), e.g. to write a pcap. */
  frames?: boolean;
}

/** The packet-path counters (`op: 'counters'`). */
export interface CountersResult {
  rxFrames: number;
  txFrames: number;
  /** Frames by parser verdict (OK, ARP, TRUNCATED, BAD_IP_CHECKSUM, ...). */
  parse: Record<string, number>;
  /** Drops by reason (no_service, no_conn, ttl_expired, fragment, ...). */
  drops: Record<string, number>;
  /** ipvs pass/drop reasons (core.ts R). */
  ipvs: Record<string, number>;
  /** Table fill; `overflow` new conns refused, `earlyDrop` entries evicted to admit new conns. */
  conns: { count: number; capacity: number; overflow: number; earlyDrop: number; lportExhausted?: number };
  arpReplies: number;
  icmpEchoReplies: number;
  /** Connection sync: master_*, backup_* and backup_drop_<reason> counters. */
  sync?: Record<string, number>;
  /** PROXY headers inserted (first segments and their retransmissions) and SNAT conns created or refused. */
  fullnat?: { proxyHeaders: number; proxyNoRoom: number; snatCreated: number; snatExhausted: number };
  ports: Array<{ ifname: string; kind: string; rxFrames: number; txFrames: number; rxBytes: number; txBytes: number; rxDropped: number; txErrors: number }>;
}

/** A streamed line of a trace: one packet's path. */
export interface TraceEventLine {
  v: typeof PROTOCOL_VERSION;
  id: number;
  event: unknown;
}

export type Op = RequestBody['op'];

/** The result type each op answers with. */
export interface ResultMap {
  hello: HelloResult;
  'add-service': null;
  'edit-service': null;
  'delete-service': null;
  flush: null;
  'add-server': null;
  'edit-server': null;
  'delete-server': null;
  list: ListResult;
  zero: null;
  'set-timeout': null;
  'get-timeout': Timeouts;
  connections: ConnectionsResult;
  'start-daemon': null;
  'stop-daemon': null;
  'get-daemon': { daemons: DaemonEntry[] };
  'address-list': { addresses: LocalAddress[] };
  'address-add': null;
  'address-del': null;
  'laddr-add': null;
  'laddr-del': null;
  'laddr-list': LaddrListResult;
  'snat-add': null;
  'snat-list': { rules: (SnatConfig & { conns: number; available: number })[]; created: number; exhausted: number };
  counters: CountersResult;
  'get-sysctl': SysctlValues;
  'set-sysctl': SysctlValues;
  'director-drain': AnnounceStatus;
  'director-undrain': AnnounceStatus;
  announce: AnnounceStatus;
  trace: { packets: number };
  reload: ReloadResult;
  health: unknown;
  vrrp: VrrpSnapshot;
}

export interface ErrorBody {
  code: IpvsErrno;
  op: IpvsOp;
  message: string;
}

export type Response<R = unknown> =
  | { v: typeof PROTOCOL_VERSION; id: number; ok: true; result: R }
  | { v: typeof PROTOCOL_VERSION; id: number; ok: false; error: ErrorBody };

/** The ipvsadm operation name used for an op's error messages (libipvs picks its text by operation). */
export function errorOpFor(op: Op | string): IpvsOp {
  switch (op) {
    case 'add-service':
    case 'edit-service':
    case 'delete-service':
    case 'flush':
    case 'add-server':
    case 'edit-server':
    case 'delete-server':
    case 'list':
    case 'zero':
    case 'start-daemon':
    case 'stop-daemon':
    case 'connections':
      return op;
    case 'set-timeout':
      return 'set';
    case 'get-timeout':
      return 'timeout';
    case 'address-list':
    case 'address-add':
    case 'address-del':
      return 'address';
    case 'counters':
    case 'trace':
    case 'reload':
    case 'health':
    case 'get-sysctl':
    case 'set-sysctl':
    case 'director-drain':
    case 'director-undrain':
    case 'announce':
    case 'vrrp':
      return 'other';
    default:
      return 'other';
  }
}

/** A success response line for `id`. */
export function okResponse<R>(id: number, result: R): Response<R> {
  return { v: PROTOCOL_VERSION, id, ok: true, result };
}

/** An error response for `id`, with ipvsadm's text for the operation unless `message` is given. */
export function errorResponse(id: number, op: Op | string, code: IpvsErrno, message?: string): Response<never> {
  const eop = errorOpFor(op);
  return { v: PROTOCOL_VERSION, id, ok: false, error: { code, op: eop, message: message ?? ipvsMessage(eop, code) } };
}

// ---------------------------------------------------------------------------------------------
// zod schemas (server side validation). Built on first use: clients never pay for loading zod.

function buildSchemas(z: typeof Zod.z) {
  const u16 = z.number().int().min(0).max(65535);
  const u32 = z.number().int().min(0).max(0xffffffff);
  const count = z.number().int().min(0);
  const ipAddr = z.union([z.ipv4(), z.ipv6()]);
  const l4 = z.enum(['tcp', 'udp', 'sctp']);

  const serviceKeySchema = z.discriminatedUnion('type', [
    z.object({ type: l4, addr: ipAddr, port: u16 }).strict(),
    z.object({ type: z.literal('fwmark'), fwmark: u32.min(1), ipv6: z.boolean().optional() }).strict(),
  ]);

  const serviceConfigSchema = z
    .object({
      scheduler: z.string().min(1).max(15),
      persistent: z.boolean(),
      timeout: u32,
      netmask: z.union([z.ipv4(), z.string().regex(/^(?:[1-9]|[1-9][0-9]|1[01][0-9]|12[0-8])$/)]),
      onePacket: z.boolean(),
      schedFlags: z.number().int().min(0).max(7),
      pe: z.string().max(32),
      proxyProtocol: z.enum(['disable', 'v1', 'v2']).optional(),
    })
    .strict();

  const destKeySchema = z.object({ addr: ipAddr, port: u16 }).strict();

  const destConfigSchema = z
    .object({
      addr: ipAddr,
      port: u16,
      fwd: z.enum(['masq', 'local', 'tunnel', 'route', 'fullnat']),
      weight: z.number().int().min(0).max(0x7fffffff),
      uThreshold: z.number().int().min(0).max(0x7fffffff),
      lThreshold: z.number().int().min(0).max(0x7fffffff),
      tunType: z.enum(['ipip', 'gue', 'gre']),
      tunPort: u16,
      tunCsum: z.enum(['nocsum', 'csum', 'remcsum']),
    })
    .strict();

  const timeoutsSchema = z.object({ tcp: count, tcpfin: count, udp: count }).strict();

  const masterBackup = z.enum(['master', 'backup']);

  const daemonConfigSchema = z
    .object({
      state: masterBackup,
      mcastIfn: z.string().max(15),
      syncid: z.number().int().min(0).max(255),
      syncMaxlen: z.number().int().min(0).max(65507),
      mcastGroup: z.union([z.literal(''), ipAddr]),
      mcastPort: u16,
      mcastTtl: z.number().int().min(0).max(255),
    })
    .strict();

  const localAddressSchema = z
    .object({ addr: ipAddr, plen: z.number().int().min(0).max(128), ifname: z.string().min(1).max(15) })
    .strict();

  const laddrSchema = z.object({ addr: ipAddr, ifname: z.string().max(15) }).strict();

  const env = { v: z.literal(PROTOCOL_VERSION), id: z.number().int().min(0) };

  /** Validates one decoded request line; `op` discriminates. */
  const requestSchema = z.discriminatedUnion('op', [
    z.object({ ...env, op: z.literal('hello') }).strict(),
    z.object({ ...env, op: z.literal('add-service'), service: serviceKeySchema, config: serviceConfigSchema }).strict(),
    z.object({ ...env, op: z.literal('edit-service'), service: serviceKeySchema, config: serviceConfigSchema }).strict(),
    z.object({ ...env, op: z.literal('delete-service'), service: serviceKeySchema }).strict(),
    z.object({ ...env, op: z.literal('flush') }).strict(),
    z.object({ ...env, op: z.literal('add-server'), service: serviceKeySchema, dest: destConfigSchema }).strict(),
    z.object({ ...env, op: z.literal('edit-server'), service: serviceKeySchema, dest: destConfigSchema }).strict(),
    z.object({ ...env, op: z.literal('delete-server'), service: serviceKeySchema, dest: destKeySchema }).strict(),
    z.object({ ...env, op: z.literal('list'), service: serviceKeySchema.optional() }).strict(),
    z.object({ ...env, op: z.literal('zero'), service: serviceKeySchema.optional() }).strict(),
    z.object({ ...env, op: z.literal('set-timeout'), timeouts: timeoutsSchema }).strict(),
    z.object({ ...env, op: z.literal('get-timeout') }).strict(),
    z.object({ ...env, op: z.literal('connections') }).strict(),
    z.object({ ...env, op: z.literal('start-daemon'), daemon: daemonConfigSchema }).strict(),
    z
      .object({ ...env, op: z.literal('stop-daemon'), state: masterBackup, syncid: z.number().int().min(0).max(255).optional() })
      .strict(),
    z.object({ ...env, op: z.literal('get-daemon') }).strict(),
    z.object({ ...env, op: z.literal('address-list') }).strict(),
    z.object({ ...env, op: z.literal('address-add'), address: localAddressSchema }).strict(),
    z.object({ ...env, op: z.literal('address-del'), address: localAddressSchema }).strict(),
    z.object({ ...env, op: z.literal('laddr-add'), service: serviceKeySchema, laddr: laddrSchema }).strict(),
    z.object({ ...env, op: z.literal('laddr-del'), service: serviceKeySchema, laddr: laddrSchema }).strict(),
    z.object({ ...env, op: z.literal('laddr-list'), service: serviceKeySchema.optional() }).strict(),
    z.object({ ...env, op: z.literal('snat-add'), snat: z.object({ source: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/), addr: z.ipv4(), ifname: z.string().max(15) }).strict() }).strict(),
    z.object({ ...env, op: z.literal('snat-list') }).strict(),
    z.object({ ...env, op: z.literal('counters') }).strict(),
    z.object({ ...env, op: z.literal('reload') }).strict(),
    z.object({ ...env, op: z.literal('health') }).strict(),
    z.object({ ...env, op: z.literal('get-sysctl') }).strict(),
    z
      .object({
        ...env,
        op: z.literal('set-sysctl'),
        sysctl: z.object({ sloppy_tcp: z.number().int().min(0).max(1).optional(), sloppy_sctp: z.number().int().min(0).max(1).optional() }).strict(),
      })
      .strict(),
    z.object({ ...env, op: z.literal('director-drain') }).strict(),
    z.object({ ...env, op: z.literal('director-undrain') }).strict(),
    z.object({ ...env, op: z.literal('announce') }).strict(),
    z.object({ ...env, op: z.literal('vrrp') }).strict(),
    z
      .object({
        ...env,
        op: z.literal('trace'),
        filter: z.object({ cip: z.ipv4().optional(), vip: z.ipv4().optional(), port: u16.optional(), frames: z.boolean().optional() }).strict(),
        count: z.number().int().min(1).max(100000),
      })
      .strict(),
  ]);
  return {
    serviceKeySchema,
    serviceConfigSchema,
    destKeySchema,
    destConfigSchema,
    timeoutsSchema,
    daemonConfigSchema,
    localAddressSchema,
    requestSchema,
  };
}

/** The protocol's zod schemas; `requestSchema` validates one decoded request line. */
export type ProtocolSchemas = ReturnType<typeof buildSchemas>;
let schemas: ProtocolSchemas | null = null;

/** The zod schemas of the protocol (zod is loaded on the first call). */
export function protocolSchemas(): ProtocolSchemas {
  if (!schemas) {
    const { z } = createRequire(import.meta.url)('zod') as typeof Zod;
    schemas = buildSchemas(z);
  }
  return schemas;
}

/**
 * Decode and validate one request line on the server. Returns the typed request, or the error
 * response to send back (EINVAL) when the line is not a valid request.
 */
export function parseRequestLine(line: string): { ok: true; request: Request } | { ok: false; response: Response } {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { ok: false, response: errorResponse(0, 'other', 'EINVAL', 'malformed request: not JSON') };
  }
  const id = typeof (raw as { id?: unknown })?.id === 'number' ? (raw as { id: number }).id : 0;
  const op = typeof (raw as { op?: unknown })?.op === 'string' ? (raw as { op: string }).op : 'other';
  if ((raw as { v?: unknown })?.v !== PROTOCOL_VERSION) {
    return { ok: false, response: errorResponse(id, op, 'EINVAL', `unsupported protocol version (this server speaks v${PROTOCOL_VERSION})`) };
  }
  const parsed = protocolSchemas().requestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length ? ` at ${issue.path.join('.')}` : '';
    return { ok: false, response: errorResponse(id, op, 'EINVAL', `malformed ${op} request${where}: ${issue?.message ?? 'invalid'}`) };
  }
  return { ok: true, request: parsed.data as Request };
}

/** One response as a protocol line (JSON + "\n"). */
export function encodeLine(msg: Request | Response): string {
  return JSON.stringify(msg) + '\n';
}
