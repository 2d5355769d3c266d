// ipvsadm 1.31's argument grammar: popt's option scanning, the command × option matrix, its checks, messages and defaults.
import type { DaemonConfig, DestConfig, FwdMethod, RequestBody, ServiceConfig, ServiceKey, TunCsum, TunType } from '../../ctl/protocol.ts';
import { inetAton, inetPton6, ntoa, strIsDigit, stringToNumber, type Resolver, type ServProto } from './resolve.ts';

export const IPVSADM_VERSION = 'v1.31 2019/12/24';
/** Kernel IPVS version tsvs mimics (ipvsadm prints it in its version line and listing header). */
export const IPVS_VERSION = '1.2.1';
const MAX_TIMEOUT = 86400 * 31;
const DEF_SCHED = 'wlc';
/** libipvs's IPVS_SVC_PERSISTENT_TIMEOUT: what `-p` without a value means. */
export const DEFAULT_PERSISTENT_TIMEOUT = 360;

/** Commands, in ipvsadm's CMD_* order (names are its cmdnames, used in messages). */
export const CMD_NAMES = [
  'add-service',
  'edit-service',
  'delete-service',
  'flush',
  'list',
  'add-server',
  'delete-server',
  'edit-server',
  'set',
  'start-daemon',
  'stop-daemon',
  'restore',
  'save',
  'zero',
  // DPVS's ipvsadm: FullNAT local addresses.
  'add-laddr',
  'del-laddr',
  'get-laddr',
] as const;
export type CmdName = (typeof CMD_NAMES)[number];

/** Options, in ipvsadm's OPTC_* order (names are its optnames, used in messages). */
export const OPT_NAMES = [
  'numeric',
  'connection',
  'service-address',
  'scheduler',
  'persistent',
  'netmask',
  'real-server',
  'forwarding-method',
  'weight',
  'u-threshold',
  'l-threshold',
  'mcast-interface',
  'timeout',
  'daemon',
  'stats',
  'rate',
  'thresholds',
  'persistent-conn',
  'nosort',
  'syncid',
  'exact',
  'ops',
  'pe',
  'sched-flags',
  'mcast-group',
  'mcast-port',
  'mcast-ttl',
  'sync-maxlen',
  'tun-info',
  'tun-type',
  'tun-port',
  'tun-nocsum',
  'tun-csum',
  'tun-remcsum',
  // DPVS's ipvsadm: -z local address, -F interface.
  'laddr',
  'ifname',
  'proxy-protocol',
] as const;
export type OptName = (typeof OPT_NAMES)[number];
const O = Object.fromEntries(OPT_NAMES.map((n, i) => [n, i])) as Record<OptName, number>;

/**
 * Legal command × option combinations, one row per command in CMD_NAMES order, one column per
 * option in OPT_NAMES order: '+' required, 'x' illegal, '1' at most one of the '1's, '.' optional.
 */
const MATRIX: readonly string[] = [
  'xx+...xxxxxxxxxxxxxxx...xxxxxxxxxxxx.', // add-service
  'xx+...xxxxxxxxxxxxxxx...xxxxxxxxxxxx.', // edit-service
  'xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', // delete-service
  'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', // flush
  '.11xxxxxxxxx11.......xxxxxxx.xxxxxxxx', // list
  'xx+xxx+....xxxxxxxxxxxxxxxxxx.....xxx', // add-server
  'xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', // delete-server
  'xx+xxx+....xxxxxxxxxxxxxxxxxx.....xxx', // edit-server
  'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', // set
  'xxxxxxxxxxx.xxxxxxx.xxxx....xxxxxxxxx', // start-daemon
  'xxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxxxxx', // stop-daemon
  'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', // restore
  '.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', // save
  'xx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', // zero
  'xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx+.x', // add-laddr (DPVS requires -F; tsvs defaults it to the route's interface)
  'xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx+.x', // del-laddr
  'xx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', // get-laddr
];

const TUN_NAMES: readonly TunType[] = ['ipip', 'gue', 'gre'];
/** Tunnel type × option (tun-port, tun-nocsum, tun-csum, tun-remcsum), same legend as MATRIX. */
const TUN_MATRIX: readonly string[] = ['xxxx', '+111', 'x11x'];
const TUN_OPTS = [O['tun-port'], O['tun-nocsum'], O['tun-csum'], O['tun-remcsum']];

/** Listing modifiers (ipvsadm's FMT_* flags). */
export interface Format {
  numeric: boolean;
  stats: boolean;
  rate: boolean;
  thresholds: boolean;
  persistentConn: boolean;
  nosort: boolean;
  exact: boolean;
  tunInfo: boolean;
}

export const AF_INET = 2;
export const AF_INET6 = 10;
export const IPPROTO = { ip: 0, tcp: 6, udp: 17, sctp: 132 } as const;

/** The virtual service as ipvsadm fills its ipvs_service_t while parsing. */
export interface SvcSpec {
  af: number;
  protocol: number;
  /** '' until an address is parsed; canonical text otherwise. */
  addr: string;
  port: number;
  fwmark: number;
  sched: string;
  /** IP_VS_SVC_F_* bits: PERSISTENT 1, ONEPACKET 4, SCHED1..3 8/16/32. */
  flags: number;
  timeout: number;
  /** Host-order u32 mask for IPv4, prefix length for IPv6. */
  netmask: number;
  pe: string;
  /** DPVS's --proxy-protocol ('' = not given). */
  proxyProtocol: '' | 'disable' | 'v1' | 'v2';
}

export interface DestSpec {
  af: number;
  addr: string;
  port: number;
  fwd: FwdMethod;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  tunType: number;
  tunPort: number;
  /** IP_VS_TUNNEL_ENCAP_FLAG_* bits: CSUM 1, REMCSUM 2 (0 = nocsum). */
  tunFlags: number;
}

/** One parsed invocation (or one -R line). */
export interface Parsed {
  cmd: CmdName;
  /** Option indexes (OPT_NAMES) that were given. */
  opts: Set<number>;
  format: Format;
  svc: SvcSpec;
  dest: DestSpec;
  timeouts: { tcp: number; tcpfin: number; udp: number };
  daemon: DaemonConfig;
  /** tsvs extension: typed JSON output for listings. */
  json: boolean;
  /** DPVS's -z / -F: a FullNAT local address and its interface ('' none). */
  laddr: { addr: string; ifname: string };
}

/** The outcome of parsing: a command to run, an exit (ipvsadm exits, aborting a restore too), or a soft error. */
export type ParseOutcome =
  | { kind: 'command'; parsed: Parsed }
  /** fail(), tryhelp, -h, -v: the process ends with this status (a restore aborts). */
  | { kind: 'exit'; code: number; stdout: string; stderr: string }
  /** A popt error after the command: message printed, status -1 (255), a restore continues. */
  | { kind: 'error'; code: number; stderr: string };

class Exit {
  constructor(
    readonly code: number,
    readonly stdout: string,
    readonly stderr: string,
  ) {}
}

function fail(code: number, msg: string): never {
  throw new Exit(code, '', msg + '\n');
}

function tryhelp(program: string): never {
  throw new Exit(255, '', `Try \`${program} -h' or '${program} --help' for more information.\n`);
}

/** The version line: tsvsadm names tsvs and the ipvsadm release whose behaviour it reproduces. */
export function versionLine(tsvsVersion: string): string {
  return `tsvsadm v${tsvsVersion} (tsvs; ipvsadm ${IPVSADM_VERSION} compatible, IPVS v${IPVS_VERSION})\n`;
}

const SCHEDULERS = 'rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh';

/** The -h text: ipvsadm's usage, then tsvs's own options. */
export function usageText(program: string, tsvsVersion: string): string {
  const p = program;
  return (
    versionLine(tsvsVersion) +
    'Usage:\n' +
    `  ${p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]\n` +
    `  ${p} -D virtual-service\n` +
    `  ${p} -C\n` +
    `  ${p} -R\n` +
    `  ${p} -S [-n]\n` +
    `  ${p} -a|e virtual-service -r server-address [options]\n` +
    `  ${p} -d virtual-service -r server-address\n` +
    `  ${p} -L|l [virtual-service] [options]\n` +
    `  ${p} -Z [virtual-service]\n` +
    `  ${p} --set tcp tcpfin udp\n` +
    `  ${p} --start-daemon {master|backup} [daemon-options]\n` +
    `  ${p} --stop-daemon {master|backup}\n` +
    `  ${p} -P|Q -t|u service-address -z local-address [-F interface]\n` +
    `  ${p} -G [-t|u service-address]\n` +
    `  ${p} -h\n\n` +
    'Commands:\n' +
    'Either long or short options are allowed.\n' +
    '  --add-service     -A        add virtual service with options\n' +
    '  --edit-service    -E        edit virtual service with options\n' +
    '  --delete-service  -D        delete virtual service\n' +
    '  --clear           -C        clear the whole table\n' +
    '  --restore         -R        restore rules from stdin\n' +
    '  --save            -S        save rules to stdout\n' +
    '  --add-server      -a        add real server with options\n' +
    '  --edit-server     -e        edit real server with options\n' +
    '  --delete-server   -d        delete real server\n' +
    '  --list            -L|-l     list the table\n' +
    '  --zero            -Z        zero counters in a service or all services\n' +
    '  --set tcp tcpfin udp        set connection timeout values\n' +
    '  --start-daemon              start connection sync daemon\n' +
    '  --stop-daemon               stop connection sync daemon\n' +
    '  --add-laddr       -P        add local address (FullNAT)\n' +
    '  --del-laddr       -Q        del local address\n' +
    '  --get-laddr       -G        get local address\n' +
    '  --help            -h        display this help message\n\n' +
    'virtual-service:\n' +
    '  --tcp-service|-t  service-address   service-address is host[:port]\n' +
    '  --udp-service|-u  service-address   service-address is host[:port]\n' +
    '  --sctp-service    service-address   service-address is host[:port]\n' +
    '  --fwmark-service|-f fwmark          fwmark is an integer greater than zero\n' +
    '\n' +
    'Options:\n' +
    '  --ipv6         -6                   fwmark entry uses IPv6\n' +
    `  --scheduler    -s scheduler         one of ${SCHEDULERS},\n` +
    `                                      the default scheduler is ${DEF_SCHED}.\n` +
    '  --pe            engine              alternate persistence engine may be sip,\n' +
    '                                      not set by default.\n' +
    '  --persistent   -p [timeout]         persistent service\n' +
    '  --netmask      -M netmask           persistent granularity mask\n' +
    '  --real-server  -r server-address    server-address is host (and port)\n' +
    '  --gatewaying   -g                   gatewaying (direct routing) (default)\n' +
    '  --ipip         -i                   ipip encapsulation (tunneling)\n' +
    '  --masquerading -m                   masquerading (NAT)\n' +
    '  --fullnat      -b                   fullnat mode (with -a/-e; DPVS)\n' +
    '  --tun-type      type                one of ipip|gue|gre,\n' +
    '                                      the default tunnel type is ipip.\n' +
    '  --tun-port      port                tunnel destination port\n' +
    '  --tun-nocsum                        tunnel encapsulation without checksum\n' +
    '  --tun-csum                          tunnel encapsulation with checksum\n' +
    '  --tun-remcsum                       tunnel encapsulation with remote checksum\n' +
    '  --weight       -w weight            capacity of real server\n' +
    '  --u-threshold  -x uthreshold        upper threshold of connections\n' +
    '  --l-threshold  -y lthreshold        lower threshold of connections\n' +
    '  --connection   -c                   output of current IPVS connections\n' +
    '  --timeout                           output of timeout (tcp tcpfin udp)\n' +
    '  --daemon                            output of daemon information\n' +
    '  --stats                             output of statistics information\n' +
    '  --rate                              output of rate information\n' +
    '  --exact                             expand numbers (display exact values)\n' +
    '  --thresholds                        output of thresholds information\n' +
    '  --persistent-conn                   output of persistent connection info\n' +
    '  --tun-info                          output of tunnel information\n' +
    '  --nosort                            disable sorting output of service/server entries\n' +
    '  --sort                              does nothing, for backwards compatibility\n' +
    '  --ops          -o                   one-packet scheduling\n' +
    '  --numeric      -n                   numeric output of addresses and ports\n' +
    '  --sched-flags  -b flags             scheduler flags (comma-separated)\n' +
    '  --proxy-protocol                    proxy protocol config (disable|v1|v2; FullNAT TCP)\n' +
    '  --laddr        -z local-ip          local IP (FullNAT)\n' +
    '  --ifname       -F                   nic interface for laddrs\n' +
    'Daemon Options:\n' +
    '  --syncid sid                        syncid for connection sync (default=255)\n' +
    '  --sync-maxlen length                Max sync message length (default=1472)\n' +
    '  --mcast-interface interface         multicast interface for connection sync\n' +
    '  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)\n' +
    '  --mcast-port port                   UDP port (default=8848)\n' +
    '  --mcast-ttl ttl                     Multicast TTL (default=1)\n' +
    'tsvs Options:\n' +
    '  --socket PATH                       tsvsd control socket (default $TSVS_SOCKET or /run/tsvs/tsvsd.sock)\n' +
    '  --json                              listings as JSON\n' +
    '  --reload                            make tsvsd re-read its configuration file (as SIGHUP)\n' +
    '  --health                            health-check state of each real server\n'
  );
}

// ---------------------------------------------------------------------------------------------
// popt scanning

type ArgKind = 'none' | 'string' | 'optional';
interface OptSpec {
  long: string | null;
  short: string | null;
  arg: ArgKind;
  /** The value ipvsadm's switch sees (short letter, or a tag). */
  val: string;
}

const S = (long: string | null, short: string | null, arg: ArgKind, val?: string): OptSpec => ({
  long,
  short,
  arg,
  val: val ?? short ?? long!,
});

/** ipvsadm's popt table, in its order (popt returns the first match). */
const TABLE: readonly OptSpec[] = [
  S('add-service', 'A', 'none'),
  S('edit-service', 'E', 'none'),
  S('delete-service', 'D', 'none'),
  S('clear', 'C', 'none'),
  S('list', 'L', 'none'),
  S('list', 'l', 'none'),
  S('zero', 'Z', 'none'),
  S('add-server', 'a', 'none'),
  S('edit-server', 'e', 'none'),
  S('delete-server', 'd', 'none'),
  S('set', null, 'none'),
  S('help', 'h', 'none'),
  S('version', 'v', 'none'),
  S('restore', 'R', 'none'),
  S('save', 'S', 'none'),
  S('start-daemon', null, 'string'),
  S('stop-daemon', null, 'string'),
  S('tcp-service', 't', 'string'),
  S('udp-service', 'u', 'string'),
  S('sctp-service', null, 'string'),
  S('fwmark-service', 'f', 'string'),
  S('scheduler', 's', 'string'),
  S('persistent', 'p', 'optional'),
  S('netmask', 'M', 'string'),
  S('real-server', 'r', 'string'),
  S('masquerading', 'm', 'none'),
  S('ipip', 'i', 'none'),
  S('gatewaying', 'g', 'none'),
  S('weight', 'w', 'string'),
  S('u-threshold', 'x', 'string'),
  S('l-threshold', 'y', 'string'),
  S('numeric', 'n', 'none'),
  S('connection', 'c', 'none'),
  S('mcast-interface', null, 'string'),
  S('syncid', null, 'string'),
  S('timeout', null, 'none'),
  S('daemon', null, 'none'),
  S('stats', null, 'none'),
  S('rate', null, 'none'),
  S('thresholds', null, 'none'),
  S('persistent-conn', null, 'none'),
  S('nosort', null, 'none'),
  S('sort', null, 'none'),
  S('exact', 'X', 'none'),
  S('ipv6', '6', 'none'),
  S('ops', 'o', 'none'),
  S('pe', null, 'string'),
  S('sched-flags', 'b', 'string'),
  S('mcast-group', null, 'string'),
  S('mcast-port', null, 'string'),
  S('mcast-ttl', null, 'string'),
  S('sync-maxlen', null, 'string'),
  S('tun-info', null, 'none'),
  S('tun-type', null, 'string'),
  S('tun-port', null, 'string'),
  S('tun-nocsum', null, 'none'),
  S('tun-csum', null, 'none'),
  S('tun-remcsum', null, 'none'),
  // DPVS's ipvsadm (its -b is --fullnat; here -b means that only on -a/-e, see Popt.fullnatB).
  S('add-laddr', 'P', 'none'),
  S('del-laddr', 'Q', 'none'),
  S('get-laddr', 'G', 'none'),
  S('fullnat', null, 'none'),
  S('laddr', 'z', 'string'),
  S('ifname', 'F', 'string'),
  S('proxy-protocol', null, 'string'),
];

const FULLNAT_B: OptSpec = S('fullnat', 'b', 'none', 'fullnat');

const POPT_ERRORS = {
  NOARG: 'missing argument',
  BADOPT: 'unknown option',
  UNWANTEDARG: 'option does not take an argument',
} as const;

type Scan = { val: string; arg: string | null } | { end: true } | { error: keyof typeof POPT_ERRORS };

/** A popt context over argv (argv[0] is the program): options in order, leftovers collected. */
class Popt {
  private next = 1;
  private nextChar: string | null = null;
  private restLeftover = false;
  readonly leftovers: string[] = [];
  private nextLeftover = 0;
  /**
   * ipvsadm 1.31's -b takes scheduler flags, DPVS's ipvsadm's -b is --fullnat. Scheduler flags are
   * illegal with -a/-e, so after those commands -b is read as DPVS's flag (no argument).
   */
  fullnatB = false;

  constructor(private readonly argv: readonly string[]) {}

  /** popt's poptBadOption(POPT_BADOPTION_NOALIAS): the argv element last consumed. */
  badOption(): string {
    return this.argv[this.next - 1] ?? '';
  }

  getArg(): string | null {
    return this.nextLeftover < this.leftovers.length ? this.leftovers[this.nextLeftover++]! : null;
  }

  nextOpt(): Scan {
    const argv = this.argv;
    for (;;) {
      if (this.nextChar === null && this.next >= argv.length) return { end: true };
      let opt: OptSpec | null = null;
      let longArg: string | null = null;
      if (this.nextChar === null) {
        const orig = argv[this.next++]!;
        if (this.restLeftover || orig[0] !== '-' || orig === '-') {
          this.leftovers.push(orig);
          continue;
        }
        if (orig === '--') {
          this.restLeftover = true;
          continue;
        }
        let s = orig.slice(1);
        const oneDash = s[0] !== '-';
        if (!oneDash) s = s.slice(1);
        if (!oneDash) {
          const eq = s.indexOf('=');
          const name = eq >= 0 ? s.slice(0, eq) : s;
          if (eq >= 0) longArg = s.slice(eq + 1);
          opt = TABLE.find((o) => o.long === name) ?? null;
          if (!opt) return { error: 'BADOPT' };
        } else {
          this.nextChar = orig.slice(1);
        }
      }
      if (this.nextChar !== null) {
        const cur = this.nextChar;
        this.nextChar = null;
        const c = cur[0];
        opt = c === undefined ? null : (TABLE.find((o) => o.short === c) ?? null);
        if (!opt) return { error: 'BADOPT' };
        const rest = cur.slice(1);
        if (rest !== '') this.nextChar = rest[0] === '=' ? rest.slice(1) : rest;
      }
      let o = opt!;
      if (o.short === 'b' && this.fullnatB) o = FULLNAT_B;
      if (o.arg === 'none') {
        if (longArg !== null || (this.nextChar !== null && this.nextChar[0] === '=')) return { error: 'UNWANTEDARG' };
        return { val: o.val, arg: null };
      }
      let arg: string | null;
      if (longArg !== null) arg = longArg;
      else if (this.nextChar !== null) {
        arg = this.nextChar[0] === '=' ? this.nextChar.slice(1) : this.nextChar;
        this.nextChar = null;
      } else if (this.next >= argv.length) {
        if (o.arg !== 'optional') return { error: 'NOARG' };
        arg = null;
      } else if (o.arg === 'optional' && argv[this.next]![0] === '-') {
        arg = null;
      } else {
        arg = argv[this.next++]!;
      }
      return { val: o.val, arg };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ipvsadm's parse_options / process_options

function emptyFormat(): Format {
  return { numeric: false, stats: false, rate: false, thresholds: false, persistentConn: false, nosort: false, exact: false, tunInfo: false };
}

function protoName(p: number): ServProto | null {
  return p === IPPROTO.tcp ? 'tcp' : p === IPPROTO.udp ? 'udp' : p === IPPROTO.sctp ? 'sctp' : null;
}

const SERVICE_ADDR = 1;
const SERVICE_PORT = 2;

/** ipvsadm's parse_service: fills af/addr/port of `svc` (possibly partly, on failure) and says what it found. */
async function parseService(buf: string, svc: { af: number; addr: string; port: number; netmask: number; protocol: number }, r: Resolver): Promise<number> {
  if (strIsDigit(buf)) return 0;
  let portStr: string | null = null;
  if (buf[0] === '[') {
    buf = buf.slice(1);
    const close = buf.indexOf(']');
    if (close < 0) return 0;
    const after = buf.slice(close + 1);
    buf = buf.slice(0, close);
    if (after[0] !== ':') return 0;
    portStr = after.slice(1);
  }
  const v6 = inetPton6(buf);
  if (v6 !== null) {
    svc.addr = v6;
    svc.af = AF_INET6;
    svc.netmask = 128;
  } else {
    const colon = buf.lastIndexOf(':');
    if (colon >= 0) {
      portStr = buf.slice(colon + 1);
      buf = buf.slice(0, colon);
    } else portStr = null;
    const a = inetAton(buf);
    if (a !== null) {
      svc.addr = ntoa(a);
      svc.af = AF_INET;
    } else {
      const h = await r.hostToAddr(buf);
      if (h === null) return 0;
      svc.addr = h;
      svc.af = AF_INET;
    }
  }
  let result = SERVICE_ADDR;
  if (portStr !== null) {
    result |= SERVICE_PORT;
    let n = stringToNumber(portStr, 0, 65535);
    if (n === -1) {
      const proto = protoName(svc.protocol);
      n = proto ? (r.serviceToPort(portStr, proto) ?? -1) : -1;
    }
    if (n === -1) return 0;
    svc.port = n;
  }
  return result;
}

function parseTimeout(buf: string | null, min: number, max: number): number {
  if (buf === null) return DEFAULT_PERSISTENT_TIMEOUT;
  const i = stringToNumber(buf, min, max);
  if (i === -1) fail(2, `invalid timeout value \`${buf}' specified`);
  return i;
}

function parseFwmark(buf: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?[0-9]+)$/.exec(buf);
  const n = m ? Number(m[1]) : NaN;
  if (!(n >= 1 && n <= 0xffffffff)) fail(2, `invalid fwmark value \`${buf}' specified`);
  return n;
}

const SCHED1 = 0x8;
const SCHED2 = 0x10;
const SCHED3 = 0x20;

function parseSchedFlags(sched: string, arg: string): number {
  const s = sched || DEF_SCHED;
  let flags = 0;
  // strtok skips empty fields; an argument of only commas still checks one (empty) flag.
  const list = arg.split(',').filter((f) => f !== '');
  if (list.length === 0) list.push('');
  for (const f of list) {
    const need = (name: string) => {
      if (s !== name) fail(2, `incompatible scheduler flag \`${f}'`);
    };
    if (f === 'flag-1') flags |= SCHED1;
    else if (f === 'flag-2') flags |= SCHED2;
    else if (f === 'flag-3') flags |= SCHED3;
    else if (f === 'sh-fallback') (flags |= SCHED1), need('sh');
    else if (f === 'sh-port') (flags |= SCHED2), need('sh');
    else if (f === 'mh-fallback') (flags |= SCHED1), need('mh');
    else if (f === 'mh-port') (flags |= SCHED2), need('mh');
    else fail(2, `invalid scheduler flag \`${f}'`);
  }
  return flags;
}

const COMMAND_VALS: Record<string, CmdName | 'help' | 'version'> = {
  A: 'add-service',
  E: 'edit-service',
  D: 'delete-service',
  a: 'add-server',
  e: 'edit-server',
  d: 'delete-server',
  C: 'flush',
  L: 'list',
  l: 'list',
  Z: 'zero',
  set: 'set',
  R: 'restore',
  S: 'save',
  'start-daemon': 'start-daemon',
  'stop-daemon': 'stop-daemon',
  h: 'help',
  v: 'version',
  P: 'add-laddr',
  Q: 'del-laddr',
  G: 'get-laddr',
};

export interface ParseContext {
  /** argv[0] as invoked (appears in the usage and "Try ..." texts). */
  program: string;
  resolver: Resolver;
  tsvsVersion: string;
  /** Parsing a line of -R input (a nested -R is refused). */
  restoring?: boolean;
  /** tsvs's --json was given (only listings take it). */
  json?: boolean;
}

/** Parse one ipvsadm command line (without the program name) exactly as ipvsadm 1.31 does. */
export async function parseArgs(args: readonly string[], ctx: ParseContext): Promise<ParseOutcome> {
  try {
    return await parseInner(args, ctx);
  } catch (e) {
    if (e instanceof Exit) return { kind: 'exit', code: e.code, stdout: e.stdout, stderr: e.stderr };
    throw e;
  }
}

async function parseInner(args: readonly string[], ctx: ParseContext): Promise<ParseOutcome> {
  const program = ctx.program;
  const r = ctx.resolver;
  const popt = new Popt([program, ...args]);
  const opts = new Set<number>();
  const format = emptyFormat();
  const svc: SvcSpec = { af: 0, protocol: 0, addr: '', port: 0, fwmark: 0, sched: '', flags: 0, timeout: 0, netmask: 0xffffffff, pe: '', proxyProtocol: '' };
  const dest: DestSpec = {
    af: 0,
    addr: '',
    port: 0,
    fwd: 'route',
    weight: 1,
    uThreshold: 0,
    lThreshold: 0,
    tunType: 0,
    tunPort: 0,
    tunFlags: 0,
  };
  const timeouts = { tcp: 0, tcpfin: 0, udp: 0 };
  const daemon: DaemonConfig = { state: 'master', mcastIfn: '', syncid: 0, syncMaxlen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 };
  let schedFlagsArg = '';
  const laddr = { addr: '', ifname: '' };
  const setOption = (i: number) => {
    if (opts.has(i)) fail(2, `multiple '${OPT_NAMES[i]}' options specified`);
    opts.add(i);
  };

  const first = popt.nextOpt();
  if (!('val' in first)) tryhelp(program);
  const c0 = COMMAND_VALS[first.val];
  if (c0 === undefined) tryhelp(program);
  if (c0 === 'help') throw new Exit(0, usageText(program, ctx.tsvsVersion), '');
  if (c0 === 'version') throw new Exit(0, versionLine(ctx.tsvsVersion), '');
  const cmd: CmdName = c0;
  popt.fullnatB = cmd === 'add-server' || cmd === 'edit-server';
  if (cmd === 'start-daemon' || cmd === 'stop-daemon') {
    if (first.arg === 'master' || first.arg === 'backup') daemon.state = first.arg;
    else fail(2, cmd === 'start-daemon' ? 'illegal start-daemon parameter specified' : 'illegal start_daemon specified');
  }

  let scan: Scan;
  for (;;) {
    scan = popt.nextOpt();
    if (!('val' in scan)) break;
    const arg = scan.arg ?? '';
    switch (scan.val) {
      case 't':
      case 'u':
      case 'sctp-service': {
        setOption(O['service-address']);
        svc.protocol = scan.val === 't' ? IPPROTO.tcp : scan.val === 'u' ? IPPROTO.udp : IPPROTO.sctp;
        if (!((await parseService(arg, svc, r)) & SERVICE_ADDR)) fail(2, 'illegal virtual server address[:port] specified');
        break;
      }
      case 'f':
        setOption(O['service-address']);
        svc.af = AF_INET;
        svc.protocol = IPPROTO.tcp;
        svc.fwmark = parseFwmark(arg);
        break;
      case 's':
        setOption(O.scheduler);
        svc.sched = arg.slice(0, 15);
        break;
      case 'p':
        setOption(O.persistent);
        svc.flags |= 0x1;
        svc.timeout = parseTimeout(scan.arg, 1, MAX_TIMEOUT);
        break;
      case 'M':
        setOption(O.netmask);
        if (svc.af !== AF_INET6) {
          let m = inetAton(arg);
          if (m === null) {
            const h = arg === '' ? null : await r.hostToAddr(arg);
            m = h === null ? null : inetAton(h);
          }
          if (m === null) fail(2, 'illegal virtual server persistent mask specified');
          svc.netmask = m;
        } else {
          const n = /^[ \t\n\v\f\r]*([+-]?[0-9]+)/.exec(arg);
          svc.netmask = n ? Number(n[1]) : 0;
          if (svc.netmask < 1 || svc.netmask > 128) fail(2, 'illegal ipv6 netmask specified');
        }
        break;
      case 'r': {
        setOption(O['real-server']);
        const t = { af: svc.af, addr: svc.addr, port: svc.port, netmask: svc.netmask, protocol: svc.protocol };
        const parse = await parseService(arg, t, r);
        dest.af = t.af;
        dest.addr = t.addr;
        dest.port = t.port;
        if (!(parse & SERVICE_ADDR)) fail(2, 'illegal real server address[:port] specified');
        if (parse === SERVICE_ADDR) dest.port = svc.port;
        break;
      }
      case 'i':
        setOption(O['forwarding-method']);
        dest.fwd = 'tunnel';
        break;
      case 'g':
        setOption(O['forwarding-method']);
        dest.fwd = 'route';
        break;
      case 'm':
        setOption(O['forwarding-method']);
        dest.fwd = 'masq';
        break;
      case 'fullnat':
        setOption(O['forwarding-method']);
        dest.fwd = 'fullnat';
        break;
      case 'z': {
        setOption(O.laddr);
        const a = inetAton(arg);
        if (a === null) fail(2, 'illegal local address');
        laddr.addr = ntoa(a);
        break;
      }
      case 'proxy-protocol': {
        setOption(O['proxy-protocol']);
        const v = arg.toLowerCase();
        if (v === 'v1-insecure' || v === 'v2-insecure') fail(2, `proxy protocol ${v} is not supported by tsvs (no PROXY header from clients is trusted)`);
        if (v !== 'disable' && v !== 'v1' && v !== 'v2') fail(2, 'proxy protocol must be disable, v1 or v2');
        svc.proxyProtocol = v;
        break;
      }
      case 'F':
        setOption(O.ifname);
        laddr.ifname = arg.slice(0, 15);
        break;
      case 'w':
        setOption(O.weight);
        if ((dest.weight = stringToNumber(arg, 0, 65535)) === -1) fail(2, 'illegal weight specified');
        break;
      case 'x':
        setOption(O['u-threshold']);
        if ((dest.uThreshold = stringToNumber(arg, 0, 0x7fffffff)) === -1) fail(2, 'illegal u_threshold specified');
        break;
      case 'y':
        setOption(O['l-threshold']);
        if ((dest.lThreshold = stringToNumber(arg, 0, 0x7fffffff)) === -1) fail(2, 'illegal l_threshold specified');
        break;
      case 'c':
        setOption(O.connection);
        break;
      case 'n':
        setOption(O.numeric);
        format.numeric = true;
        break;
      case 'mcast-interface':
        setOption(O['mcast-interface']);
        daemon.mcastIfn = arg.slice(0, 15);
        break;
      case 'syncid':
        setOption(O.syncid);
        if ((daemon.syncid = stringToNumber(arg, 0, 255)) === -1) fail(2, 'illegal syncid specified');
        break;
      case 'timeout':
        setOption(O.timeout);
        break;
      case 'daemon':
        setOption(O.daemon);
        break;
      case 'stats':
        setOption(O.stats);
        format.stats = true;
        break;
      case 'rate':
        setOption(O.rate);
        format.rate = true;
        break;
      case 'thresholds':
        setOption(O.thresholds);
        format.thresholds = true;
        break;
      case 'persistent-conn':
        setOption(O['persistent-conn']);
        format.persistentConn = true;
        break;
      case 'nosort':
        setOption(O.nosort);
        format.nosort = true;
        break;
      case 'sort':
        break;
      case 'X':
        setOption(O.exact);
        format.exact = true;
        break;
      case '6':
        if (svc.fwmark) {
          svc.af = AF_INET6;
          svc.netmask = 128;
        } else fail(2, '-6 used before -f\n');
        break;
      case 'o':
        setOption(O.ops);
        svc.flags |= 0x4;
        break;
      case 'pe':
        setOption(O.pe);
        svc.pe = arg.slice(0, 32);
        break;
      case 'b':
        setOption(O['sched-flags']);
        schedFlagsArg = arg.slice(0, 127);
        break;
      case 'mcast-group':
        setOption(O['mcast-group']);
        if (arg.includes(':')) {
          const a = inetPton6(arg);
          if (a === null || !a.toLowerCase().startsWith('ff')) fail(2, `invalid IPv6 mcast-group \`${arg}'`);
          daemon.mcastGroup = a;
        } else {
          const a = /^\d{1,3}(\.\d{1,3}){3}$/.test(arg) ? inetAton(arg) : null;
          if (a === null || a >>> 28 !== 0xe) fail(2, `invalid IPv4 mcast-group \`${arg}'`);
          daemon.mcastGroup = ntoa(a);
        }
        break;
      case 'mcast-port': {
        setOption(O['mcast-port']);
        const n = stringToNumber(arg, 1, 65535);
        if (n === -1) fail(2, 'illegal mcast-port specified');
        daemon.mcastPort = n;
        break;
      }
      case 'mcast-ttl': {
        setOption(O['mcast-ttl']);
        const n = stringToNumber(arg, 1, 255);
        if (n === -1) fail(2, 'illegal mcast-ttl specified');
        daemon.mcastTtl = n;
        break;
      }
      case 'sync-maxlen': {
        setOption(O['sync-maxlen']);
        const n = stringToNumber(arg, 1, 65535 - 20 - 8);
        if (n === -1) fail(2, 'illegal sync-maxlen specified');
        daemon.syncMaxlen = n;
        break;
      }
      case 'tun-info':
        setOption(O['tun-info']);
        format.tunInfo = true;
        break;
      case 'tun-type': {
        setOption(O['tun-type']);
        const t = TUN_NAMES.indexOf(arg as TunType);
        if (t < 0) fail(2, 'illegal tunnel type specified');
        dest.tunType = t;
        break;
      }
      case 'tun-port': {
        setOption(O['tun-port']);
        const n = stringToNumber(arg, 1, 65535);
        if (n === -1) fail(2, 'illegal tunnel port specified');
        dest.tunPort = n;
        break;
      }
      case 'tun-nocsum':
        setOption(O['tun-nocsum']);
        break;
      case 'tun-csum':
        setOption(O['tun-csum']);
        dest.tunFlags |= 1;
        break;
      case 'tun-remcsum':
        setOption(O['tun-remcsum']);
        dest.tunFlags |= 2;
        break;
      default:
        // A second command, -h or -v after the command: ipvsadm's switch has no case for them here.
        fail(2, `invalid option \`${popt.badOption()}'`);
    }
  }
  if ('error' in scan) {
    return { kind: 'error', code: 255, stderr: `${popt.badOption()}: ${POPT_ERRORS[scan.error]}\n` };
  }

  if (cmd === 'set') {
    const a = popt.getArg();
    const b = a === null ? null : popt.getArg();
    const c = b === null ? null : popt.getArg();
    if (a === null || b === null || c === null) fail(2, '--set option requires 3 timeout values');
    timeouts.tcp = parseTimeout(a, 0, MAX_TIMEOUT);
    timeouts.tcpfin = parseTimeout(b, 0, MAX_TIMEOUT);
    timeouts.udp = parseTimeout(c, 0, MAX_TIMEOUT);
  }
  const extra = popt.getArg();
  if (extra !== null) fail(2, `unexpected argument ${extra}`);
  if (schedFlagsArg) {
    svc.flags &= ~(SCHED1 | SCHED2 | SCHED3);
    svc.flags |= parseSchedFlags(svc.sched, schedFlagsArg);
  }

  genericOptCheck(cmd, opts);
  if (ctx.json && cmd !== 'list' && cmd !== 'get-laddr') fail(2, `Illegal 'json' option with the '${cmd}' command`);

  if (cmd === 'add-service' || cmd === 'edit-service') {
    if (!svc.fwmark && !svc.port && !(svc.flags & 0x1)) fail(2, 'Zero port specified for non-persistent service');
    if (svc.flags & 0x4 && !svc.fwmark && svc.protocol !== IPPROTO.udp) fail(2, 'One-Packet Scheduling is only for UDP virtual services');
    if (svc.sched === '') svc.sched = DEF_SCHED;
  }
  if (cmd === 'start-daemon' && daemon.mcastIfn === '') daemon.mcastIfn = 'eth0';
  if (cmd === 'add-server' || cmd === 'edit-server') {
    // DR and TUN cannot change the port: the real server answers on the service's port.
    if (!svc.fwmark && (dest.fwd === 'tunnel' || dest.fwd === 'route')) dest.port = svc.port;
    if (dest.af !== svc.af && dest.fwd !== 'tunnel') fail(2, 'Different address family is allowed only for tunneling servers');
    const tunOpts = [O['tun-type'], O['tun-port'], O['tun-nocsum'], O['tun-csum'], O['tun-remcsum']];
    if (tunOpts.some((i) => opts.has(i)) && dest.fwd !== 'tunnel') fail(2, 'Tunnel options conflict with forward method');
    tunnelOptCheck(dest.tunType, opts);
  }
  if (cmd === 'list') {
    const has = (n: OptName) => opts.has(O[n]);
    if (
      ((has('connection') || has('timeout') || has('daemon')) && (has('stats') || has('rate') || has('thresholds'))) ||
      ((has('timeout') || has('daemon')) && has('persistent-conn'))
    )
      fail(2, 'options conflicts in the list command');
  }
  if (cmd === 'restore' && ctx.restoring) tryhelp(program);
  if ((cmd === 'add-laddr' || cmd === 'del-laddr' || cmd === 'get-laddr') && svc.fwmark) fail(2, 'local addresses need a tcp or udp virtual service');
  return { kind: 'command', parsed: { cmd, opts, format, svc, dest, timeouts, daemon, json: !!ctx.json, laddr } };
}

function genericOptCheck(cmd: CmdName, opts: Set<number>): void {
  const row = MATRIX[CMD_NAMES.indexOf(cmd)]!;
  let last = 0;
  let count = 0;
  for (let j = 0; j < OPT_NAMES.length; j++) {
    const m = row[j];
    if (!opts.has(j)) {
      if (m === '+') fail(2, `You need to supply the '${OPT_NAMES[j]}' option for the '${cmd}' command`);
    } else {
      if (m === 'x') fail(2, `Illegal '${OPT_NAMES[j]}' option with the '${cmd}' command`);
      if (m === '1') {
        count++;
        if (count === 1) {
          last = j;
          continue;
        }
        fail(2, `The option '${OPT_NAMES[j]}' conflicts with the '${OPT_NAMES[last]}' option in the '${cmd}' command`);
      }
    }
  }
}

function tunnelOptCheck(tunType: number, opts: Set<number>): void {
  const row = TUN_MATRIX[tunType]!;
  const tname = TUN_NAMES[tunType]!;
  let last = 0;
  let count = 0;
  for (let j = 0; j < TUN_OPTS.length; j++) {
    const k = TUN_OPTS[j]!;
    const m = row[j];
    if (!opts.has(k)) {
      if (m === '+') fail(2, `You need to supply the '${OPT_NAMES[k]}' option for the '${tname}' tunnel type`);
    } else {
      if (m === 'x') fail(2, `Illegal '${OPT_NAMES[k]}' option with the '${tname}' tunnel type`);
      if (m === '1') {
        count++;
        if (count === 1) {
          last = k;
          continue;
        }
        fail(2, `The option '${OPT_NAMES[k]}' conflicts with the '${OPT_NAMES[last]}' option in the '${tname}' tunnel type`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Mapping to protocol requests

/** The protocol key of the parsed virtual service. */
export function serviceKey(svc: SvcSpec): ServiceKey {
  if (svc.fwmark) return svc.af === AF_INET6 ? { type: 'fwmark', fwmark: svc.fwmark, ipv6: true } : { type: 'fwmark', fwmark: svc.fwmark };
  return { type: protoName(svc.protocol) ?? 'tcp', addr: svc.addr, port: svc.port };
}

/** The full service settings ipvsadm would hand the kernel for -A/-E. */
export function serviceConfig(svc: SvcSpec): ServiceConfig {
  return {
    scheduler: svc.sched,
    persistent: (svc.flags & 0x1) !== 0,
    timeout: svc.timeout,
    netmask: svc.af === AF_INET6 ? String(svc.netmask) : ntoa(svc.netmask),
    onePacket: (svc.flags & 0x4) !== 0,
    schedFlags: (svc.flags >> 3) & 7,
    pe: svc.pe,
    ...(svc.proxyProtocol === 'v1' || svc.proxyProtocol === 'v2' ? { proxyProtocol: svc.proxyProtocol } : {}),
  };
}

const TUN_CSUM: readonly TunCsum[] = ['nocsum', 'csum', 'remcsum', 'remcsum'];

/** The full real-server settings ipvsadm would hand the kernel for -a/-e. */
export function destConfig(d: DestSpec): DestConfig {
  return {
    addr: d.addr,
    port: d.port,
    fwd: d.fwd,
    weight: d.weight,
    uThreshold: d.uThreshold,
    lThreshold: d.lThreshold,
    tunType: TUN_NAMES[d.tunType]!,
    tunPort: d.tunPort,
    tunCsum: TUN_CSUM[d.tunFlags & 3]!,
  };
}

/**
 * The protocol request a parsed command sends, or null for commands tsvsadm handles itself
 * (restore reads its own input; listings are built by the lister from `list`/`connections`/...).
 */
export function toRequest(p: Parsed): RequestBody | null {
  const hasSvc = p.opts.has(O['service-address']);
  switch (p.cmd) {
    case 'add-service':
      return { op: 'add-service', service: serviceKey(p.svc), config: serviceConfig(p.svc) };
    case 'edit-service':
      return { op: 'edit-service', service: serviceKey(p.svc), config: serviceConfig(p.svc) };
    case 'delete-service':
      return { op: 'delete-service', service: serviceKey(p.svc) };
    case 'flush':
      return { op: 'flush' };
    case 'add-server':
      return { op: 'add-server', service: serviceKey(p.svc), dest: destConfig(p.dest) };
    case 'edit-server':
      return { op: 'edit-server', service: serviceKey(p.svc), dest: destConfig(p.dest) };
    case 'delete-server':
      return { op: 'delete-server', service: serviceKey(p.svc), dest: { addr: p.dest.addr, port: p.dest.port } };
    case 'zero':
      return hasSvc ? { op: 'zero', service: serviceKey(p.svc) } : { op: 'zero' };
    case 'set':
      return { op: 'set-timeout', timeouts: { ...p.timeouts } };
    case 'start-daemon':
      return { op: 'start-daemon', daemon: { ...p.daemon } };
    case 'stop-daemon':
      return p.opts.has(O.syncid)
        ? { op: 'stop-daemon', state: p.daemon.state, syncid: p.daemon.syncid }
        : { op: 'stop-daemon', state: p.daemon.state };
    case 'list':
      if (p.opts.has(O.connection)) return { op: 'connections' };
      if (hasSvc) return { op: 'list', service: serviceKey(p.svc) };
      if (p.opts.has(O.timeout)) return { op: 'get-timeout' };
      if (p.opts.has(O.daemon)) return { op: 'get-daemon' };
      return { op: 'list' };
    case 'save':
      return { op: 'list' };
    case 'restore':
      return null;
    case 'add-laddr':
      return { op: 'laddr-add', service: serviceKey(p.svc), laddr: { ...p.laddr } };
    case 'del-laddr':
      return { op: 'laddr-del', service: serviceKey(p.svc), laddr: { ...p.laddr } };
    case 'get-laddr':
      return hasSvc ? { op: 'laddr-list', service: serviceKey(p.svc) } : { op: 'laddr-list' };
  }
}

/** Whether option `name` was given. */
export function hasOpt(p: Parsed, name: OptName): boolean {
  return p.opts.has(O[name]);
}
