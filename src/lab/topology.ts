// The namespace lab of DESIGN.md §5: client, router, director, real servers and the switch their segments share.
//
// Layout (one namespace per role, plus "switch"):
//
//   client eth0 ──veth── cli0 router lan0 ─┐                       switch namespace:
//    198.18.0.2          198.18.0.1 198.18.1.1                       bridge "lan"    (service LAN)
//                               rem0 198.19.0.1 ─┐ (tun)             bridge "nat"    (NAT inside net, nat mode)
//   director lan0 ──── bridge lan ─── rs1..N eth0 (dr)               bridge "remote" (remote site, tun mode)
//   director nat0 ──── bridge nat ─── rs1..N eth0 (nat)
//   director mgmt0 ─── bridge nat (nat) or lan (dr, tun): a kernel address for health checks
//   router rem0   ──── bridge remote ─ rs1..N eth0 (tun)
//
// Every L2 segment with more than two members is a Linux bridge in the "switch" namespace, joined by
// veths, so no host namespace carries a bridge and the router and director stay plain hosts. The client
// net has two members and is a single veth. The director's interfaces carry no kernel IP address (tsvsd
// owns them through AF_PACKET and answers ARP/ICMP itself); IPv6 is off everywhere. Each interface's
// MAC is 02:00 followed by its IPv4 address (02:00:c6:12:01:02 is 198.18.1.2), so traces read easily.
// The router has no route to the NAT inside net: NAT real servers are reached only through the director.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, fstatSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { must, run, waitFor, type ExecResult } from './netns.ts';
import { realServerSetup, netnsHost, spawnDetachedChild, DEFAULT_STATE_DIR, type RsHost, type RsMode } from './realserver.ts';
import { realServerProgramArgs, RS_HTTP_PORT, RS_UDP_PORT } from './servers.ts';
import { bundledEntryCommand } from './entry.ts';
import { ipToU32, u32ToIp } from '../lib/inet.ts';
import type { EcmpState } from './ecmp.ts';

/**
 * A lab's forwarding method. 'fullnat' puts the real servers on the remote site behind the router, as
 * 'tun' does, with their default gateway the router and nothing set up on them: FullNAT needs no VIP,
 * tunnel or route on a real server.
 */
export type LabMode = RsMode | 'fullnat';

/** Whether the real servers of `mode` sit on the remote site behind the router. */
const remoteSite = (mode: LabMode) => mode === 'tun' || mode === 'fullnat';

/** The address plan (DESIGN.md §5). */
export const LAB = {
  clientNet: '198.18.0.0/24',
  client: '198.18.0.2',
  routerClient: '198.18.0.1',
  lanNet: '198.18.1.0/24',
  routerLan: '198.18.1.1',
  directorLan: '198.18.1.2',
  vip: '198.18.1.100',
  natNet: '198.18.2.0/24',
  dip: '198.18.2.1',
  remoteNet: '198.19.0.0/24',
  /** The director's management address (a kernel interface, mgmt0) on the real servers' segment: health checks leave from it. */
  mgmtLan: '198.18.1.3',
  mgmtNat: '198.18.2.2',
  routerRemote: '198.19.0.1',
  /** FullNAT labs: the director's local address (LIP) on the LAN, which the real servers answer. */
  lip: '198.18.1.50',
  /** ECMP labs: the management/peering net (kernel addresses; BGP sessions, health checks), router .1, director k .(1+k). */
  peerNet: '198.18.3.0/24',
  routerPeer: '198.18.3.1',
} as const;

/** Most real servers a lab holds (.11 up to .99, below the VIP's .100). */
export const MAX_SERVERS = 89;

export interface LabOptions {
  mode: LabMode;
  /** Real servers rs1..rsN (default 3). */
  servers?: number;
  /** Lab name: lowercase letters/digits, ≤ 12 (default "lab"). */
  name?: string;
  /**
   * CLI labs outlive the process: namespaces are `tsvs-lab-NAME-ROLE`, programs run detached, the state
   * is kept in STATEDIR/lab-NAME.json. Otherwise (tests) namespaces are `tsvs-<pid>-NAME<n>-ROLE` and
   * the programs die with this process.
   */
  persistent?: boolean;
  /** Client addresses 198.18.0.2 .. (default 1). */
  clients?: number;
  /** State directory of persistent labs (default /run/tsvs). */
  stateDir?: string;
  /** Start the HTTP/UDP programs on each real server (default true). */
  programs?: boolean;
  /** Run `realserver setup` for the mode on each real server (default true). */
  realServerSetup?: boolean;
  httpPort?: number;
  udpPort?: number;
  /**
   * An ECMP lab (DR only): no single director; the router gets a peering interface (peer0 on the
   * "peer" bridge) and an L4 multipath hash, and src/lab/ecmp.ts adds the directors and the routing daemons.
   */
  ecmp?: boolean;
}

export interface LabRealServer {
  role: string;
  ns: string;
  ip: string;
  mac: string;
}

/** What tsvsd needs to run in the director namespace (see `tsvsdArgs`). */
export interface DirectorConfig {
  ns: string;
  interfaces: string[];
  /** ADDR/PREFIX@IFNAME */
  addresses: string[];
  /** PREFIX=GATEWAY */
  routes: string[];
  gateway: string;
  socket: string;
}

export interface LabProc {
  role: string;
  pid: number;
  what: string;
  log: string;
}

/** Everything needed to use or tear down a lab from another process (saved as JSON for CLI labs). */
export interface LabState {
  version: 1;
  name: string;
  mode: LabMode;
  persistent: boolean;
  /** role → namespace name, in creation order. */
  namespaces: Record<string, string>;
  clients: string[];
  realServers: LabRealServer[];
  director: DirectorConfig;
  ports: { http: number; udp: number };
  procs: LabProc[];
  /** Per-lab directory: logs, the real servers' setup records, the director's socket. */
  dir: string;
  stateFile?: string;
  createdAt: string;
  /** ECMP labs: the directors added so far (src/lab/ecmp.ts). */
  ecmp?: EcmpState;
}

/** MAC of an interface holding `ip`: 02:00 then the address's four bytes. */
export function labMac(ip: string): string {
  const v = ipToU32(ip);
  return ['02', '00', ...[24, 16, 8, 0].map((s) => ((v >>> s) & 255).toString(16).padStart(2, '0'))].join(':');
}

/** Address of real server i (1-based) in `mode`. */
export function rsAddress(mode: LabMode, i: number): string {
  const base = mode === 'nat' ? '198.18.2.0' : mode === 'dr' ? '198.18.1.0' : '198.19.0.0'; // tun, fullnat: the remote site
  return u32ToIp(ipToU32(base) + 10 + i);
}

/** tsvsd's command-line arguments for this lab's director (without the program itself). */
export function tsvsdArgs(d: DirectorConfig): string[] {
  return [
    ...d.interfaces.flatMap((i) => ['--interface', i]),
    ...d.addresses.flatMap((a) => ['--address', a]),
    ...d.routes.flatMap((r) => ['--route', r]),
    '--gateway',
    d.gateway,
    '--socket',
    d.socket,
  ];
}

/** Path of a persistent lab's state file. */
export function labStateFile(name: string, stateDir = DEFAULT_STATE_DIR): string {
  return join(stateDir, `lab-${name}.json`);
}

let seq = 0;

/** A running (or partly built) lab. Use `labUp` to build one and `Lab.load` to reach a CLI lab. */
export class Lab {
  private readonly children = new Set<ChildProcess>();
  private onSignal: (() => void) | null = null;
  private downed = false;

  constructor(readonly state: LabState) {}

  /** Reads a persistent lab's state; throws when no such lab is up. */
  static load(name: string, stateDir = DEFAULT_STATE_DIR): Lab {
    const f = labStateFile(name, stateDir);
    if (!existsSync(f)) throw new Error(`no lab named ${name} (no ${f}); start one with: tsvs lab up --mode nat|dr|tun --name ${name}`);
    return new Lab(JSON.parse(readFileSync(f, 'utf8')) as LabState);
  }

  /** Names of the persistent labs whose state is in `stateDir`. */
  static list(stateDir = DEFAULT_STATE_DIR): string[] {
    if (!existsSync(stateDir)) return [];
    return readdirSync(stateDir)
      .map((f) => /^lab-([a-z0-9]+)\.json$/.exec(f)?.[1])
      .filter((n): n is string => !!n)
      .sort();
  }

  get name(): string {
    return this.state.name;
  }
  get mode(): LabMode {
    return this.state.mode;
  }
  get director(): DirectorConfig {
    return this.state.director;
  }
  get realServers(): LabRealServer[] {
    return this.state.realServers;
  }

  /** Namespace name of a role (client, router, director, switch, rs1..). */
  ns(role: string): string {
    const n = this.state.namespaces[role];
    if (!n) throw new Error(`lab ${this.name} has no role ${role} (roles: ${this.roles().join(', ')})`);
    return n;
  }

  roles(): string[] {
    return Object.keys(this.state.namespaces);
  }

  /** Runs a command in a role's namespace to completion; never throws for a non-zero exit. */
  exec(role: string, cmd: string[], timeoutMs = 30_000): Promise<ExecResult> {
    return run('ip', ['netns', 'exec', this.ns(role), ...cmd], timeoutMs);
  }

  /** Runs a shell snippet in a role's namespace; throws when it fails. */
  async sh(role: string, script: string, timeoutMs = 30_000): Promise<string> {
    const r = await this.exec(role, ['sh', '-c', script], timeoutMs);
    if (r.code !== 0) throw new Error(`[${role}] ${script} failed (${r.code}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  /**
   * Starts a long-running program in a role's namespace with its output in the lab's directory, and
   * records its PID so `down()` stops it. In a persistent lab it runs detached and outlives this process;
   * otherwise its stdin is a pipe from this process (programs that watch stdin die with it). With
   * `ready`, waits until a line of its output matches.
   */
  async startProcess(role: string, what: string, cmd: string[], opts: { ready?: RegExp; timeoutMs?: number } = {}): Promise<LabProc> {
    if (this.downed) throw new Error(`lab ${this.name} is being torn down`);
    const log = join(this.state.dir, `${role}-${what}.log`);
    const fd = openSync(log, 'a');
    // A restarted program appends to the same log: only what this run writes can say it is ready.
    const from = fstatSync(fd).size;
    let child: ChildProcess;
    try {
      child = spawn('ip', ['netns', 'exec', this.ns(role), ...cmd], {
        detached: this.state.persistent,
        stdio: [this.state.persistent ? 'ignore' : 'pipe', fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    if (child.pid === undefined) throw new Error(`could not start ${what} in ${role}`);
    if (this.state.persistent) child.unref();
    this.track(child);
    const proc: LabProc = { role, pid: child.pid, what, log };
    this.state.procs.push(proc);
    this.save();
    if (opts.ready) {
      const re = opts.ready;
      const ours = () => readFileSync(log).subarray(from).toString('utf8');
      const tail = () => ours().trim().split('\n').slice(-5).join('\n');
      await waitFor(
        `${what} in ${role}`,
        () => {
          const text = ours();
          if (re.test(text)) return true;
          if (child.exitCode !== null || child.signalCode !== null) {
            throw new Error(`${what} in ${role} exited (${child.exitCode ?? child.signalCode}): ${text.trim().split('\n').slice(-5).join('\n')}`);
          }
          return false;
        },
        opts.timeoutMs ?? 20_000,
      ).catch((e: Error) => {
        throw e.message.startsWith('timed out') ? new Error(`${e.message}; its log ends:\n${tail()}`) : e;
      });
    }
    return proc;
  }

  /**
   * The real server `role` as an RsHost for the realserver functions. Processes it starts (the TUN
   * decapsulator) are recorded like `startProcess`'s, and refused once `down()` has begun.
   */
  host(role: string): RsHost {
    const ns = this.ns(role);
    const base = netnsHost(ns);
    return {
      label: base.label,
      exec: base.exec,
      spawnDetached: (cmd, logFile) => {
        if (this.downed) throw new Error(`lab ${this.name} is being torn down`);
        const child = spawnDetachedChild(['ip', 'netns', 'exec', ns, ...cmd], logFile);
        if (child.pid === undefined) throw new Error(`could not start ${cmd[0]} in ${role}`);
        this.track(child);
        this.state.procs.push({ role, pid: child.pid, what: 'decap', log: logFile });
        this.save();
        return child.pid;
      },
    };
  }

  private track(child: ChildProcess): void {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
  }

  /** Writes a persistent lab's state file (no-op for in-process labs). */
  save(): void {
    if (this.state.persistent && this.state.stateFile) writeFileSync(this.state.stateFile, JSON.stringify(this.state, null, 2) + '\n');
  }

  /** Installs SIGINT/SIGTERM handlers that tear the lab down and exit (130). */
  guardSignals(): void {
    if (this.onSignal) return;
    this.onSignal = () => {
      void this.down().finally(() => process.exit(130));
    };
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  /** Removes the handlers of `guardSignals` (the lab stays up). */
  releaseSignals(): void {
    if (!this.onSignal) return;
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    this.onSignal = null;
  }

  /**
   * Tears everything down: every process in the lab's namespaces (those it started and any started
   * there since, such as tsvsd), the namespaces (their veths and bridges go with them), the lab's
   * directory and state file. Idempotent; safe on a partly built lab.
   */
  async down(): Promise<void> {
    this.releaseSignals();
    if (this.downed) return;
    this.downed = true;
    // Children this process started are signalled by PID too: one still in `ip netns exec` has not
    // entered its namespace yet when a Ctrl-C lands in the middle of the build.
    await stopNamespaceProcesses(Object.values(this.state.namespaces), [...this.children]);
    for (const c of this.children) c.stdin?.destroy();
    for (const name of Object.values(this.state.namespaces).reverse()) await run('ip', ['netns', 'del', name]);
    rmSync(this.state.dir, { recursive: true, force: true });
    if (this.state.stateFile) rmSync(this.state.stateFile, { force: true });
  }
}

/** Namespace names that exist now (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const out = (await run('ip', ['netns', 'list'])).stdout;
  return out
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
}

/** PIDs of the processes inside a namespace (empty when it does not exist). */
export async function namespacePids(ns: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', ns]);
  if (r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/**
 * SIGTERM to every process inside the namespaces, SIGKILL to those left after a grace period. Only
 * processes found inside the lab's own namespaces are signalled (never a PID from a record alone, which
 * the system may have reused).
 */
async function stopNamespaceProcesses(namespaces: string[], own: ChildProcess[] = [], graceMs = 2000): Promise<void> {
  const alive = (c: ChildProcess) => c.pid !== undefined && c.exitCode === null && c.signalCode === null;
  const collect = async () => [
    ...new Set([...(await settleAll(namespaces.map(namespacePids))).flat(), ...own.filter(alive).map((c) => c.pid!)]),
  ];
  const signal = (pids: number[], sig: NodeJS.Signals) => {
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  };
  let pids = await collect();
  if (pids.length === 0) return;
  signal(pids, 'SIGTERM');
  const end = Date.now() + graceMs;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    pids = await collect();
    if (pids.length === 0) return;
  }
  signal(pids, 'SIGKILL');
  await waitFor('lab processes to die', async () => (await collect()).length === 0, 5000);
}

/**
 * Builds the lab for `mode` and returns it running: namespaces and links, addresses and routes, each
 * real server set up for the mode (as `tsvs realserver setup` would) with its HTTP/UDP programs ready.
 * The director namespace holds only its interfaces: start tsvsd there with `tsvsdArgs(lab.director)`.
 * On any failure, or SIGINT/SIGTERM while building, everything built so far is removed.
 */
export async function labUp(opts: LabOptions): Promise<Lab> {
  const mode = opts.mode;
  if (!['nat', 'dr', 'tun', 'fullnat'].includes(mode)) throw new Error(`unknown mode ${mode} (nat, dr, tun or fullnat)`);
  const servers = opts.servers ?? 3;
  if (!Number.isInteger(servers) || servers < 1 || servers > MAX_SERVERS) throw new Error(`servers must be 1..${MAX_SERVERS}`);
  const clients = opts.clients ?? 1;
  if (!Number.isInteger(clients) || clients < 1 || clients > 200) throw new Error('clients must be 1..200');
  const name = opts.name ?? 'lab';
  if (!/^[a-z0-9]{1,12}$/.test(name)) throw new Error(`lab name must be 1-12 lowercase letters/digits: ${name}`);
  const persistent = opts.persistent ?? false;
  const stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;

  let prefix: string;
  let dir: string;
  let stateFile: string | undefined;
  if (persistent) {
    prefix = `tsvs-lab-${name}`;
    stateFile = labStateFile(name, stateDir);
    if (existsSync(stateFile)) throw new Error(`lab ${name} is already up (${stateFile}); run: tsvs lab down --name ${name}`);
    const clash = (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
    if (clash.length) throw new Error(`namespaces of a lab named ${name} exist (${clash.join(', ')}); run: tsvs lab down --name ${name}`);
    dir = join(stateDir, `lab-${name}`);
    mkdirSync(dir, { recursive: true });
  } else {
    prefix = `tsvs-${process.pid}-${name}${seq++}`;
    dir = mkdtempSync(join(tmpdir(), `tsvs-${process.pid}-lab-`));
  }

  const ecmp = opts.ecmp === true;
  if (ecmp && mode !== 'dr') throw new Error('an ECMP lab (--directors) is built for --mode dr');
  const rsRoles = Array.from({ length: servers }, (_, i) => `rs${i + 1}`);
  const roles = ['switch', 'client', 'router', ...(ecmp ? [] : ['director']), ...rsRoles];
  const clientIps = Array.from({ length: clients }, (_, i) => u32ToIp(ipToU32(LAB.client) + i));
  const director: DirectorConfig = {
    ns: `${prefix}-director`,
    interfaces: mode === 'nat' ? ['lan0', 'nat0'] : ['lan0'],
    addresses: [`${LAB.vip}/32@lan0`, `${LAB.directorLan}/24@lan0`, ...(mode === 'nat' ? [`${LAB.dip}/24@nat0`] : [])],
    routes: [`${LAB.clientNet}=${LAB.routerLan}`, ...(remoteSite(mode) ? [`${LAB.remoteNet}=${LAB.routerLan}`] : [])],
    gateway: LAB.routerLan,
    socket: join(dir, 'tsvsd.sock'),
  };
  const state: LabState = {
    version: 1,
    name,
    mode,
    persistent,
    namespaces: {},
    clients: clientIps,
    realServers: rsRoles.map((role, i) => {
      const ip = rsAddress(mode, i + 1);
      return { role, ns: `${prefix}-${role}`, ip, mac: labMac(ip) };
    }),
    director,
    ports: { http: opts.httpPort ?? RS_HTTP_PORT, udp: opts.udpPort ?? RS_UDP_PORT },
    procs: [],
    dir,
    stateFile,
    createdAt: new Date().toISOString(),
    ...(ecmp ? { ecmp: { directors: [] } } : {}),
  };
  const lab = new Lab(state);
  lab.guardSignals();
  try {
    // Namespaces, each with lo up and IPv6 off by default, so every interface added later has it off too.
    for (const role of roles) state.namespaces[role] = `${prefix}-${role}`;
    lab.save();
    await settleAll(
      roles.map(async (role) => {
        await must('ip', ['netns', 'add', lab.ns(role)]);
        await lab.sh(
          role,
          'ip link set lo up; sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0',
        );
      }),
    );

    // The programs take the longest to start (node + tsx): start them first, they listen on 0.0.0.0.
    const programs =
      opts.programs === false
        ? Promise.resolve()
        : bundledEntryCommand('rs-main', dir).then((cmd) =>
            settleAll(
              rsRoles.map((r) =>
                lab.startProcess(r, 'programs', [...cmd, ...realServerProgramArgs(r, state.ports.http, state.ports.udp, !persistent)], { ready: /^ready /m }),
              ),
            ),
          );
    // Without an observer, a failure here would be an unhandled rejection before we await it below.
    programs.catch(() => {});

    const veth = (roleA: string, ifA: string, macA: string | null, roleB: string, ifB: string, macB: string | null) =>
      must('ip', [
        'link', 'add', ifA, ...(macA ? ['address', macA] : []), 'netns', lab.ns(roleA),
        'type', 'veth', 'peer', 'name', ifB, ...(macB ? ['address', macB] : []), 'netns', lab.ns(roleB),
      ]);

    const bridges = ['lan', ...(mode === 'nat' ? ['nat'] : []), ...(remoteSite(mode) ? ['remote'] : []), ...(ecmp ? ['peer'] : [])];
    await lab.sh('switch', bridges.map((b) => `ip link add ${b} type bridge stp_state 0 forward_delay 0 mcast_snooping 0 && ip link set ${b} up`).join(' && '));

    const links: Promise<string>[] = [
      veth('client', 'eth0', labMac(LAB.client), 'router', 'cli0', labMac(LAB.routerClient)),
      veth('router', 'lan0', labMac(LAB.routerLan), 'switch', 'l-router', null),
    ];
    if (!ecmp) links.push(veth('director', 'lan0', labMac(LAB.directorLan), 'switch', 'l-director', null));
    if (mode === 'nat') links.push(veth('director', 'nat0', labMac(LAB.dip), 'switch', 'n-director', null));
    const mgmtIp = mode === 'nat' ? LAB.mgmtNat : LAB.mgmtLan;
    if (ecmp) links.push(veth('router', 'peer0', labMac(LAB.routerPeer), 'switch', 'p-router', null));
    else links.push(veth('director', 'mgmt0', labMac(mgmtIp), 'switch', 'm-director', null));
    if (remoteSite(mode)) links.push(veth('router', 'rem0', labMac(LAB.routerRemote), 'switch', 'r-router', null));
    const rsPort = mode === 'nat' ? 'n-' : mode === 'dr' ? 'l-' : 'r-';
    const rsBridge = mode === 'nat' ? 'nat' : mode === 'dr' ? 'lan' : 'remote';
    for (const rs of state.realServers) links.push(veth(rs.role, 'eth0', rs.mac, 'switch', `${rsPort}${rs.role}`, null));
    await settleAll(links);

    const ports: [string, string][] = [
      ['l-router', 'lan'],
      ...(ecmp ? ([['p-router', 'peer']] as [string, string][]) : ([['l-director', 'lan'], ['m-director', mode === 'nat' ? 'nat' : 'lan']] as [string, string][])),
      ...(mode === 'nat' ? ([['n-director', 'nat']] as [string, string][]) : []),
      ...(remoteSite(mode) ? ([['r-router', 'remote']] as [string, string][]) : []),
      ...state.realServers.map((rs): [string, string] => [`${rsPort}${rs.role}`, rsBridge]),
    ];
    const rsGateway = mode === 'nat' ? null : mode === 'dr' ? LAB.routerLan : LAB.routerRemote;
    await settleAll([
      lab.sh('switch', ports.map(([p, b]) => `ip link set ${p} master ${b} && ip link set ${p} up`).join(' && ')),
      lab.sh(
        'client',
        [...clientIps.map((ip) => `ip addr add ${ip}/24 dev eth0`), 'ip link set eth0 up', `ip route add default via ${LAB.routerClient}`].join(' && '),
      ),
      lab.sh(
        'router',
        [
          `ip addr add ${LAB.routerClient}/24 dev cli0`,
          'ip link set cli0 up',
          `ip addr add ${LAB.routerLan}/24 dev lan0`,
          'ip link set lan0 up',
          ...(remoteSite(mode) ? [`ip addr add ${LAB.routerRemote}/24 dev rem0`, 'ip link set rem0 up'] : []),
          // Forwarding, no redirects, and no reverse-path filter: TUN replies come from the VIP (on the
          // LAN) through rem0, which a strict filter would drop.
          'sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0',
          // ECMP: the routing daemon installs the VIP with one next hop per director; the kernel hashes
          // each flow's 5-tuple to pick one. Policy 3 (custom fields: addresses, protocol, ports) rather
          // than 1: policy 1 takes a hash the packet already carries, and a veth carries the client
          // socket's own txhash, which TCP re-draws after a retransmission timeout, so a flow would
          // hop between directors on its own; a router hashing headers (hardware, or RSS on a NIC)
          // does not. Without any announcement the VIP is unreachable (never ARPed for on the LAN,
          // where every director holds it).
          ...(ecmp
            ? [
                `ip addr add ${LAB.routerPeer}/24 dev peer0`,
                'ip link set peer0 up',
                'sysctl -qw net.ipv4.fib_multipath_hash_policy=3 net.ipv4.fib_multipath_hash_fields=0x0037',
                `ip route add unreachable ${LAB.vip}/32 metric 4000`,
              ]
            : []),
        ].join(' && '),
      ),
      // The director's interfaces: up, no address (tsvsd owns them), IPv6 already off, no forwarding.
      // mgmt0 is the director's management link, a plain kernel interface like a real director's admin
      // NIC: the health checks run from it. It never forwards.
      ecmp ? Promise.resolve('') : lab.sh(
        'director',
        [
          ...director.interfaces.map((i) => `ip link set ${i} up`),
          'sysctl -qw net.ipv4.ip_forward=0',
          `ip addr add ${mgmtIp}/24 dev mgmt0`,
          'ip link set mgmt0 up',
          ...(remoteSite(mode) ? [`ip route add ${LAB.remoteNet} via ${LAB.routerLan}`] : []),
        ].join(' && '),
      ),
      ...state.realServers.map((rs) =>
        lab.sh(
          rs.role,
          [`ip addr add ${rs.ip}/24 dev eth0`, 'ip link set eth0 up', ...(rsGateway ? [`ip route add default via ${rsGateway}`] : [])].join(' && '),
        ),
      ),
    ]);

    if (opts.realServerSetup !== false && mode !== 'fullnat') {
      await settleAll(
        state.realServers.map(async (rs) => {
          const host = lab.host(rs.role);
          const stateDir = join(dir, rs.role);
          mkdirSync(stateDir, { recursive: true });
          await realServerSetup(host, { mode: mode as RsMode, vip: LAB.vip, dip: mode === 'nat' ? LAB.dip : undefined, stateDir });
        }),
      );
    }
    await programs;
    if (opts.programs !== false && opts.realServerSetup !== false && mode !== 'nat' && mode !== 'fullnat') {
      // The UDP echo answers from the VIP only once it has a socket on it (see servers.ts).
      await settleAll(
        state.procs
          .filter((p) => p.what === 'programs')
          .map((p) => waitFor(`the UDP echo of ${p.role} on the VIP`, () => readFileSync(p.log, 'utf8').includes(`udp on ${LAB.vip}\n`), 10_000)),
      );
    }
    // Persistent labs are left running when this process exits; only the build is guarded.
    if (persistent) lab.releaseSignals();
    return lab;
  } catch (e) {
    await lab.down();
    throw e;
  }
}

/**
 * Like Promise.all, but waits for every task to settle before rejecting with the first failure, so that
 * no step of a failed build is still running (and recreating files) while the build is torn down.
 */
async function settleAll<T>(tasks: Promise<T>[]): Promise<T[]> {
  const res = await Promise.allSettled(tasks);
  const bad = res.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (bad) throw bad.reason;
  return res.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** Tears down a persistent lab by name (idempotent: no lab, no error). Returns whether one was found. */
export async function labDown(name: string, stateDir = DEFAULT_STATE_DIR): Promise<boolean> {
  const f = labStateFile(name, stateDir);
  if (existsSync(f)) {
    await Lab.load(name, stateDir).down();
    return true;
  }
  // No state (lost, or a build killed hard): remove whatever carries the lab's fixed prefix.
  const prefix = `tsvs-lab-${name}-`;
  const left = (await listNamespaces()).filter((n) => n.startsWith(prefix));
  if (left.length === 0) return false;
  await stopNamespaceProcesses(left);
  for (const n of left) await run('ip', ['netns', 'del', n]);
  rmSync(join(stateDir, `lab-${name}`), { recursive: true, force: true });
  return true;
}
