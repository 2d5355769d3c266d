// tsvsd's command line: flags merged over the YAML config file, validated as one Config.
import { parseArgs } from 'node:util';
import { readFileSync, existsSync } from 'node:fs';
import { ConfigError, DEFAULT_SOCKET, validateConfig, configWhere, type Config } from '../ctl/config.ts';
import { checkVrrp } from '../vrrp/config.ts';
import { readConfigFile } from '../ctl/reload.ts';

export const TSVSD_USAGE = `Usage: tsvsd [options]

The tsvs director: owns interfaces and forwards traffic for virtual services (NAT, DR, TUN).

  --interface IFNAME        an interface the director owns (repeatable)
  --io KIND                 port type: afpacket (default), tap, macvtap
  --address ADDR/PFX@IF     a director address, VIP or DIP (repeatable); prefixes give connected routes
  --route PREFIX=GATEWAY    a static route (repeatable)
  --gateway GATEWAY         the default route
  --socket PATH             control socket (default ${DEFAULT_SOCKET}, or env TSVS_SOCKET)
  --config FILE             YAML configuration, or the LVS part of a keepalived.conf
                            (flags given here are added to it; SIGHUP or tsvsadm --reload re-reads it);
                            VRRP instances (vrrp: or vrrp_instance) and sync daemons come from it too
  --pcap FILE               write every frame received and sent to FILE (pcap)
  --promiscuous             put the interfaces in promiscuous mode
  --kernel-rx drop|pass     the kernel's own stack and frames arriving on the interfaces: drop
                            (default; after tsvsd has seen them) or pass (interfaces with kernel addresses)
  --busy-poll               the data-plane thread never sleeps in poll(): lower latency, one core busy
  --fastpath auto|tc|off    established connections forwarded by a kernel (tcx) program: auto (where the
                            kernel allows), tc (required), off (default for now; docs/fastpath.md)
  --conn-table-size N       connection table capacity (default 1048576)
  --admin ADDR:PORT|unix:PATH  admin HTTP API, metrics (/metrics) and dashboard; loopback or a unix socket
                            unless --admin-token is given
  --admin-token TOKEN       bearer token the admin API requires (or env TSVS_ADMIN_TOKEN)
  --dashboard               serve the web dashboard at / of the admin API
  --log-level LEVEL         trace, debug, info (default), warn, error
  -h, --help                this text
  -v, --version             the version
`;

export interface TsvsdOptions {
  config: Config;
  socket: string;
  logLevel: string;
  /** Bearer token of the admin API (--admin-token or TSVS_ADMIN_TOKEN). */
  adminToken?: string;
  help: boolean;
  version: boolean;
}

/** Parses tsvsd's argv; throws ConfigError (one clear message) on bad input. */
export function parseTsvsdArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): TsvsdOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        interface: { type: 'string', multiple: true },
        io: { type: 'string' },
        address: { type: 'string', multiple: true },
        route: { type: 'string', multiple: true },
        gateway: { type: 'string' },
        socket: { type: 'string' },
        config: { type: 'string' },
        pcap: { type: 'string' },
        promiscuous: { type: 'boolean' },
        'kernel-rx': { type: 'string' },
        'busy-poll': { type: 'boolean' },
        fastpath: { type: 'string' },
        'conn-table-size': { type: 'string' },
        admin: { type: 'string' },
        'admin-token': { type: 'string' },
        dashboard: { type: 'boolean' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    }));
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  if (values.help || values.version) {
    return { config: validateConfig({}), socket: DEFAULT_SOCKET, logLevel: 'info', help: !!values.help, version: !!values.version };
  }
  const fromFile = values.config ? readConfigFile(values.config) : null;
  const base: Record<string, unknown> = fromFile ? { ...fromFile } : {};
  const merged: Record<string, unknown> = { ...base };
  const add = (key: string, more: string[] | undefined) => {
    if (more?.length) merged[key] = [...((base[key] as string[] | undefined) ?? []), ...more];
  };
  add('interfaces', values.interface);
  add('addresses', values.address);
  add('routes', values.route);
  if (values.io) merged.io = values.io;
  if (values.gateway) merged.gateway = values.gateway;
  if (values.pcap) merged.pcap = values.pcap;
  if (values.promiscuous) merged.promiscuous = true;
  if (values['kernel-rx'] !== undefined) merged.kernel_rx = values['kernel-rx'];
  if (values['busy-poll']) merged.busy_poll = true;
  if (values.fastpath !== undefined) merged.fastpath = values.fastpath;
  if (values.admin) merged.admin = values.admin;
  if (values.dashboard) merged.dashboard = true;
  if (values['conn-table-size'] !== undefined) {
    const n = Number(values['conn-table-size']);
    if (!Number.isInteger(n)) throw new ConfigError(`--conn-table-size: not an integer: ${values['conn-table-size']}`);
    merged.conn_table_size = n;
  }
  const config = validateConfig(merged, values.config ?? 'arguments');
  // Every address must sit on an interface the director owns.
  for (const a of config.addresses) {
    const ifname = a.split('@')[1]!;
    if (!config.interfaces.includes(ifname)) throw new ConfigError(`--address ${a}: interface ${ifname} is not one of --interface`);
  }
  if (config.interfaces.length === 0) throw new ConfigError('no interface: give at least one --interface IFNAME');
  // VRRP instances against the whole director (interfaces and addresses may come from flags).
  const vrrpProblems = checkVrrp(config.vrrp, {
    interfaces: config.interfaces,
    addresses: config.addresses,
    services: config.services.map((s) => `${s.protocol} ${s.address}:${s.port}`),
  }, configWhere(fromFile ?? {}, values.config ?? 'arguments'));
  if (vrrpProblems.length) throw new ConfigError(vrrpProblems.join('\n'));
  const socket = values.socket ?? config.socket ?? env.TSVS_SOCKET ?? DEFAULT_SOCKET;
  const logLevel = values['log-level'] ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(logLevel)) throw new ConfigError(`--log-level: unknown level ${logLevel}`);
  const adminToken = values['admin-token'] ?? (env.TSVS_ADMIN_TOKEN || undefined);
  if (config.dashboard && !config.admin) throw new ConfigError('--dashboard needs --admin ADDR:PORT (the dashboard is served by the admin API)');
  return { config, socket, logLevel, ...(adminToken ? { adminToken } : {}), help: false, version: false };
}

const CAP_NET_ADMIN = 12n;
const CAP_NET_RAW = 13n;

/**
 * The capabilities tsvsd needs to own interfaces (AF_PACKET sockets, link and address changes) that
 * the effective set in `status` (the text of /proc/PID/status) lacks, by name.
 */
export function missingNetCapabilities(status: string): string[] {
  const m = /^CapEff:\s*([0-9a-f]+)$/im.exec(status);
  const eff = m ? BigInt(`0x${m[1]}`) : 0n;
  const missing: string[] = [];
  if (((eff >> CAP_NET_RAW) & 1n) === 0n) missing.push('CAP_NET_RAW');
  if (((eff >> CAP_NET_ADMIN) & 1n) === 0n) missing.push('CAP_NET_ADMIN');
  return missing;
}

/**
 * Checks what can be checked before any port opens: privileges and each interface's presence and
 * state, in the current network namespace. Returns one clear line per problem (empty when fine).
 */
export function preflight(config: Config): string[] {
  const problems: string[] = [];
  // What the kernel checks is the effective capability set, not the uid: root without CAP_NET_RAW
  // (a container, setpriv, systemd's CapabilityBoundingSet) is refused as well, and says so here.
  if (missingNetCapabilities(readFileSync('/proc/self/status', 'utf8')).length > 0) {
    problems.push('tsvsd needs root (CAP_NET_RAW and CAP_NET_ADMIN) to own interfaces');
  }
  for (const ifname of config.interfaces) {
    const dir = `/sys/class/net/${ifname}`;
    if (!existsSync(dir)) {
      problems.push(`interface ${ifname} does not exist in this network namespace`);
      continue;
    }
    const flags = Number(readFileSync(`${dir}/flags`, 'utf8').trim());
    if ((flags & 1) === 0) problems.push(`interface ${ifname} is down (ip link set ${ifname} up)`);
  }
  return problems;
}
