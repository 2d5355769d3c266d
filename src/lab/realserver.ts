// Real-server side of each forwarding method: set up, check (with the fix for each failure) and tear down.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, waitFor, type ExecResult } from './netns.ts';
import { labEntryCommand } from './entry.ts';
import { ipToU32, prefixToMask } from '../lib/inet.ts';

export type RsMode = 'nat' | 'dr' | 'tun';

/** Where the real-server commands run: this host, or a namespace of a lab. */
export interface RsHost {
  readonly label: string;
  exec(cmd: string[], timeoutMs?: number): Promise<ExecResult>;
  /** Starts a process that outlives the caller (own session, output to `logFile`); returns its PID. */
  spawnDetached(cmd: string[], logFile: string): number;
}

export interface RealServerOptions {
  mode: RsMode;
  vip: string;
  /** NAT: the director's inside address, the real server's default gateway. */
  dip?: string;
  /** Where setup records what it changed and the decapsulator's PID (default /run/tsvs). */
  stateDir?: string;
  /** TUN: 'kernel' (tunl0), 'user' (tsvs's decapsulator) or 'auto' (kernel when it has ipip). */
  decap?: 'auto' | 'kernel' | 'user';
  /** TUN, userspace decapsulator: name of the TUN device holding the VIP. */
  tunDev?: string;
}

export interface CheckResult {
  ok: boolean;
  what: string;
  detail: string;
  fix?: string;
}

export const DEFAULT_STATE_DIR = '/run/tsvs';
export const DEFAULT_TUN_DEV = 'tsvsipip0';

/** The host this process runs on (or the namespace it was started in). */
export function localHost(): RsHost {
  return {
    label: 'local',
    exec: (cmd, timeoutMs) => run(cmd[0]!, cmd.slice(1), timeoutMs),
    spawnDetached: (cmd, logFile) => spawnDetachedRaw(cmd, logFile),
  };
}

/** A named network namespace, reached through `ip netns exec`. */
export function netnsHost(ns: string): RsHost {
  return {
    label: ns,
    exec: (cmd, timeoutMs) => run('ip', ['netns', 'exec', ns, ...cmd], timeoutMs),
    spawnDetached: (cmd, logFile) => spawnDetachedRaw(['ip', 'netns', 'exec', ns, ...cmd], logFile),
  };
}

function spawnDetachedRaw(cmd: string[], logFile: string): number {
  const child = spawnDetachedChild(cmd, logFile);
  if (child.pid === undefined) throw new Error(`could not start ${cmd[0]}`);
  return child.pid;
}

/** Starts `cmd` in its own session with its output appended to `logFile`; the caller may keep the handle. */
export function spawnDetachedChild(cmd: string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(cmd[0]!, cmd.slice(1), { detached: true, stdio: ['ignore', fd, fd] });
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

// ---- small probes -------------------------------------------------------------------------------

async function sh(host: RsHost, script: string, ...args: string[]): Promise<ExecResult> {
  return host.exec(['sh', '-c', script, 'sh', ...args]);
}

async function mustSh(host: RsHost, script: string, ...args: string[]): Promise<string> {
  const r = await sh(host, script, ...args);
  if (r.code !== 0) throw new Error(`[${host.label}] ${script} ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** sysctl keys in slash form (net/ipv4/conf/eth0/arp_ignore) so interface names with dots work. */
function conf(dev: string, name: string): string {
  return `net/ipv4/conf/${dev}/${name}`;
}

async function readSysctls(host: RsHost, keys: string[]): Promise<Map<string, number>> {
  const out = await mustSh(host, 'for k in "$@"; do v=$(cat "/proc/sys/$k" 2>/dev/null) || v=-; echo "$v"; done', ...keys);
  const lines = out.split('\n');
  const m = new Map<string, number>();
  keys.forEach((k, i) => {
    const v = Number(lines[i]);
    if (lines[i] !== '-' && Number.isFinite(v)) m.set(k, v);
  });
  return m;
}

async function writeSysctls(host: RsHost, kv: Map<string, number>): Promise<void> {
  if (kv.size === 0) return;
  const r = await host.exec(['sysctl', '-qw', ...[...kv].map(([k, v]) => `${k}=${v}`)]);
  if (r.code !== 0) throw new Error(`[${host.label}] sysctl failed: ${r.stderr.trim()}`);
}

interface Link {
  name: string;
  up: boolean;
  arp: boolean;
}

async function links(host: RsHost): Promise<Link[]> {
  const out = await mustSh(host, 'ip -o link show');
  const res: Link[] = [];
  for (const line of out.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)(?:@[^:]*)?:\s+<([^>]*)>/.exec(line);
    if (!m) continue;
    const flags = m[2]!.split(',');
    res.push({ name: m[1]!, up: flags.includes('UP'), arp: !flags.includes('NOARP') && m[1] !== 'lo' });
  }
  return res;
}

/** Devices holding `ip` (any prefix length) and the prefix length on each. */
async function holders(host: RsHost, ip: string): Promise<{ dev: string; len: number }[]> {
  const out = await mustSh(host, 'ip -o -4 addr show');
  const res: { dev: string; len: number }[] = [];
  for (const line of out.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+inet\s+([\d.]+)\/(\d+)/.exec(line);
    if (m && m[2] === ip) res.push({ dev: m[1]!, len: Number(m[3]) });
  }
  return res;
}

async function defaultGateway(host: RsHost): Promise<string | null> {
  const out = (await sh(host, 'ip -4 route show default')).stdout;
  const m = /default via ([\d.]+)/.exec(out);
  return m ? m[1]! : out.trim() ? out.trim() : null;
}

/** The network namespace's identity (its inode), so state files of several namespaces never collide. */
async function netnsId(host: RsHost): Promise<string> {
  const out = await mustSh(host, 'readlink /proc/self/ns/net');
  const m = /\[(\d+)\]/.exec(out);
  if (!m) throw new Error(`cannot identify the network namespace: ${out}`);
  return m[1]!;
}

/** True when the kernel can decapsulate IPIP itself (the ipip module is loaded or built in). */
export async function kernelHasIpip(host: RsHost): Promise<boolean> {
  const r = await sh(host, 'test -d /sys/module/ipip || ip link show tunl0 >/dev/null 2>&1');
  return r.code === 0;
}

/** True while `pid` exists and is not a zombie (whatever it runs: it may not have exec'd its program yet). */
function pidRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function pidAlive(pid: number, mustContain: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(mustContain);
  } catch {
    return false;
  }
}

// ---- the record of what setup changed --------------------------------------------------------------

interface RsState {
  mode: RsMode;
  vip: string;
  dip?: string;
  /** Values the sysctls had before setup changed them. */
  sysctl: Record<string, number>;
  /** Where setup put the VIP (removed again by teardown). */
  vipDev?: string;
  /** NAT: the default route before setup ('' when there was none). */
  prevDefault?: string;
  decap?: { kind: 'kernel' | 'user'; dev: string; pid?: number };
}

function statePaths(dir: string, id: string) {
  return { state: join(dir, `realserver-${id}.json`), pid: join(dir, `ipip-decap-${id}.pid`), log: join(dir, `ipip-decap-${id}.log`) };
}

function loadState(file: string): RsState | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as RsState;
  } catch {
    return null;
  }
}

function validate(opts: RealServerOptions): void {
  if (!['nat', 'dr', 'tun'].includes(opts.mode)) throw new Error(`unknown mode ${opts.mode} (nat, dr or tun)`);
  if (Number.isNaN(ipToU32(opts.vip))) throw new Error(`bad VIP: ${opts.vip}`);
  if (opts.mode === 'nat') {
    if (!opts.dip) throw new Error('NAT needs --dip (the director inside address, the real server default gateway)');
    if (Number.isNaN(ipToU32(opts.dip))) throw new Error(`bad DIP: ${opts.dip}`);
  }
}

/** Sets sysctls, remembering each old value once (a second setup keeps the first record). */
async function setSysctls(host: RsHost, st: RsState, want: Map<string, number>): Promise<void> {
  const old = await readSysctls(host, [...want.keys()]);
  for (const [k, v] of old) if (!(k in st.sysctl)) st.sysctl[k] = v;
  await writeSysctls(host, want);
}

async function arpHiding(host: RsHost): Promise<Map<string, number>> {
  const want = new Map<string, number>();
  for (const dev of ['all', 'default', ...(await links(host)).filter((l) => l.arp).map((l) => l.name)]) {
    want.set(conf(dev, 'arp_ignore'), 1);
    want.set(conf(dev, 'arp_announce'), 2);
  }
  return want;
}

/**
 * Prepares this real server for `mode` and returns a line per change. DR: VIP/32 on lo, arp_ignore=1,
 * arp_announce=2 (all, default, every ARP interface), rp_filter loose where it was strict. NAT: default
 * route via the DIP. TUN: the kernel's tunl0 or tsvs's userspace decapsulator (a detached process whose
 * PID is kept in the state dir) with the VIP on its device, rp_filter 0, ARP hidden as for DR.
 */
export async function realServerSetup(host: RsHost, opts: RealServerOptions): Promise<string[]> {
  validate(opts);
  const dir = opts.stateDir ?? DEFAULT_STATE_DIR;
  mkdirSync(dir, { recursive: true });
  const paths = statePaths(dir, await netnsId(host));
  const prev = loadState(paths.state);
  if (prev && (prev.mode !== opts.mode || prev.vip !== opts.vip)) {
    throw new Error(`already set up as ${prev.mode} for ${prev.vip}: run teardown first`);
  }
  const st: RsState = prev ?? { mode: opts.mode, vip: opts.vip, dip: opts.dip, sysctl: {} };
  const did: string[] = [];
  const save = () => writeFileSync(paths.state, JSON.stringify(st, null, 2) + '\n');
  try {
    if (opts.mode === 'nat') {
      if (st.prevDefault === undefined) st.prevDefault = (await sh(host, 'ip -4 route show default')).stdout.trim().split('\n')[0] ?? '';
      await mustSh(host, 'ip route replace default via "$1"', opts.dip!);
      did.push(`default route via ${opts.dip}`);
    }
    if (opts.mode === 'dr') {
      await mustSh(host, 'ip addr replace "$1/32" dev lo', opts.vip);
      st.vipDev = 'lo';
      did.push(`${opts.vip}/32 on lo`);
      await setSysctls(host, st, await arpHiding(host));
      did.push('arp_ignore=1 arp_announce=2 on all, default and each ARP interface');
      const rp = await rpFilterStrict(host);
      if (rp.length) {
        await setSysctls(host, st, new Map([[conf('all', 'rp_filter'), 2]]));
        did.push(`rp_filter loose (all=2; it was strict on ${rp.join(', ')})`);
      }
    }
    if (opts.mode === 'tun') {
      const kind = opts.decap === 'kernel' || opts.decap === 'user' ? opts.decap : (await kernelHasIpip(host)) ? 'kernel' : 'user';
      let dev: string;
      if (kind === 'kernel') {
        dev = 'tunl0';
        const r = await sh(host, 'ip link show tunl0 >/dev/null 2>&1 || ip link add tunl0 type ipip');
        if (r.code !== 0) throw new Error(`the kernel has no ipip support here (${r.stderr.trim()}): use --decap user`);
        st.decap = { kind, dev };
        did.push('kernel IPIP decapsulation on tunl0');
      } else {
        dev = opts.tunDev ?? DEFAULT_TUN_DEV;
        let pid = st.decap?.pid;
        if (!pid || !pidAlive(pid, 'decap-main')) {
          rmSync(paths.log, { force: true });
          pid = host.spawnDetached([...labEntryCommand('decap-main'), '--dev', dev, '--vip', opts.vip, '--pid-file', paths.pid], paths.log);
          st.decap = { kind, dev, pid };
          save();
          const started = pid;
          await waitFor(
            'the IPIP decapsulator to start',
            () => {
              const log = existsSync(paths.log) ? readFileSync(paths.log, 'utf8') : '';
              if (/^ready /m.test(log)) return true;
              // Right after the fork the child still shows our own command line: only its exit counts.
              if (!pidRunning(started)) throw new Error(`the IPIP decapsulator exited: ${log.trim().split('\n').slice(-5).join('\n')}`);
              return false;
            },
            20_000,
          );
          did.push(`userspace IPIP decapsulator started (pid ${pid}, device ${dev})`);
        } else {
          did.push(`userspace IPIP decapsulator already running (pid ${pid})`);
        }
      }
      await mustSh(host, 'ip link set "$1" up && ip addr replace "$2/32" dev "$1"', dev, opts.vip);
      st.vipDev = dev;
      did.push(`${opts.vip}/32 on ${dev}`);
      await setSysctls(host, st, new Map([[conf('all', 'rp_filter'), 0], [conf(dev, 'rp_filter'), 0]]));
      did.push(`rp_filter=0 on all and ${dev}`);
      await setSysctls(host, st, await arpHiding(host));
      did.push('arp_ignore=1 arp_announce=2 on all, default and each ARP interface');
    }
  } finally {
    save();
  }
  return did;
}

/** Interfaces (with ARP or lo) whose effective rp_filter is strict (1). */
async function rpFilterStrict(host: RsHost): Promise<string[]> {
  const devs = (await links(host)).map((l) => l.name);
  const v = await readSysctls(host, [conf('all', 'rp_filter'), ...devs.map((d) => conf(d, 'rp_filter'))]);
  const all = v.get(conf('all', 'rp_filter')) ?? 0;
  return devs.filter((d) => Math.max(all, v.get(conf(d, 'rp_filter')) ?? 0) === 1);
}

/** Tests each requirement of `mode` on this real server. Never changes anything. */
export async function realServerCheck(host: RsHost, opts: RealServerOptions): Promise<CheckResult[]> {
  validate(opts);
  const res: CheckResult[] = [];
  const add = (ok: boolean, what: string, detail: string, fix?: string) => res.push(ok ? { ok, what, detail } : { ok, what, detail, fix });
  const vip = opts.vip;
  const ls = await links(host);
  const arpDevs = ls.filter((l) => l.arp).map((l) => l.name);

  const arpChecks = async () => {
    const keys = ['all', ...arpDevs].flatMap((d) => [conf(d, 'arp_ignore'), conf(d, 'arp_announce')]);
    const v = await readSysctls(host, keys);
    const allI = v.get(conf('all', 'arp_ignore')) ?? 0;
    const allA = v.get(conf('all', 'arp_announce')) ?? 0;
    for (const d of arpDevs) {
      const i = v.get(conf(d, 'arp_ignore')) ?? 0;
      const a = v.get(conf(d, 'arp_announce')) ?? 0;
      // The kernel uses the larger of the "all" and the per-interface value for both settings.
      add(
        Math.max(allI, i) >= 1,
        `arp_ignore on ${d}`,
        `effective ${Math.max(allI, i)} (all=${allI} ${d}=${i}); must be 1 so ${d} does not answer ARP for the VIP held elsewhere`,
        `sysctl -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.${d}.arp_ignore=1`,
      );
      add(
        Math.max(allA, a) >= 2,
        `arp_announce on ${d}`,
        `effective ${Math.max(allA, a)} (all=${allA} ${d}=${a}); must be 2 so ARP requests never carry the VIP as sender`,
        `sysctl -w net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.${d}.arp_announce=2`,
      );
    }
    if (arpDevs.length === 0) add(false, 'interfaces', 'no interface with ARP found', 'bring up the interface facing the director');
  };

  const gw = await defaultGateway(host);

  if (opts.mode === 'dr') {
    const h = await holders(host, vip);
    const onLo = h.find((x) => x.dev === 'lo');
    add(!!onLo && onLo.len === 32, 'VIP on lo', onLo ? `${vip}/${onLo.len} on lo` : `${vip} is not on lo`, onLo ? `ip addr del ${vip}/${onLo.len} dev lo && ip addr add ${vip}/32 dev lo` : `ip addr add ${vip}/32 dev lo`);
    const elsewhere = h.filter((x) => x.dev !== 'lo');
    add(elsewhere.length === 0, 'VIP only on lo', elsewhere.length ? `${vip} also on ${elsewhere.map((x) => x.dev).join(', ')}` : `${vip} on no other interface`, elsewhere.map((x) => `ip addr del ${vip}/${x.len} dev ${x.dev}`).join(' && '));
    await arpChecks();
    const strict = await rpFilterStrict(host);
    add(strict.length === 0, 'rp_filter relaxed', strict.length ? `strict (1) on ${strict.join(', ')}` : 'no interface filters strictly', 'sysctl -w net.ipv4.conf.all.rp_filter=2');
    add(gw !== null, 'default route', gw ? `via ${gw} (replies go to the client directly, not through the director)` : 'none: replies to clients cannot leave', 'ip route add default via ROUTER');
  }

  if (opts.mode === 'nat') {
    const dip = opts.dip!;
    add(gw === dip, 'default gateway is the DIP', gw ? `default via ${gw}` : 'no default route', `ip route replace default via ${dip}`);
    const onLink = await connectedCovers(host, dip);
    add(onLink !== null, 'DIP on a connected subnet', onLink ? `${dip} is on ${onLink}` : `no connected route covers ${dip}`, `ip addr add RIP/PREFIX dev IFACE (a subnet holding ${dip})`);
    const h = await holders(host, vip);
    add(h.length === 0, 'VIP not local', h.length ? `${vip} is on ${h.map((x) => x.dev).join(', ')}: NAT real servers answer from their own RIP` : `${vip} is not a local address`, h.map((x) => `ip addr del ${vip}/${x.len} dev ${x.dev}`).join(' && '));
  }

  if (opts.mode === 'tun') {
    const dir = opts.stateDir ?? DEFAULT_STATE_DIR;
    const paths = statePaths(dir, await netnsId(host));
    const st = loadState(paths.state);
    const kernel = await kernelHasIpip(host);
    let dev: string;
    if (st?.decap?.kind === 'user' || (!kernel && st?.decap?.kind !== 'kernel')) {
      dev = st?.decap?.dev ?? opts.tunDev ?? DEFAULT_TUN_DEV;
      const pid = st?.decap?.pid;
      const alive = !!pid && pidAlive(pid, 'decap-main');
      add(alive, 'IPIP decapsulator running', alive ? `userspace decapsulator pid ${pid}` : kernel ? 'not running' : 'this kernel has no ipip and the userspace decapsulator is not running', `tsvs realserver setup --mode tun --vip ${vip}${opts.stateDir ? ` --state-dir ${opts.stateDir}` : ''}`);
      const raw = await rawIpipSocketOpen(host);
      add(raw, 'raw socket for IP protocol 4', raw ? 'open: IPIP packets are received (and not answered with ICMP unreachable)' : 'none open: IPIP packets are dropped', 'start the decapsulator (tsvs realserver setup --mode tun ...)');
    } else {
      dev = 'tunl0';
      const l = ls.find((x) => x.name === 'tunl0');
      add(!!l && l.up, 'tunl0 up', l ? (l.up ? 'tunl0 is up' : 'tunl0 is down') : 'no tunl0', l ? 'ip link set tunl0 up' : 'modprobe ipip && ip link set tunl0 up');
    }
    const h = await holders(host, vip);
    const onDev = h.find((x) => x.dev === dev);
    add(!!onDev && onDev.len === 32, `VIP on ${dev}`, onDev ? `${vip}/${onDev.len} on ${dev}` : `${vip} is not on ${dev}`, `ip addr add ${vip}/32 dev ${dev}`);
    const v = await readSysctls(host, [conf('all', 'rp_filter'), conf(dev, 'rp_filter')]);
    const all = v.get(conf('all', 'rp_filter'));
    const d = v.get(conf(dev, 'rp_filter'));
    add(all === 0 && d === 0, 'rp_filter off', `all=${all ?? '?'} ${dev}=${d ?? '?'}; both must be 0 since decapsulated packets come from clients routed elsewhere`, `sysctl -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.${dev}.rp_filter=0`);
    await arpChecks();
    add(gw !== null, 'default route', gw ? `via ${gw}` : 'none: replies to clients cannot leave', 'ip route add default via ROUTER');
  }
  return res;
}

/** The connected (link) route covering `ip`, as "PREFIX dev IF", or null. */
async function connectedCovers(host: RsHost, ip: string): Promise<string | null> {
  const out = (await sh(host, 'ip -4 route show scope link')).stdout;
  const a = ipToU32(ip);
  for (const line of out.split('\n')) {
    const m = /^([\d.]+)(?:\/(\d+))?\s.*dev (\S+)/.exec(line);
    if (!m) continue;
    const len = m[2] ? Number(m[2]) : 32;
    const mask = prefixToMask(len);
    if (((ipToU32(m[1]!) & mask) >>> 0) === ((a & mask) >>> 0)) return `${m[1]}/${len} dev ${m[3]}`;
  }
  return null;
}

/** /proc/net/raw lists raw sockets of this namespace; the local "port" column is the protocol. */
async function rawIpipSocketOpen(host: RsHost): Promise<boolean> {
  const out = (await sh(host, 'cat /proc/net/raw')).stdout;
  return out.split('\n').some((l) => /^\s*\d+:\s+[0-9A-F]{8}:0004\s/i.test(l));
}

/** Undoes setup: stops the decapsulator, removes the VIP, restores sysctls and the default route. */
export async function realServerTeardown(host: RsHost, opts: RealServerOptions): Promise<string[]> {
  validate(opts);
  const dir = opts.stateDir ?? DEFAULT_STATE_DIR;
  const paths = statePaths(dir, await netnsId(host));
  const st = loadState(paths.state);
  const did: string[] = [];
  if (st?.decap?.kind === 'user' && st.decap.pid) {
    const pid = st.decap.pid;
    if (pidAlive(pid, 'decap-main')) {
      process.kill(pid, 'SIGTERM');
      try {
        await waitFor('the decapsulator to exit', () => !pidAlive(pid, 'decap-main'), 3000);
      } catch {
        if (pidAlive(pid, 'decap-main')) process.kill(pid, 'SIGKILL');
      }
      did.push(`stopped the userspace decapsulator (pid ${pid})`);
    }
  }
  const vipDev = st?.vipDev ?? (opts.mode === 'dr' ? 'lo' : opts.mode === 'tun' ? (st?.decap?.dev ?? 'tunl0') : undefined);
  if (vipDev && (await holders(host, opts.vip)).some((h) => h.dev === vipDev && h.len === 32)) {
    await mustSh(host, 'ip addr del "$1/32" dev "$2"', opts.vip, vipDev);
    did.push(`${opts.vip}/32 removed from ${vipDev}`);
  }
  if (opts.mode === 'nat' && st && st.prevDefault !== undefined) {
    const gw = await defaultGateway(host);
    if (gw === (st.dip ?? opts.dip)) {
      await sh(host, 'ip route del default');
      if (st.prevDefault) await mustSh(host, `ip route add ${st.prevDefault}`);
      did.push(st.prevDefault ? `default route restored: ${st.prevDefault}` : 'default route via the DIP removed');
    }
  }
  // Without a record (setup ran elsewhere or the record was lost), fall back to the kernel defaults.
  const restore = new Map<string, number>();
  if (st) {
    for (const [k, v] of Object.entries(st.sysctl)) restore.set(k, v);
  } else if (opts.mode !== 'nat') {
    for (const k of (await arpHiding(host)).keys()) restore.set(k, 0);
  }
  // Interfaces may have gone since setup (the decapsulator's TUN device): skip keys that no longer exist.
  const present = await readSysctls(host, [...restore.keys()]);
  for (const k of [...restore.keys()]) if (!present.has(k)) restore.delete(k);
  await writeSysctls(host, restore);
  if (restore.size) did.push(`${restore.size} sysctls restored`);
  for (const f of [paths.state, paths.pid, paths.log]) rmSync(f, { force: true });
  return did;
}

/** Renders check results as PASS/FAIL lines, each failure followed by its fix. */
export function formatChecks(results: CheckResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${r.ok ? 'PASS' : 'FAIL'}  ${r.what}: ${r.detail}`);
    if (!r.ok && r.fix) lines.push(`      fix: ${r.fix}`);
  }
  return lines.join('\n') + '\n';
}
