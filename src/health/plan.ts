// Turns the typed configuration (YAML or keepalived.conf) into the monitor's pool plans: resolved addresses, ports, times in ms.
import type { CheckConfig, Config, RealServerConfig, ServiceConfig } from '../ctl/config.ts';
import type { DestConfig, FwdMethod, ServiceKey } from '../ctl/protocol.ts';
import { parseStatusRanges, type CheckSpec } from './checks.ts';
import type { CheckPlan, PoolPlan, ServerPlan } from './monitor.ts';

const FWD: Record<string, FwdMethod> = { nat: 'masq', dr: 'route', tun: 'tunnel' };

/** The port the director forwards to: DR and TUN cannot map ports (as ipvsadm and the data plane). */
function destPort(svc: ServiceConfig, method: string, port: number | undefined): number {
  return method === 'nat' ? (port ?? svc.port) : svc.port;
}

function dest(svc: ServiceConfig, address: string, method: string, port: number | undefined, weight: number, u = 0, l = 0): DestConfig {
  return { addr: address, port: destPort(svc, method, port), fwd: FWD[method]!, weight, uThreshold: u, lThreshold: l, tunType: 'ipip', tunPort: 0, tunCsum: 'nocsum' };
}

function checkPlan(c: CheckConfig, svc: ServiceConfig, rs: RealServerConfig, d: DestConfig, health: Config['health']): CheckPlan {
  const spec: CheckSpec = {
    type: c.type,
    host: c.address ?? rs.address,
    // The real server's own port even for DR/TUN (where the director forwards to the service's port,
    // which is also the port the server listens on) unless the check names one.
    port: c.port ?? d.port,
    timeoutMs: Math.round(c.timeout * 1000),
  };
  const source = c.source ?? health.source;
  if (source) spec.source = source;
  if (health.namespace) spec.netns = health.namespace;
  if (c.type === 'http' || c.type === 'https') {
    spec.path = c.path ?? '/';
    if (c.status !== undefined) spec.status = parseStatusRanges(c.status);
    if (c.digest) spec.digest = c.digest.toLowerCase();
    if (c.virtualhost) spec.virtualhost = c.virtualhost;
    if (c.type === 'https') spec.verifyTls = c.verify_tls;
  }
  if (c.regex) spec.regex = c.regex;
  if (c.type === 'udp') {
    spec.payloadHex = c.payload_hex ?? (c.payload !== undefined ? Buffer.from(c.payload, 'utf8').toString('hex') : undefined);
    if (spec.payloadHex === undefined) delete spec.payloadHex;
    spec.requireReply = c.require_reply;
    if (c.reply_hex) spec.replyHex = c.reply_hex;
  }
  if (c.type === 'misc') {
    spec.command = c.command!;
    spec.dynamic = c.dynamic;
  }
  const retry = c.delay_before_retry ?? (c.type === 'http' || c.type === 'https' ? 3 : 1);
  return {
    spec,
    intervalMs: Math.round(c.interval * 1000),
    retryDelayMs: Math.round(retry * 1000),
    rise: c.rise,
    fall: c.fall,
    warmupMs: Math.round(c.warmup * 1000),
    alpha: c.alpha ?? svc.alpha,
  };
}

/** Human name of a service, as in logs: "TCP 198.18.1.100:80". */
export function serviceName(svc: ServiceConfig): string {
  return `${svc.protocol.toUpperCase()} ${svc.address}:${svc.port}`;
}

/**
 * One pool plan per service that has something for the monitor to do (a checked real server, a
 * sorry server or quorum commands). Unchecked servers still count towards quorum as always up.
 */
export function planHealth(config: Config): PoolPlan[] {
  const out: PoolPlan[] = [];
  for (const svc of config.services) {
    const hasWork = svc.realservers.some((r) => r.check.length > 0) || svc.sorry_server || svc.quorum_up || svc.quorum_down;
    if (!hasWork) continue;
    const servers: ServerPlan[] = svc.realservers.map((rs) => {
      const d = dest(svc, rs.address, rs.method, rs.port, rs.weight, rs.upper_threshold, rs.lower_threshold);
      const plan: ServerPlan = {
        dest: d,
        checks: rs.check.map((c) => checkPlan(c, svc, rs, d, config.health)),
        inhibit: rs.inhibit_on_failure || rs.check.some((c) => c.inhibit_on_failure),
      };
      if (rs.notify_up) plan.notifyUp = rs.notify_up;
      if (rs.notify_down) plan.notifyDown = rs.notify_down;
      return plan;
    });
    const service: ServiceKey = { type: svc.protocol, addr: svc.address, port: svc.port };
    const pool: PoolPlan = {
      name: serviceName(svc),
      service,
      servers,
      sorryInhibit: svc.sorry_server_inhibit,
      quorum: svc.quorum,
      hysteresis: svc.hysteresis,
      omega: svc.omega,
    };
    if (svc.sorry_server) {
      const s = svc.sorry_server;
      // The sorry server defaults to the method of the service's real servers (keepalived: the
      // virtual server's lvs_method), DR when there are none.
      const m = s.method ?? svc.realservers[0]?.method ?? 'dr';
      pool.sorry = dest(svc, s.address, m, s.port, s.weight);
    }
    if (svc.quorum_up) pool.quorumUp = svc.quorum_up;
    if (svc.quorum_down) pool.quorumDown = svc.quorum_down;
    out.push(pool);
  }
  return out;
}
