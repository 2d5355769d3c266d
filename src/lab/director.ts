// Starts tsvsd in a lab's director namespace and defines the lab's virtual services through its socket.
import { tsvsdArgs, LAB, type Lab } from './topology.ts';
import { ControlClient } from '../ctl/client.ts';
import type { FwdMethod, ServiceKey } from '../ctl/protocol.ts';
import type { ClientRun } from './client.ts';

import { ROOT, moduleCommand } from '../root.ts';

export interface LabServiceOptions {
  /** Scheduler of both services (default rr, so a demo's shares are easy to read). */
  scheduler?: string;
  /** Virtual ports (default: the real servers' HTTP and UDP ports; NAT maps `tcpPort` to them). */
  tcpPort?: number;
  udpPort?: number;
}

/** Starts tsvsd in the director namespace; resolves once its control socket listens. */
export async function startDirector(lab: Lab, extraArgs: string[] = []): Promise<void> {
  await lab.startProcess('director', 'tsvsd', [process.execPath, `${ROOT}bin/tsvsd.mjs`, ...tsvsdArgs(lab.director), ...extraArgs], {
    ready: /control socket listening/,
    timeoutMs: 30_000,
  });
}

/**
 * Defines a TCP and a UDP virtual service on the VIP with every real server of the lab, forwarded
 * by the lab's method (NAT: -m, DR: -g, TUN: -i), the way `tsvsadm -A/-a` would.
 */
export async function defineLabServices(lab: Lab, o: LabServiceOptions = {}): Promise<{ tcp: ServiceKey; udp: ServiceKey }> {
  const fwd: FwdMethod = lab.mode === 'nat' ? 'masq' : lab.mode === 'dr' ? 'route' : lab.mode === 'fullnat' ? 'fullnat' : 'tunnel';
  const tcpPort = o.tcpPort ?? lab.state.ports.http;
  const udpPort = o.udpPort ?? lab.state.ports.udp;
  const tcp: ServiceKey = { type: 'tcp', addr: LAB.vip, port: tcpPort };
  const udp: ServiceKey = { type: 'udp', addr: LAB.vip, port: udpPort };
  const c = new ControlClient(lab.director.socket);
  const config = { scheduler: o.scheduler ?? 'rr', persistent: false, timeout: 0, netmask: '255.255.255.255', onePacket: false, schedFlags: 0, pe: '' };
  const dest = { fwd, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 'ipip' as const, tunPort: 0, tunCsum: 'nocsum' as const };
  try {
    for (const [svc, port] of [
      [tcp, lab.state.ports.http],
      [udp, lab.state.ports.udp],
    ] as const) {
      await c.request({ op: 'add-service', service: svc, config });
      if (fwd === 'fullnat') await c.request({ op: 'laddr-add', service: svc, laddr: { addr: LAB.lip, ifname: 'lan0' } });
      for (const rs of lab.realServers) await c.request({ op: 'add-server', service: svc, dest: { ...dest, addr: rs.ip, port } });
    }
  } finally {
    c.close();
  }
  return { tcp, udp };
}

/**
 * Runs the lab client inside the lab's client namespace (never from the calling namespace: the VIP
 * exists only inside the lab) and returns its tally.
 */
export async function labClient(lab: Lab, mode: 'http' | 'udp' | 'xfer', port: number, count: number, concurrency = 1): Promise<ClientRun> {
  const r = await lab.exec(
    'client',
    [...moduleCommand(import.meta.url, './client'), '--mode', mode, '--vip', LAB.vip, '--port', String(port), '--count', String(count), '--concurrency', String(concurrency)],
    120_000,
  );
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ClientRun;
  } catch {
    throw new Error(`lab client failed (${r.code}): ${(r.stderr || r.stdout).trim().slice(0, 400)}`);
  }
}
