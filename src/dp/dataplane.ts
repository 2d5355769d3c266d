// One director instance: ports + stack + ipvs, configured from Config and driven by control requests.
import type { Port } from '../io/port.ts';
import type { Config } from '../ctl/config.ts';
import { serviceKey, serviceSettings, destSettings, initialDests } from '../ctl/reload.ts';
import { parseAddressSpec, parseRouteSpec, type SyncDaemonConfig } from '../ctl/config.ts';
import { IpvsError } from '../ctl/errors.ts';
import {
  errorResponse,
  okResponse,
  PROTOCOL_VERSION,
  type Request,
  type Response,
  type ServiceKey as WireServiceKey,
  type ServiceConfig as WireServiceConfig,
  type DestConfig as WireDestConfig,
  type FwdMethod,
  type ServiceEntry,
  type DestEntry,
  type ListResult,
  type ConnEntry,
  type CountersResult,
  type DaemonConfig,
  type SysctlValues,
} from '../ctl/protocol.ts';
import { VERDICT_COUNT, verdictName } from '../packet/parse.ts';
import { DROP_NAMES } from './drops.ts';
import { REASON_NAMES } from '../ipvs/core.ts';
import { PcapWriter } from './pcap.ts';
import { ipToU32, u32ToIp } from '../lib/inet.ts';
import { Director } from './director.ts';
import { Ipvs, type ServiceKey, type ServiceSpec, type DestSpec, type ServiceInfo, type DestInfo } from '../ipvs/service.ts';
import { IpvsPath } from '../ipvs/path.ts';
import { LaddrControl } from '../ipvs/laddr-ctl.ts';
import { SyncDaemons, type SyncRelay } from '../ipvs/sync/daemon.ts';
import { Fwd, SVC_F, IPPROTO_TCP, IPPROTO_UDP } from '../ipvs/types.ts';
import { VrrpHost, type VrrpEvent, type VrrpHostOptions } from '../vrrp/host.ts';
import { resolveVrrp } from '../vrrp/config.ts';

export type LogFn = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

const FWD_FROM_WIRE: Record<FwdMethod, Fwd> = { masq: Fwd.Masq, local: Fwd.Local, tunnel: Fwd.Tunnel, route: Fwd.Route, fullnat: Fwd.FullNat };
const FWD_TO_WIRE: Record<number, FwdMethod> = { [Fwd.Masq]: 'masq', [Fwd.Local]: 'local', [Fwd.Tunnel]: 'tunnel', [Fwd.Route]: 'route', [Fwd.FullNat]: 'fullnat' };

function version(): string {
  return '0.1.0';
}

/** Converts the wire's service key, refusing what tsvsd cannot serve (IPv6, SCTP, fwmark). */
function toKey(k: WireServiceKey, op: string): ServiceKey {
  if (k.type === 'fwmark') throw new IpvsError('EOPNOTSUPP', 'other', `${op}: firewall-mark services are not supported by tsvsd (it has no packet marks)`);
  if (k.type === 'sctp') throw new IpvsError('ENOPROTOOPT', 'other', `${op}: SCTP services are not supported by tsvsd yet`);
  const addr = ipToU32(k.addr);
  if (Number.isNaN(addr)) throw new IpvsError('EOPNOTSUPP', 'other', `${op}: IPv6 services are not supported by tsvsd yet`);
  return { proto: k.type === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP, addr, port: k.port };
}

/** The start-daemon request a configured sync daemon makes. */
export function syncDaemonRequest(d: SyncDaemonConfig): DaemonConfig {
  return { state: d.state, mcastIfn: d.interface, syncid: d.syncid, syncMaxlen: d.maxlen, mcastGroup: d.group ?? '', mcastPort: d.port ?? 0, mcastTtl: d.ttl ?? 0 };
}

function toServiceSpec(k: ServiceKey, c: WireServiceConfig): ServiceSpec {
  let flags = 0;
  if (c.persistent) flags |= SVC_F.PERSISTENT;
  if (c.onePacket) flags |= SVC_F.ONEPACKET;
  flags |= (c.schedFlags & 7) << 3;
  const netmask = ipToU32(c.netmask);
  const proxyProtocol = c.proxyProtocol === 'v1' ? 1 : c.proxyProtocol === 'v2' ? 2 : 0;
  return { ...k, sched: c.scheduler, flags, timeout: c.persistent ? c.timeout : 0, netmask: Number.isNaN(netmask) ? 0xffffffff : netmask, proxyProtocol };
}

function toDestSpec(d: WireDestConfig): DestSpec {
  if (d.fwd === 'tunnel' && d.tunType !== 'ipip') {
    throw new IpvsError('EOPNOTSUPP', 'other', `tunnel type ${d.tunType} is not supported by tsvsd (ipip only)`);
  }
  const addr = ipToU32(d.addr);
  if (Number.isNaN(addr)) throw new IpvsError('EAFNOSUPPORT', 'add-server');
  return { addr, port: d.port, fwd: FWD_FROM_WIRE[d.fwd], weight: d.weight, uThreshold: d.uThreshold, lThreshold: d.lThreshold };
}

function destEntry(d: DestInfo): DestEntry {
  return {
    addr: u32ToIp(d.addr),
    port: d.port,
    fwd: FWD_TO_WIRE[d.fwd] ?? 'route',
    weight: d.weight,
    uThreshold: d.uThreshold,
    lThreshold: d.lThreshold,
    tunType: 'ipip',
    tunPort: 0,
    tunCsum: 'nocsum',
    activeConns: d.activeConns,
    inactConns: d.inactConns,
    persistConns: d.persistConns,
    stats: { ...d.stats },
    rates: { ...d.rates },
  };
}

function serviceEntry(s: ServiceInfo): ServiceEntry {
  return {
    key: { type: s.proto === IPPROTO_TCP ? 'tcp' : 'udp', addr: u32ToIp(s.addr), port: s.port },
    scheduler: s.sched,
    persistent: (s.flags & SVC_F.PERSISTENT) !== 0,
    timeout: s.timeout,
    netmask: u32ToIp(s.netmask),
    onePacket: (s.flags & SVC_F.ONEPACKET) !== 0,
    schedFlags: (s.flags >>> 3) & 7,
    pe: '',
    ...(s.proxyProtocol !== 0 ? { proxyProtocol: s.proxyProtocol === 1 ? 'v1' as const : 'v2' as const } : {}),
    stats: { ...s.stats },
    rates: { ...s.rates },
    dests: s.dests.map(destEntry),
  };
}

/**
 * Everything one director runs: the Director (ports, stack), the ipvs model and its packet path.
 * `handle` applies one control request between bursts; a refused request changes nothing.
 */
export class Dataplane {
  readonly director: Director;
  readonly ipvs: Ipvs;
  readonly path: IpvsPath;
  /** The VRRP instances this director runs (null when none is configured). */
  readonly vrrp: VrrpHost | null = null;
  /** The connection-sync daemons (master, backup). */
  readonly sync: SyncDaemons;
  private readonly ifIndex = new Map<string, number>();
  private lastEst = 0;
  private lastNow = 0;
  /** FullNAT local addresses (--add-laddr). */
  readonly laddrCtl: LaddrControl;

  constructor(
    ports: Port[],
    config: Config,
    private readonly log: LogFn,
    syncRelay: SyncRelay | null = null,
    vrrpEvents: (e: VrrpEvent) => void = () => {},
    vrrpOpts: VrrpHostOptions = {},
  ) {
    ports.forEach((p, i) => this.ifIndex.set(p.ifname, i));
    this.director = new Director(ports);
    if (config.pcap) this.director.pcap = new PcapWriter(config.pcap);
    this.ipvs = new Ipvs({ connCapacity: config.conn_table_size });
    this.ipvs.sysctl.expireNodestConn = config.expire_nodest_conn ? 1 : 0;
    this.ipvs.sysctl.expireQuiescentTemplate = config.expire_quiescent_template ? 1 : 0;
    this.ipvs.sysctl.sloppyTcp = config.sysctl.sloppy_tcp;
    this.ipvs.sysctl.sloppySctp = config.sysctl.sloppy_sctp;
    this.path = new IpvsPath(this.ipvs, this.director, log);
    this.director.ipvs = this.path;
    this.laddrCtl = new LaddrControl(this.ipvs, this.director, (n) => this.ifIndex.get(n));
    this.sync = new SyncDaemons(this.ipvs, this.director, (n) => this.ifIndex.get(n), log, syncRelay);
    Object.assign(this.sync.sysctl, {
      threshold: config.sync_threshold,
      period: config.sync_period,
      refreshPeriod: config.sync_refresh_period,
      retries: config.sync_retries,
      persistMode: config.sync_persist_mode,
    });
    this.ipvs.syncThreshold = config.sync_threshold;
    this.ipvs.syncConnShare = config.sync_conn_share;
    for (const a of config.addresses) {
      const s = parseAddressSpec(a);
      this.director.addAddress(ipToU32(s.addr), s.prefix, this.portOf(s.ifname));
    }
    for (const r of config.routes) {
      const s = parseRouteSpec(r);
      this.addRoute(ipToU32(s.prefix), s.len, ipToU32(s.gateway));
    }
    if (config.gateway) this.addRoute(0, 0, ipToU32(config.gateway));
    const t = config.timeouts;
    if (t.tcp || t.tcpfin || t.udp) this.ipvs.setTimeouts({ tcp: t.tcp ?? 0, tcpfin: t.tcpfin ?? 0, udp: t.udp ?? 0 });
    // Services go through the same requests as tsvsadm and reload use; a refusal stops the start.
    let id = 0;
    for (const s of config.services) {
      const key = serviceKey(s);
      this.mustApply({ v: 1, id: ++id, op: 'add-service', service: key, config: serviceSettings(s) });
      for (const l of s.laddrs) this.mustApply({ v: 1, id: ++id, op: 'laddr-add', service: key, laddr: { addr: l.address, ifname: l.interface ?? '' } });
      for (const r of initialDests(s)) this.mustApply({ v: 1, id: ++id, op: 'add-server', service: key, dest: destSettings(s, r) });
    }
    for (const s of config.snat) this.mustApply({ v: 1, id: ++id, op: 'snat-add', snat: { source: s.source, addr: s.address, ifname: s.interface ?? '' } });
    for (const d of config.sync_daemon) {
      this.mustApply({ v: 1, id: ++id, op: 'start-daemon', daemon: syncDaemonRequest(d) });
      if (d.vrrp_instance) this.sync.follows = d.vrrp_instance;
    }
    if (config.vrrp.instances.length) {
      // A sync daemon that follows an instance (keepalived's lvs_sync_daemon) switches role with it.
      const events = (e: VrrpEvent) => {
        if (e.kind === 'instance' && (e.to === 'MASTER' || e.to === 'BACKUP' || e.to === 'FAULT')) this.sync.vrrpState(e.name, e.to);
        vrrpEvents(e);
      };
      this.vrrp = new VrrpHost(this.director, (n) => this.portOf(n), resolveVrrp(config.vrrp, config), config.vrrp.sync_groups, events, { log, ...vrrpOpts });
    }
  }

  /** Starts what runs on its own once the ports are open: the VRRP instances. */
  start(now: number): void {
    this.lastNow = now;
    this.vrrp?.start(now);
  }

  private portOf(ifname: string): number {
    const i = this.ifIndex.get(ifname);
    if (i === undefined) throw new Error(`interface ${ifname} is not owned by this director`);
    return i;
  }

  /** A static route: the gateway must be on a connected prefix, which gives the port. */
  private addRoute(prefix: number, len: number, gateway: number): void {
    const via = this.director.routes.lookup(gateway);
    if (!via || via.gateway !== 0) throw new Error(`route ${u32ToIp(prefix)}/${len}: gateway ${u32ToIp(gateway)} is not on a connected network`);
    this.director.routes.add(prefix, len, gateway, via.port);
  }

  private mustApply(req: Request): void {
    const r = this.handle(req);
    if (!r.ok) {
      const svc = 'service' in req && req.service && req.service.type !== 'fwmark' ? ` ${req.service.type} ${req.service.addr}:${req.service.port}` : '';
      const dest = 'dest' in req ? ` real server ${req.dest.addr}:${req.dest.port}`
        : req.op === 'start-daemon' ? ` sync_daemon ${req.daemon.state} on ${req.daemon.mcastIfn}` : '';
      throw new Error(`config:${svc}${dest}: ${r.error.message}`);
    }
  }

  /** Timer work: conn expiry, neighbours, the 2-second estimator. */
  tick(now: number): void {
    this.lastNow = now;
    this.vrrp?.tick(now);
    // Before the director's tick, whose flush sends what the sync master queued.
    this.sync.tick(now);
    this.director.tick(now);
    if (now - this.lastEst >= 2000) {
      this.ipvs.estimate();
      this.lastEst = now;
    }
  }

  /** Applies one control request; never throws. */
  handle(req: Request): Response {
    try {
      return this.apply(req);
    } catch (e) {
      if (e instanceof IpvsError) {
        return e.op === 'other' ? errorResponse(req.id, req.op, e.code, e.message) : errorResponse(req.id, req.op, e.code);
      }
      return errorResponse(req.id, req.op, 'EINVAL', (e as Error).message);
    }
  }

  private apply(req: Request): Response {
    switch (req.op) {
      case 'hello':
        return okResponse(req.id, { server: 'tsvsd', version: version(), protocol: PROTOCOL_VERSION });
      case 'add-service': {
        const k = toKey(req.service, req.op);
        this.ipvs.addService(toServiceSpec(k, req.config));
        return okResponse(req.id, null);
      }
      case 'edit-service': {
        const k = toKey(req.service, req.op);
        this.ipvs.editService(toServiceSpec(k, req.config));
        return okResponse(req.id, null);
      }
      case 'delete-service':
        this.ipvs.delService(toKey(req.service, req.op));
        return okResponse(req.id, null);
      case 'flush':
        this.ipvs.flush();
        return okResponse(req.id, null);
      case 'add-server':
        this.ipvs.addDest(toKey(req.service, req.op), toDestSpec(req.dest));
        return okResponse(req.id, null);
      case 'edit-server':
        this.ipvs.editDest(toKey(req.service, req.op), toDestSpec(req.dest));
        return okResponse(req.id, null);
      case 'delete-server': {
        const addr = ipToU32(req.dest.addr);
        this.ipvs.delDest(toKey(req.service, req.op), addr, req.dest.port);
        return okResponse(req.id, null);
      }
      case 'list': {
        const services = req.service ? [this.ipvs.listService(toKey(req.service, req.op))] : this.ipvs.listServices();
        const result: ListResult = { version: '1.2.1', size: 4096, services: services.map(serviceEntry), totals: { ...this.ipvs.totals().stats } };
        return okResponse(req.id, result);
      }
      case 'zero':
        this.ipvs.zero(req.service ? toKey(req.service, req.op) : undefined);
        return okResponse(req.id, null);
      case 'set-timeout':
        this.ipvs.setTimeouts(req.timeouts);
        return okResponse(req.id, null);
      case 'get-timeout':
        return okResponse(req.id, this.ipvs.getTimeouts());
      case 'connections': {
        const conns: ConnEntry[] = this.ipvs.listConns().map((c) => ({
          proto: c.proto,
          caddr: u32ToIp(c.caddr),
          cport: c.cport,
          vaddr: u32ToIp(c.vaddr),
          vport: c.vport,
          daddr: u32ToIp(c.daddr),
          dport: c.dport,
          state: c.state,
          expire: Math.max(0, Math.round(c.expiresMs / 1000)),
        }));
        return okResponse(req.id, { conns });
      }
      case 'start-daemon':
        this.sync.start(req.daemon);
        return okResponse(req.id, null);
      case 'stop-daemon':
        this.sync.stop(req.state);
        return okResponse(req.id, null);
      case 'get-daemon':
        return okResponse(req.id, { daemons: this.sync.list() });
      case 'address-list':
        return okResponse(req.id, {
          addresses: this.director.addresses().map((a) => ({ addr: u32ToIp(a.addr), plen: a.prefix, ifname: this.director.ports[a.port]!.ifname })),
        });
      case 'address-add': {
        const addr = ipToU32(req.address.addr);
        if (Number.isNaN(addr)) throw new IpvsError('EOPNOTSUPP', 'address');
        const port = this.ifIndex.get(req.address.ifname);
        if (port === undefined) throw new IpvsError('EINVAL', 'address', `interface ${req.address.ifname} is not owned by this director`);
        if (req.address.plen > 32) throw new IpvsError('EINVAL', 'address', `prefix length ${req.address.plen} is out of range for IPv4`);
        if (this.director.isLocal(addr)) throw new IpvsError('EEXIST', 'address', `address ${req.address.addr} already exists`);
        const owner = this.vrrp?.instanceOwning(addr);
        if (owner) throw new IpvsError('EINVAL', 'other', `address ${req.address.addr} belongs to VRRP instance ${owner}: it is the director's only while that instance is MASTER`);
        this.director.addAddress(addr, req.address.plen, port);
        this.log('info', 'address added', { addr: req.address.addr, plen: req.address.plen, ifname: req.address.ifname });
        return okResponse(req.id, null);
      }
      case 'laddr-add':
      case 'laddr-del': {
        const svc = this.ipvs.getService(toKey(req.service, req.op));
        if (svc === undefined) throw new IpvsError('ESRCH', 'other', 'No such service');
        const addr = ipToU32(req.laddr.addr);
        if (Number.isNaN(addr)) throw new IpvsError('EOPNOTSUPP', 'other', 'IPv6 local addresses are not supported by tsvsd yet');
        if (req.op === 'laddr-add') this.laddrCtl.add(svc, addr, req.laddr.ifname);
        else this.laddrCtl.del(svc, addr);
        this.log('info', req.op === 'laddr-add' ? 'local address added' : 'local address removed', { service: `${req.service.type === 'fwmark' ? 'fwmark' : `${req.service.addr}:${req.service.port}`}`, laddr: req.laddr.addr });
        return okResponse(req.id, null);
      }
      case 'laddr-list': {
        const svcs = req.service ? [this.ipvs.listService(toKey(req.service, req.op))] : this.ipvs.listServices();
        return okResponse(req.id, {
          services: svcs.map((s) => {
            const svc = this.ipvs.getService(s)!;
            return { key: serviceEntry(s).key, laddrs: this.laddrCtl.list(svc) };
          }),
        });
      }
      case 'snat-add': {
        const [pfx, len] = req.snat.source.split('/');
        const prefix = ipToU32(pfx!);
        const addr = ipToU32(req.snat.addr);
        if (Number.isNaN(prefix) || Number.isNaN(addr)) throw new IpvsError('EINVAL', 'other', 'SNAT source and address must be IPv4');
        this.laddrCtl.addSnat(this.path.snat.rules, prefix, Number(len), addr, req.snat.ifname);
        this.log('info', 'snat rule added', { ...req.snat });
        return okResponse(req.id, null);
      }
      case 'snat-list': {
        const s = this.path.snat;
        return okResponse(req.id, {
          rules: s.rules.map((r) => ({
            source: `${u32ToIp(r.prefix)}/${r.len}`,
            addr: u32ToIp(r.lip.addr),
            ifname: r.lip.ifname,
            conns: r.lip.conns,
            available: r.lip.available,
          })),
          created: s.created,
          exhausted: s.exhausted,
        });
      }
      case 'counters':
        return okResponse(req.id, this.counters());
      case 'get-sysctl':
        return okResponse(req.id, this.sysctls());
      case 'set-sysctl': {
        const s = req.sysctl;
        if (s.sloppy_tcp !== undefined) this.ipvs.sysctl.sloppyTcp = s.sloppy_tcp;
        if (s.sloppy_sctp !== undefined) this.ipvs.sysctl.sloppySctp = s.sloppy_sctp;
        if (s.sloppy_tcp !== undefined || s.sloppy_sctp !== undefined) this.log('info', 'sysctl set', { ...s });
        return okResponse(req.id, this.sysctls());
      }
      case 'vrrp':
        return okResponse(req.id, this.vrrp ? this.vrrp.snapshot(this.lastNow) : { instances: [], groups: [], unmatched: {} });
      case 'trace':
      case 'reload':
      case 'health':
      case 'director-drain':
      case 'director-undrain':
      case 'announce':
        throw new IpvsError('EINVAL', 'other', `${req.op} is served by tsvsd's main thread, not the data plane`);
      case 'address-del': {
        const addr = ipToU32(req.address.addr);
        const owner = this.vrrp?.instanceOwning(addr);
        if (owner) throw new IpvsError('EINVAL', 'other', `address ${req.address.addr} belongs to VRRP instance ${owner}: it goes when the instance leaves MASTER`);
        if (!this.director.delAddress(addr)) throw new IpvsError('ENOENT', 'address', `address ${req.address.addr} does not exist`);
        this.log('info', 'address removed', { addr: req.address.addr });
        return okResponse(req.id, null);
      }
    }
    return errorResponse(0, 'other', 'EINVAL', 'unknown operation');
  }

  private sysctls(): SysctlValues {
    return { sloppy_tcp: this.ipvs.sysctl.sloppyTcp, sloppy_sctp: this.ipvs.sysctl.sloppySctp };
  }

  /** The packet path's counters by name (slow path). */
  counters(): CountersResult {
    const c = this.director.counters;
    const named = (names: readonly string[], a: Float64Array) => Object.fromEntries(names.map((n, i) => [n, a[i] ?? 0]));
    const parse: Record<string, number> = {};
    for (let i = 0; i < VERDICT_COUNT; i++) parse[verdictName(i)] = c.parse[i]!;
    const neigh = this.director.neigh.drops;
    const drops = named(DROP_NAMES, c.drops);
    drops.neighbour = (drops.neighbour ?? 0) + neigh[0]! + neigh[1]! + neigh[2]! + neigh[3]!;
    const ct = this.ipvs.conns;
    return {
      rxFrames: c.rxFrames[0]!,
      txFrames: c.txFrames[0]!,
      parse,
      drops,
      ipvs: named(REASON_NAMES, this.ipvs.reasons),
      conns: { count: ct.count, capacity: ct.capacity, overflow: ct.overflow, earlyDrop: ct.earlyDrop, lportExhausted: this.ipvs.laddrs.exhausted },
      arpReplies: c.arpReplies[0]!,
      icmpEchoReplies: c.icmpEchoReplies[0]!,
      sync: this.sync.counters(),
      fullnat: {
        proxyHeaders: this.path.seqAdj.inserted,
        proxyNoRoom: this.path.seqAdj.noRoom,
        snatCreated: this.path.snat.created,
        snatExhausted: this.path.snat.exhausted,
      },
      ports: this.director.ports.map((p) => ({ ifname: p.ifname, kind: p.kind, ...p.stats() })),
    };
  }

  /** Stops: a VRRP master says priority 0 and releases its addresses, then the capture closes. */
  close(now = this.lastNow): void {
    this.vrrp?.stop(now);
    this.director.pcap?.close();
  }
}
