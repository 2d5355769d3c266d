// A second director for a lab: two tsvsd on the service LAN with VRRP (a sync group with the DIP for NAT) and connection sync both ways — the demo's failover scene and the failover e2e tests.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LAB, type Lab, type LabProc } from './topology.ts';
import { must, waitFor, type Netns } from './netns.ts';
import { requestOnce } from '../ctl/client.ts';
import { ROOT } from '../root.ts';

/** One director of the pair: its namespace, control socket and own addresses (the VIP and DIP move). */
export interface HaDirector {
  name: string;
  ns: string;
  socket: string;
  lan: string;
  nat: string;
}

/** The long-lived-connection port the failover tests use besides HTTP (80). */
export const ECHO_PORT = 9000;

/** tsvsd's YAML for one director of the pair; returns the file's path. */
export function haConfig(lab: Lab, d: HaDirector, priority: number, extraPorts: number[] = []): string {
  const mode = lab.mode;
  const rs = lab.realServers.map((r) => r.ip);
  const file = join(lab.state.dir, `${d.name}-${priority}.yaml`);
  const service = (port: number) => ({ protocol: 'tcp', address: LAB.vip, port, scheduler: 'rr', realservers: rs.map((a) => ({ address: a, port, method: mode })) });
  writeFileSync(
    file,
    JSON.stringify({
      interfaces: mode === 'nat' ? ['lan0', 'nat0'] : ['lan0'],
      addresses: [`${d.lan}/24@lan0`, ...(mode === 'nat' ? [`${d.nat}/24@nat0`] : [])],
      routes: [`${LAB.clientNet}=${LAB.routerLan}`, ...(mode === 'tun' ? [`${LAB.remoteNet}=${LAB.routerLan}`] : [])],
      gateway: LAB.routerLan,
      services: [service(lab.state.ports.http), ...extraPorts.map(service)],
      // Sync both ways: each director is master for what it serves and backup for its peer's.
      sync_daemon: [
        { state: 'master', interface: 'lan0', syncid: 9 },
        { state: 'backup', interface: 'lan0', syncid: 9 },
      ],
      vrrp: {
        instances: [
          { name: 'VI_VIP', interface: 'lan0', vrid: 51, priority, addresses: [`${LAB.vip}/32`] },
          ...(mode === 'nat' ? [{ name: 'VI_DIP', interface: 'nat0', vrid: 52, priority, addresses: [`${LAB.dip}/24`] }] : []),
        ],
        sync_groups: mode === 'nat' ? [{ name: 'LVS', instances: ['VI_VIP', 'VI_DIP'] }] : [],
      },
    }),
  );
  return file;
}

/**
 * The pair: "ds1" is the lab's own director namespace (with the lab's director MACs); "ds2" a new
 * namespace in `n`, cabled to the lab's LAN bridge (and, for NAT, the real servers' one).
 */
export async function haPair(lab: Lab, n: Netns): Promise<[HaDirector, HaDirector]> {
  await n.add('ds2');
  const nat = lab.mode === 'nat';
  await must('ip', ['link', 'add', 'lan0', 'netns', n.ns('ds2'), 'type', 'veth', 'peer', 'name', 'l-ds2', 'netns', lab.ns('switch')]);
  if (nat) await must('ip', ['link', 'add', 'nat0', 'netns', n.ns('ds2'), 'type', 'veth', 'peer', 'name', 'n-ds2', 'netns', lab.ns('switch')]);
  await lab.sh('switch', `ip link set l-ds2 master lan && ip link set l-ds2 up${nat ? ' && ip link set n-ds2 master nat && ip link set n-ds2 up' : ''}`);
  await n.sh('ds2', `ip link set lan0 up${nat ? ' && ip link set nat0 up' : ''}`);
  return [
    { name: 'ds1', ns: lab.ns('director'), socket: join(lab.state.dir, 'ds1.sock'), lan: LAB.directorLan, nat: '198.18.2.5' },
    { name: 'ds2', ns: n.ns('ds2'), socket: join(lab.state.dir, 'ds2.sock'), lan: '198.18.1.4', nat: '198.18.2.6' },
  ];
}

/** Starts tsvsd for `d` (as a lab process: logged in the lab's directory, killed with the lab). */
export function startHaDirector(lab: Lab, n: Netns, d: HaDirector, priority: number, what: string, extraPorts: number[] = []): Promise<LabProc> {
  const cmd = [process.execPath, `${ROOT}bin/tsvsd.mjs`, '--config', haConfig(lab, d, priority, extraPorts), '--socket', d.socket];
  if (d.name === 'ds1') return lab.startProcess('director', what, cmd, { ready: /control socket listening/, timeoutMs: 30_000 });
  // ds2's namespace is not the lab's: start it there, and wait the same way.
  const child = n.spawn('ds2', cmd);
  let err = '';
  child.stdout!.resume();
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  return waitFor(`tsvsd in ds2`, () => {
    if (child.exitCode !== null) throw new Error(`tsvsd in ds2 exited (${child.exitCode}): ${err.slice(-600)}`);
    return /control socket listening/.test(err);
  }, 30_000).then(() => ({ role: 'ds2', pid: child.pid!, what, log: '' }));
}

/** The VRRP state of the director's first instance, or null when it does not answer. */
export async function haState(d: HaDirector): Promise<string | null> {
  try {
    return (await requestOnce(d.socket, { op: 'vrrp' })).instances[0]?.state ?? null;
  } catch {
    return null;
  }
}

/** Established connections the director holds to VIP:port. */
export async function haConns(d: HaDirector, port: number): Promise<number> {
  try {
    return (await requestOnce(d.socket, { op: 'connections' })).conns.filter((c) => c.vport === port && c.state === 'ESTABLISHED').length;
  } catch {
    return 0;
  }
}
