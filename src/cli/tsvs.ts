// tsvs: the namespace lab (`tsvs lab up|down|exec|status`) and the real-server side (`tsvs realserver setup|check|teardown`).
import { spawnSync } from 'node:child_process';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { Lab, labDown, labUp, namespacePids, listNamespaces, tsvsdArgs, LAB, MAX_SERVERS, type LabMode } from '../lab/topology.ts';
import {
  DEFAULT_STATE_DIR,
  DEFAULT_TUN_DEV,
  formatChecks,
  localHost,
  realServerCheck,
  realServerSetup,
  realServerTeardown,
  type RealServerOptions,
  type RsMode,
} from '../lab/realserver.ts';
import { ipToU32 } from '../lib/inet.ts';
import { startDirector, defineLabServices } from '../lab/director.ts';
import { runTrace } from './trace.ts';
import { requestOnce } from '../ctl/client.ts';
import { socketPath, type AnnounceStatus, type SysctlValues } from '../ctl/protocol.ts';
import { addEcmpDirector, ecmpStatus, formatEcmpStatus, MAX_DIRECTORS, routerNextHops, startRouterBird, DEFAULT_ECMP } from '../lab/ecmp.ts';
import { formatVrrp } from '../vrrp/format.ts';

function intArg(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return n;
  };
}

function ipArg(v: string): string {
  if (Number.isNaN(ipToU32(v))) throw new InvalidArgumentError('not an IPv4 address');
  return v;
}

function nameArg(v: string): string {
  if (!/^[a-z0-9]{1,12}$/.test(v)) throw new InvalidArgumentError('1-12 lowercase letters/digits');
  return v;
}

const modeOption = (lab = false) =>
  new Option('--mode <mode>', 'forwarding method').choices(lab ? ['nat', 'dr', 'tun', 'fullnat'] : ['nat', 'dr', 'tun']).makeOptionMandatory();

/** One-screen description of a lab: roles, namespaces, addresses, and how to start the director. */
export function describeLab(lab: Lab): string {
  const s = lab.state;
  const out: string[] = [];
  if (s.ecmp) {
    out.push(`lab ${s.name}: ECMP, ${s.ecmp.directors.length} directors (DR), ${s.realServers.length} real servers, VIP ${LAB.vip}`);
    out.push(`  client    ${s.namespaces.client}  ${s.clients.join(', ')} (gw ${LAB.routerClient})`);
    out.push(`  router    ${s.namespaces.router}  ${LAB.routerClient} ${LAB.routerLan} ${LAB.routerPeer} (BIRD, AS 65000, resilient ECMP over a 5-tuple hash; birdc -s ${s.ecmp.routerCtl}; ip nexthop bucket show)`);
    for (const d of s.ecmp.directors) out.push(`  ${d.role.padEnd(8)}  ${d.ns}  lan0 ${d.lan} (owned), mgmt0 ${d.mgmt} (BGP); tsvsd --config ${d.config}`);
    if (s.mode === 'fullnat') out.push(`  FullNAT: give services a local address, e.g. tsvsadm -P -t ${LAB.vip}:80 -z ${LAB.lip} -F lan0`);
  for (const rs of s.realServers) out.push(`  ${rs.role.padEnd(8)}  ${rs.ns}  ${rs.ip} (${rs.mac}) http ${s.ports.http}`);
    out.push(`  switch    ${s.namespaces.switch}  bridges lan, peer`);
    return out.join('\n') + '\n';
  }
  out.push(`lab ${s.name}: ${s.mode.toUpperCase()}, ${s.realServers.length} real servers, VIP ${LAB.vip}`);
  out.push(`  client    ${s.namespaces.client}  ${s.clients.join(', ')} (gw ${LAB.routerClient})`);
  out.push(
    `  router    ${s.namespaces.router}  ${LAB.routerClient} ${LAB.routerLan}${s.mode === 'tun' || s.mode === 'fullnat' ? ` ${LAB.routerRemote}` : ''} (forwarding)`,
  );
  out.push(`  director  ${s.namespaces.director}  ${s.director.interfaces.join(', ')} (no kernel addresses: tsvsd owns them)`);
  for (const rs of s.realServers) out.push(`  ${rs.role.padEnd(8)}  ${rs.ns}  ${rs.ip} (${rs.mac}) http ${s.ports.http}, udp ${s.ports.udp}`);
  out.push(`  switch    ${s.namespaces.switch}  bridges for the shared segments`);
  out.push(`director: ip netns exec ${s.director.ns} tsvsd ${tsvsdArgs(s.director).join(' ')}`);
  return out.join('\n') + '\n';
}

function buildProgram(): Command {
  const program = new Command('tsvs')
    .description('tsvs lab and real-server tools')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  const lab = program.command('lab').description('a namespace lab: client, router, director, real servers (DESIGN.md §5)').enablePositionalOptions();

  lab
    .command('up')
    .description('build the lab and start the real servers; it keeps running until `tsvs lab down`')
    .addOption(modeOption(true))
    .option('--servers <n>', `real servers (1-${MAX_SERVERS})`, intArg(1, MAX_SERVERS), 3)
    .option('--clients <n>', 'client addresses from 198.18.0.2', intArg(1, 200), 1)
    .option('--name <name>', 'lab name', nameArg, 'lab')
    .option('--state-dir <dir>', 'where the lab state is kept', DEFAULT_STATE_DIR)
    .option('--scheduler <name>', 'scheduler of the lab services (default rr; mh with --directors)')
    .option('--no-director', 'build the lab without starting tsvsd')
    .option('--directors <n>', `ECMP: N directors behind the router, each announcing the VIP over BGP (1-${MAX_DIRECTORS}; --mode dr)`, intArg(1, MAX_DIRECTORS))
    .option('--no-sloppy', 'ECMP: leave net.ipv4.vs.sloppy_tcp at 0 on the directors')
    .option('--sync', 'ECMP: connection sync between the directors (a master and a backup sync daemon on each mgmt0)')
    .action(async (o: { mode: LabMode; servers: number; clients: number; name: string; stateDir: string; scheduler?: string; director: boolean; directors?: number; sloppy: boolean; sync?: boolean }) => {
      const ecmp = o.directors !== undefined;
      const l = await labUp({ mode: o.mode, servers: o.servers, clients: o.clients, name: o.name, persistent: true, stateDir: o.stateDir, ecmp });
      try {
        if (ecmp) {
          await startRouterBird(l, { ...DEFAULT_ECMP, scheduler: o.scheduler ?? 'mh', sloppyTcp: o.sloppy ? 1 : 0, sync: o.sync === true });
          for (let k = 0; k < o.directors!; k++) await addEcmpDirector(l, o.director);
        } else if (o.director) {
          await startDirector(l);
          await defineLabServices(l, { scheduler: o.scheduler ?? 'rr' });
        }
      } catch (e) {
        await l.down();
        throw e;
      }
      process.stdout.write(describeLab(l));
      if (ecmp) {
        process.stdout.write(`  tsvs lab status --name ${o.name}     # BGP state and each director's share\n`);
        process.stdout.write(`  tsvs lab exec client -- curl -s http://${LAB.vip}/\n`);
      } else if (o.director) {
        process.stdout.write(`tsvsd is running; its socket: ${l.director.socket}\n`);
        process.stdout.write(`  tsvsadm --socket ${l.director.socket} -L -n\n`);
        process.stdout.write(`  tsvs lab exec client -- curl -s http://${LAB.vip}/\n`);
      }
      process.stdout.write(`state: ${l.state.stateFile}\n`);
    });

  lab
    .command('down')
    .description('stop every process in the lab and remove its namespaces (idempotent)')
    .option('--name <name>', 'lab name', nameArg, 'lab')
    .option('--state-dir <dir>', 'where the lab state is kept', DEFAULT_STATE_DIR)
    .action(async (o: { name: string; stateDir: string }) => {
      const found = await labDown(o.name, o.stateDir);
      process.stdout.write(found ? `lab ${o.name} down\n` : `no lab ${o.name}\n`);
    });

  lab
    .command('exec')
    .description('run a command in a role namespace: tsvs lab exec client -- curl -s http://198.18.1.100/')
    .argument('<role>', 'client, router, director, switch, rs1, ...')
    .argument('<cmd...>', 'the command and its arguments')
    .option('--name <name>', 'lab name', nameArg, 'lab')
    .option('--state-dir <dir>', 'where the lab state is kept', DEFAULT_STATE_DIR)
    .passThroughOptions()
    .action((role: string, cmd: string[], o: { name: string; stateDir: string }) => {
      const l = Lab.load(o.name, o.stateDir);
      // With pass-through options commander keeps the `--` that separates the command: drop it.
      if (cmd[0] === '--') cmd = cmd.slice(1);
      if (cmd.length === 0) throw new Error('no command given');
      const r = spawnSync('ip', ['netns', 'exec', l.ns(role), ...cmd], { stdio: 'inherit' });
      if (r.error) throw r.error;
      process.exitCode = r.status ?? 128 + 1;
    });

  lab
    .command('status')
    .description('the labs that are up, their namespaces and processes')
    .option('--name <name>', 'only this lab', nameArg)
    .option('--state-dir <dir>', 'where the lab state is kept', DEFAULT_STATE_DIR)
    .action(async (o: { name?: string; stateDir: string }) => {
      const names = o.name ? [o.name] : Lab.list(o.stateDir);
      const present = new Set(await listNamespaces());
      if (names.length === 0) process.stdout.write('no lab is up\n');
      for (const name of names) {
        const l = Lab.load(name, o.stateDir);
        process.stdout.write(describeLab(l));
        const nss = Object.values(l.state.namespaces);
        const missing = nss.filter((n) => !present.has(n));
        process.stdout.write(`namespaces: ${nss.length - missing.length}/${nss.length} present${missing.length ? ` (missing: ${missing.join(', ')})` : ''}\n`);
        const inside = new Map<string, number[]>();
        for (const role of l.roles()) {
          const pids = await namespacePids(l.ns(role));
          inside.set(role, pids);
          if (pids.length) process.stdout.write(`  ${role}: pids ${pids.join(' ')}\n`);
        }
        // A program that died (killed, crashed) says so, with where its output went.
        for (const p of l.state.procs) {
          const up = inside.get(p.role)?.includes(p.pid) === true;
          process.stdout.write(`  ${p.what} in ${p.role} (pid ${p.pid}): ${up ? 'running' : `not running; its log: ${p.log}`}\n`);
        }
        if (l.state.ecmp) process.stdout.write(formatEcmpStatus(await ecmpStatus(l), await routerNextHops(l)));
      }
    });

  lab
    .command('scene')
    .description('a short self-contained story on its own lab: ecmp = three directors behind ECMP, one killed, flows survive')
    .argument('<scene>', 'ecmp')
    .action(async (scene: string) => {
      if (scene !== 'ecmp') throw new Error(`unknown scene ${scene} (scenes: ecmp)`);
      const { runEcmpScene } = await import('../lab/ecmp-scene.ts');
      process.exitCode = (await runEcmpScene()) === 0 ? 0 : 1;
    });

  lab
    .command('add-director')
    .description('ECMP lab: add one more director (it starts announcing the VIP once its sessions are up)')
    .option('--name <name>', 'lab name', nameArg, 'lab')
    .option('--state-dir <dir>', 'where the lab state is kept', DEFAULT_STATE_DIR)
    .action(async (o: { name: string; stateDir: string }) => {
      const l = Lab.load(o.name, o.stateDir);
      const d = await addEcmpDirector(l);
      process.stdout.write(`${d.role} up: lan0 ${d.lan}, mgmt0 ${d.mgmt}, socket ${d.socket}\n`);
    });

  const rs = program
    .command('realserver')
    .description('prepare, check or undo a real server for NAT, DR or TUN (run on the real server or in its namespace)');
  const rsOptions = (c: Command) =>
    c
      .addOption(modeOption())
      .requiredOption('--vip <addr>', 'the virtual IP', ipArg)
      .option('--dip <addr>', 'NAT: the director inside address (the default gateway)', ipArg)
      .option('--state-dir <dir>', 'where setup records its changes and the decapsulator PID', DEFAULT_STATE_DIR)
      .addOption(new Option('--decap <kind>', 'TUN: kernel ipip, userspace decapsulator, or auto').choices(['auto', 'kernel', 'user']).default('auto'))
      .option('--tun-dev <name>', 'TUN, userspace: the TUN device holding the VIP', DEFAULT_TUN_DEV);
  const rsOpts = (o: { mode: RsMode; vip: string; dip?: string; stateDir: string; decap: 'auto' | 'kernel' | 'user'; tunDev: string }): RealServerOptions => ({
    mode: o.mode,
    vip: o.vip,
    dip: o.dip,
    stateDir: o.stateDir,
    decap: o.decap,
    tunDev: o.tunDev,
  });

  rsOptions(rs.command('setup').description('configure this real server for the mode')).action(async (o) => {
    for (const line of await realServerSetup(localHost(), rsOpts(o))) process.stdout.write(`${line}\n`);
  });
  rsOptions(rs.command('check').description('test each requirement; PASS/FAIL lines with the fix; exit 1 if any fails')).action(async (o) => {
    const res = await realServerCheck(localHost(), rsOpts(o));
    process.stdout.write(formatChecks(res));
    if (res.some((r) => !r.ok)) process.exitCode = 1;
  });
  rsOptions(rs.command('teardown').description('undo setup')).action(async (o) => {
    const did = await realServerTeardown(localHost(), rsOpts(o));
    process.stdout.write(did.length ? did.map((l) => `${l}\n`).join('') : 'nothing to undo\n');
  });
  const addr = program.command('address').description("the director's own addresses (VIPs, DIPs) at run time");
  const sockOpt = (c: Command) => c.option('--socket <path>', 'tsvsd control socket (default /run/tsvs/tsvsd.sock or TSVS_SOCKET)');
  const addrArg = (v: string) => {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})@([^\s@/]{1,15})$/.exec(v);
    if (!m || Number.isNaN(ipToU32(m[1]!)) || Number(m[2]) > 32) throw new InvalidArgumentError('must look like ADDR/PREFIX@IFNAME, e.g. 198.18.1.101/32@eth1');
    return { addr: m[1]!, plen: Number(m[2]), ifname: m[3]! };
  };
  sockOpt(addr.command('list').description('list the addresses tsvsd owns')).action(async (o: { socket?: string }) => {
    const r = await requestOnce(socketPath(o.socket), { op: 'address-list' });
    for (const a of r.addresses) process.stdout.write(`${a.addr}/${a.plen}@${a.ifname}\n`);
  });
  sockOpt(addr.command('add').description('add an address (a gratuitous ARP announces it)').argument('<ADDR/PREFIX@IFNAME>', 'the address', addrArg)).action(
    async (a: { addr: string; plen: number; ifname: string }, o: { socket?: string }) => {
      await requestOnce(socketPath(o.socket), { op: 'address-add', address: a });
    },
  );
  sockOpt(addr.command('del').description('remove an address').argument('<ADDR/PREFIX@IFNAME>', 'the address', addrArg)).action(
    async (a: { addr: string; plen: number; ifname: string }, o: { socket?: string }) => {
      await requestOnce(socketPath(o.socket), { op: 'address-del', address: a });
    },
  );

  // A whole director: announce its VIPs or stop announcing them (the routers move its flows elsewhere).
  const dir = program.command('director').description('the whole director: route announcement (BGP), drain and undrain');
  const printAnnounce = (a: AnnounceStatus) => {
    if (!a.enabled) return void process.stdout.write('no route announcement configured (no bgp: in the configuration)\n');
    process.stdout.write(`director ${a.drained ? 'DRAINED' : 'in service'}; routing daemon ${a.daemon} ${a.running ? 'running' : 'NOT running'} (birdc -s ${a.control})\n`);
    for (const v of a.vips) process.stdout.write(`  ${v.prefix.padEnd(18)} ${v.announced ? 'announced' : 'withdrawn'}  (${v.reason})\n`);
    for (const p of a.peers) process.stdout.write(`  peer ${p.neighbor.padEnd(15)} ${p.name}: ${p.state} ${p.bgpState}, since ${p.since}, ${p.exported} routes exported, BFD ${p.bfd}\n`);
  };
  sockOpt(dir.command('status').description('announced VIPs and the BGP sessions, as BIRD reports them')).option('--json', 'JSON').action(async (o: { socket?: string; json?: boolean }) => {
    const a = await requestOnce(socketPath(o.socket), { op: 'announce' });
    if (o.json) process.stdout.write(JSON.stringify(a, null, 2) + '\n');
    else printAnnounce(a);
  });
  sockOpt(dir.command('drain').description('withdraw every VIP from the routers; connections still arriving are forwarded')).action(async (o: { socket?: string }) => {
    printAnnounce(await requestOnce(socketPath(o.socket), { op: 'director-drain' }));
  });
  sockOpt(dir.command('undrain').description('announce the VIPs again (where quorum allows)')).action(async (o: { socket?: string }) => {
    printAnnounce(await requestOnce(socketPath(o.socket), { op: 'director-undrain' }));
  });

  // The net.ipv4.vs sysctls tsvsd honours, in sysctl(8)'s syntax: ipvsadm has no option for them.
  sockOpt(
    program
      .command('sysctl')
      .description('show or set net.ipv4.vs sysctls of a running tsvsd: tsvs sysctl net.ipv4.vs.sloppy_tcp=1')
      .argument('[settings...]', 'NAME or NAME=VALUE (NAME: sloppy_tcp, sloppy_sctp, with or without net.ipv4.vs.)'),
  ).action(async (settings: string[], o: { socket?: string }) => {
    const names: (keyof SysctlValues)[] = ['sloppy_tcp', 'sloppy_sctp'];
    const want: Partial<SysctlValues> = {};
    const show: (keyof SysctlValues)[] = [];
    for (const a of settings) {
      const m = /^(?:net\.ipv4\.vs\.)?([a-z_]+)(?:=(\S*))?$/.exec(a);
      const name = m?.[1] as keyof SysctlValues | undefined;
      if (!m || !name || !names.includes(name)) throw new Error(`unknown sysctl ${a} (known: ${names.map((n) => `net.ipv4.vs.${n}`).join(', ')})`);
      if (m[2] !== undefined) {
        if (m[2] !== '0' && m[2] !== '1') throw new Error(`net.ipv4.vs.${name}: value must be 0 or 1`);
        want[name] = Number(m[2]);
      }
      show.push(name);
    }
    const sock = socketPath(o.socket);
    const cur = Object.keys(want).length ? await requestOnce(sock, { op: 'set-sysctl', sysctl: want }) : await requestOnce(sock, { op: 'get-sysctl' });
    for (const n of show.length ? show : names) process.stdout.write(`net.ipv4.vs.${n} = ${cur[n]}\n`);
  });
  sockOpt(program.command('vrrp').description("each VRRP instance's state, priority, master and advert counters").option('--json', 'the snapshot as JSON')).action(
    async (o: { socket?: string; json?: boolean }) => {
      const r = await requestOnce(socketPath(o.socket), { op: 'vrrp' });
      process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : formatVrrp(r));
    },
  );

  program
    .command('trace')
    .description("follow packets through a running tsvsd's hooks (PREROUTING, INPUT, FORWARD, POSTROUTING)")
    .option('--cip <addr>', 'only packets to or from this client address', ipArg)
    .option('--vip <addr>', 'only packets to or from this virtual address', ipArg)
    .option('--port <port>', 'only packets with this port', intArg(0, 65535))
    .option('--count <n>', 'stop after this many packets', intArg(1, 100000), 10)
    .option('--pcap <file>', 'also write the traced frames to FILE (pcap)')
    .option('--json', 'one JSON object per packet')
    .option('--socket <path>', 'tsvsd control socket (default /run/tsvs/tsvsd.sock or TSVS_SOCKET)')
    .option('--timeout <s>', 'give up after this many seconds', intArg(0, 86400), 0)
    .action(async (o: { cip?: string; vip?: string; port?: number; count: number; pcap?: string; json?: boolean; socket?: string; timeout: number }) => {
      const got = await runTrace({ ...o, timeoutMs: o.timeout * 1000 });
      if (got.length < o.count) process.exitCode = 1;
    });
  return program;
}

/** Runs the tsvs command line; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  process.exitCode = 0;
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    process.stderr.write(`tsvs: ${(e as Error).message}\n`);
    return 1;
  }
}
