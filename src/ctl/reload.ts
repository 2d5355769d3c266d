// Configuration reload: the difference between two validated configs as control requests, applied in order.
import { readFileSync } from 'node:fs';
import type { Config, ServiceConfig as YamlService, RealServerConfig } from './config.ts';
import { ConfigError, parseConfigText } from './config.ts';
import { looksLikeKeepalived, parseKeepalivedText } from './keepalived.ts';
import type { RequestBody, ServiceKey, ServiceConfig, DestConfig, FwdMethod } from './protocol.ts';
import { Ipvs } from '../ipvs/service.ts';
import { ipToU32 } from '../lib/inet.ts';
import { IPPROTO_TCP, IPPROTO_UDP, Fwd } from '../ipvs/types.ts';
import { IpvsError } from './errors.ts';

/**
 * Fields a reload cannot change (they shape the ports, the table or the socket): a changed value is
 * reported and needs a restart. Everything else (addresses, timeouts, services, real servers, checks)
 * is applied by difference; established connections stay where they are.
 */
export const RESTART_ONLY = [
  'interfaces',
  'vrrp',
  'io',
  'socket',
  'promiscuous',
  'kernel_rx',
  'busy_poll',
  'fastpath',
  'conn_table_size',
  'routes',
  'gateway',
  'pcap',
  'expire_nodest_conn',
  'expire_quiescent_template',
  'admin',
  'dashboard',
  // Live changes go through --start-daemon / --stop-daemon.
  'sync_daemon',
  'sync_threshold',
  'sync_period',
  'sync_refresh_period',
  'sync_retries',
  'sync_persist_mode',
  'sync_conn_share',
  'bgp',
  // SNAT rules own addresses and port pools that live conns hold.
  'snat',
] as ReadonlyArray<keyof Config>;

/** Reads a config file, YAML or keepalived.conf (recognised by name or content). */
export function readConfigFile(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read: ${(e as Error).message}`);
  }
  return looksLikeKeepalived(file, text) ? parseKeepalivedText(text, file).config : parseConfigText(text, file);
}

const FWD: Record<string, FwdMethod> = { nat: 'masq', dr: 'route', tun: 'tunnel', fullnat: 'fullnat' };
const FLAG_BITS: Record<string, number> = { 'flag-1': 1, 'flag-2': 2, 'flag-3': 4, 'sh-fallback': 1, 'sh-port': 2, 'mh-fallback': 1, 'mh-port': 2 };

/** The control protocol's key of a configured service. */
export function serviceKey(s: YamlService): ServiceKey {
  return { type: s.protocol, addr: s.address, port: s.port };
}

/** The control protocol's settings of a configured service (ipvsadm -A/-E). */
export function serviceSettings(s: YamlService): ServiceConfig {
  let schedFlags = 0;
  for (const f of s.sched_flags) schedFlags |= FLAG_BITS[f]!;
  return {
    scheduler: s.scheduler,
    persistent: s.persistent !== undefined,
    timeout: s.persistent ?? 0,
    netmask: s.netmask ?? '255.255.255.255',
    onePacket: s.ops,
    schedFlags,
    pe: '',
    ...(s.proxy_protocol ? { proxyProtocol: s.proxy_protocol } : {}),
  };
}

/** The control protocol's settings of a configured real server (ipvsadm -a/-e); DR/TUN keep the service port. */
export function destSettings(s: YamlService, r: RealServerConfig): DestConfig {
  const fwd = FWD[r.method]!;
  return {
    addr: r.address,
    port: fwd === 'masq' || fwd === 'fullnat' ? (r.port ?? s.port) : s.port,
    fwd,
    weight: r.weight,
    uThreshold: r.upper_threshold,
    lThreshold: r.lower_threshold,
    tunType: 'ipip',
    tunPort: 0,
    tunCsum: 'nocsum',
  };
}

/** The laddr-add requests of a configured service's FullNAT local addresses. */
export function laddrRequests(s: YamlService): RequestBody[] {
  return s.laddrs.map((l) => ({ op: 'laddr-add' as const, service: serviceKey(s), laddr: { addr: l.address, ifname: l.interface ?? '' } }));
}

/** Real servers the director should hold at start: all of them, except checked ones of alpha services. */
export function initialDests(s: YamlService): RealServerConfig[] {
  const alpha = (s as YamlService & { alpha?: boolean }).alpha === true;
  return s.realservers.filter((r) => !(alpha && ((r as RealServerConfig & { check?: unknown[] }).check?.length ?? 0) > 0));
}

function svcId(s: YamlService): string {
  return `${s.protocol}:${s.address}:${s.port}`;
}

/**
 * Checks that the services of `config` can all be created (schedulers exist, thresholds are sane,
 * addresses are usable) by building them in a scratch ipvs model; throws the first refusal.
 */
export function checkServices(config: Config): void {
  const ipvs = new Ipvs({ connCapacity: 16, statsSlots: 1 + config.services.length * 64 + 64 });
  for (const s of config.services) {
    const key = { proto: s.protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP, addr: ipToU32(s.address), port: s.port } as const;
    const set = serviceSettings(s);
    try {
      ipvs.addService({ ...key, sched: set.scheduler, flags: (set.persistent ? 1 : 0) | (set.onePacket ? 4 : 0) | (set.schedFlags << 3), timeout: set.timeout, netmask: ipToU32(set.netmask) });
      for (const r of s.realservers) {
        const d = destSettings(s, r);
        const fwd = d.fwd === 'masq' ? Fwd.Masq : d.fwd === 'route' ? Fwd.Route : d.fwd === 'fullnat' ? Fwd.FullNat : Fwd.Tunnel;
        ipvs.addDest(key, { addr: ipToU32(d.addr), port: d.port, fwd, weight: d.weight, uThreshold: d.uThreshold, lThreshold: d.lThreshold });
      }
    } catch (e) {
      if (e instanceof IpvsError) throw new ConfigError(`service ${svcId(s)}: ${e.message}`);
      throw e;
    }
  }
}

export interface ReloadPlan {
  requests: RequestBody[];
  /** For each request, the requests that undo it (applied in reverse order when a later one fails). */
  undo: RequestBody[][];
  /** Restart-only fields whose value changed (not applied). */
  restartNeeded: string[];
  summary: { servicesAdded: number; servicesRemoved: number; servicesChanged: number; serversAdded: number; serversRemoved: number; serversChanged: number; addresses: number };
}

/** The requests that turn a director configured by `old` into one configured by `next`. */
export function planReload(old: Config, next: Config, liveTimeouts?: { tcp: number; tcpfin: number; udp: number }): ReloadPlan {
  const requests: RequestBody[] = [];
  const undo: RequestBody[][] = [];
  const step = (r: RequestBody, ...u: RequestBody[]) => {
    requests.push(r);
    undo.push(u);
  };
  const summary = { servicesAdded: 0, servicesRemoved: 0, servicesChanged: 0, serversAdded: 0, serversRemoved: 0, serversChanged: 0, addresses: 0 };
  const restartNeeded = RESTART_ONLY.filter((k) => JSON.stringify(old[k]) !== JSON.stringify(next[k])).map(String);

  const addr = (a: string) => {
    const [cidr, ifname] = a.split('@');
    const [ip, plen] = cidr!.split('/');
    return { addr: ip!, plen: Number(plen), ifname: ifname! };
  };
  for (const a of old.addresses) if (!next.addresses.includes(a)) {
    step({ op: 'address-del', address: addr(a) }, { op: 'address-add', address: addr(a) });
    summary.addresses++;
  }
  for (const a of next.addresses) if (!old.addresses.includes(a)) {
    step({ op: 'address-add', address: addr(a) }, { op: 'address-del', address: addr(a) });
    summary.addresses++;
  }
  if (JSON.stringify(old.timeouts) !== JSON.stringify(next.timeouts)) {
    const was = liveTimeouts ?? { tcp: old.timeouts.tcp ?? 0, tcpfin: old.timeouts.tcpfin ?? 0, udp: old.timeouts.udp ?? 0 };
    step({ op: 'set-timeout', timeouts: { tcp: next.timeouts.tcp ?? 0, tcpfin: next.timeouts.tcpfin ?? 0, udp: next.timeouts.udp ?? 0 } }, { op: 'set-timeout', timeouts: was });
  }
  if (JSON.stringify(old.sysctl) !== JSON.stringify(next.sysctl)) {
    step({ op: 'set-sysctl', sysctl: { ...next.sysctl } }, { op: 'set-sysctl', sysctl: { ...old.sysctl } });
  }

  const before = new Map(old.services.map((s) => [svcId(s), s]));
  const after = new Map(next.services.map((s) => [svcId(s), s]));
  for (const [id, s] of before) if (!after.has(id)) {
    const key = serviceKey(s);
    step(
      { op: 'delete-service', service: key },
      { op: 'add-service', service: key, config: serviceSettings(s) },
      ...laddrRequests(s),
      ...initialDests(s).map((r): RequestBody => ({ op: 'add-server', service: key, dest: destSettings(s, r) })),
    );
    summary.servicesRemoved++;
  }
  for (const [id, s] of after) {
    const prev = before.get(id);
    const key = serviceKey(s);
    if (!prev) {
      step({ op: 'add-service', service: key, config: serviceSettings(s) }, { op: 'delete-service', service: key });
      for (const l of laddrRequests(s)) step(l);
      for (const r of initialDests(s)) step({ op: 'add-server', service: key, dest: destSettings(s, r) });
      summary.servicesAdded++;
      continue;
    }
    if (JSON.stringify(serviceSettings(prev)) !== JSON.stringify(serviceSettings(s))) {
      step({ op: 'edit-service', service: key, config: serviceSettings(s) }, { op: 'edit-service', service: key, config: serviceSettings(prev) });
      summary.servicesChanged++;
    }
    // Local addresses before real servers: a new FullNAT real server needs them from its first conn.
    const lid = (r: RequestBody) => (r.op === 'laddr-add' ? `${r.laddr.addr}@${r.laddr.ifname}` : '');
    const lWas = new Map(laddrRequests(prev).map((r) => [lid(r), r]));
    const lNow = new Map(laddrRequests(s).map((r) => [lid(r), r]));
    for (const [k, r] of lNow) if (!lWas.has(k)) step(r, { ...(r as Extract<RequestBody, { op: 'laddr-add' }>), op: 'laddr-del' });
    for (const [k, r] of lWas) if (!lNow.has(k)) step({ ...(r as Extract<RequestBody, { op: 'laddr-add' }>), op: 'laddr-del' }, r);
    const destId = (d: DestConfig) => `${d.addr}:${d.port}`;
    const was = new Map(prev.realservers.map((r) => [destId(destSettings(prev, r)), destSettings(prev, r)]));
    const now = new Map(s.realservers.map((r) => [destId(destSettings(s, r)), destSettings(s, r)]));
    for (const [did, d] of was) if (!now.has(did)) {
      step({ op: 'delete-server', service: key, dest: { addr: d.addr, port: d.port } }, { op: 'add-server', service: key, dest: d });
      summary.serversRemoved++;
    }
    for (const [did, d] of now) {
      const p = was.get(did);
      if (!p) {
        step({ op: 'add-server', service: key, dest: d }, { op: 'delete-server', service: key, dest: { addr: d.addr, port: d.port } });
        summary.serversAdded++;
      } else if (JSON.stringify(p) !== JSON.stringify(d)) {
        step({ op: 'edit-server', service: key, dest: d }, { op: 'edit-server', service: key, dest: p });
        summary.serversChanged++;
      }
    }
  }
  return { requests, undo, restartNeeded, summary };
}

/**
 * Refusals that do not mean the new configuration is wrong: a real server the health checker took
 * out is already gone (delete) or not there to edit (its new settings apply when it comes back).
 */
export function benignReloadError(req: RequestBody, code: string): boolean {
  return code === 'ENOENT' && (req.op === 'delete-server' || req.op === 'edit-server');
}
