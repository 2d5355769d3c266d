// Route announcement: which VIPs this director announces (running, quorum, not drained) and driving BIRD to announce exactly those.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { BgpConfig } from '../ctl/config.ts';
import type { AnnounceStatus, AnnouncedVip, AnnouncePeer } from '../ctl/protocol.ts';
import { birdConfig, peerProtocol } from './bird-conf.ts';
import { birdCommand, parseBfdSessions, parseProtocolDetail, parseProtocols } from './birdc.ts';

/** A virtual service as the announcer sees it: its address and its name in the health snapshot. */
export interface AnnouncedService {
  addr: string;
  /** "TCP 198.18.1.100:80", the health monitor's pool name. */
  name: string;
}

/**
 * Which VIPs to announce. A VIP is announced while the director is not drained and every virtual
 * service on it has quorum (a service without health checks always has): a director that cannot
 * serve one of a VIP's services leaves the VIP to the directors that can. `quorum` maps pool names
 * to their quorum state; a service missing from it is unchecked.
 */
export function decideVips(
  vips: readonly string[],
  services: readonly AnnouncedService[],
  quorum: ReadonlyMap<string, boolean>,
  drained: boolean,
  dataPlaneAlive = true,
): AnnouncedVip[] {
  return vips.map((v) => {
    const prefix = `${v}/32`;
    if (drained) return { prefix, announced: false, reason: 'drained' };
    if (!dataPlaneAlive) return { prefix, announced: false, reason: 'data plane not answering' };
    const down = services.filter((s) => s.addr === v && quorum.get(s.name) === false).map((s) => s.name);
    if (down.length) return { prefix, announced: false, reason: `no quorum: ${down.join(', ')}` };
    return { prefix, announced: true, reason: 'quorum' };
  });
}

export type AnnounceLog = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface AnnouncerOptions {
  bgp: BgpConfig;
  /** The VIPs and services of the current configuration (read on every evaluation: a reload may change them). */
  vips: () => string[];
  services: () => AnnouncedService[];
  /** The health monitor's current quorum per pool name (polled). */
  quorum: () => ReadonlyMap<string, boolean>;
  /** tsvsd's control socket: the BIRD files go next to it unless bgp.state_dir says otherwise. */
  controlSocket: string;
  log: AnnounceLog;
  /** False while the data plane does not answer (a stuck worker would black-hole its share of the flows). */
  dataPlaneAlive?: () => boolean;
  /** How often quorum is re-read (default 200 ms). */
  pollMs?: number;
}

function findBird(explicit?: string): string {
  if (explicit) return explicit;
  for (const d of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (d && existsSync(join(d, 'bird'))) return join(d, 'bird');
  }
  throw new Error('bgp: the BIRD 2 routing daemon is not installed (apt-get install bird2), or give bgp.bird');
}

function findSetpriv(): string | null {
  for (const d of (process.env.PATH ?? '').split(':').concat(['/usr/bin', '/bin'])) if (d && existsSync(join(d, 'setpriv'))) return join(d, 'setpriv');
  return null;
}

/**
 * Runs BIRD for this director and keeps its announcements equal to `decideVips`. BIRD is started
 * with a parent-death signal (setpriv --pdeathsig KILL), so when tsvsd dies, even by kill -9, BIRD
 * dies with it: its sessions close and the routers withdraw the routes at once (BFD covers a host
 * that dies without closing them).
 */
export class Announcer {
  readonly conf: string;
  readonly ctl: string;
  private child: ChildProcess | null = null;
  private timer: NodeJS.Timeout | null = null;
  private drained = false;
  private stopping = false;
  private current: string[] | null = null;
  private decisions: AnnouncedVip[] = [];
  private applying: Promise<void> = Promise.resolve();
  private readonly bird: string;

  constructor(private readonly o: AnnouncerOptions) {
    const dir = o.bgp.state_dir ?? dirname(o.controlSocket);
    const base = basename(o.controlSocket).replace(/\.sock$/, '');
    this.conf = join(dir, `${base}.bird.conf`);
    this.ctl = join(dir, `${base}.bird.ctl`);
    this.bird = findBird(o.bgp.bird);
  }

  /** Writes the configuration, starts BIRD and waits until its control socket answers. */
  async start(): Promise<void> {
    mkdirSync(dirname(this.conf), { recursive: true });
    this.decisions = decideVips(this.o.vips(), this.o.services(), this.o.quorum(), this.drained, this.o.dataPlaneAlive?.() ?? true);
    this.current = this.decisions.filter((d) => d.announced).map((d) => d.prefix.split('/')[0]!);
    this.writeConf(this.current);
    await this.spawnBird();
    this.timer = setInterval(() => void this.evaluate(), this.o.pollMs ?? 200);
    this.o.log('info', 'bgp: announcing', { announce: this.current, neighbors: this.o.bgp.neighbors.map((n) => n.address), bird: this.ctl });
  }

  private writeConf(announce: readonly string[]): void {
    const tmp = `${this.conf}.tmp`;
    writeFileSync(tmp, birdConfig(this.o.bgp, announce), { mode: 0o600 });
    renameSync(tmp, this.conf);
  }

  private async spawnBird(): Promise<void> {
    const args = ['-f', '-c', this.conf, '-s', this.ctl];
    const setpriv = findSetpriv();
    if (!setpriv) this.o.log('warn', 'bgp: setpriv not found: BIRD would outlive a tsvsd killed with SIGKILL (BFD still withdraws its routes if the host dies)');
    // Its own session: a Ctrl-C on the terminal reaches tsvsd only, which withdraws in order.
    const how = { stdio: ['ignore', 'ignore', 'pipe'] as ('ignore' | 'pipe')[], detached: true };
    const child = setpriv ? spawn(setpriv, ['--pdeathsig', 'KILL', '--', this.bird, ...args], how) : spawn(this.bird, args, how);
    this.child = child;
    let tail = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => {
      tail = (tail + c).slice(-2000);
      for (const line of c.split('\n')) if (line.trim()) this.o.log('info', 'bird', { line: line.trim() });
    });
    child.once('exit', (code, sig) => {
      if (this.child === child) this.child = null;
      if (this.stopping) return;
      this.o.log('error', 'bgp: BIRD exited; its routes are withdrawn; restarting in 1 s', { code, signal: sig });
      setTimeout(() => {
        if (!this.stopping) this.spawnBird().catch((e: Error) => this.o.log('error', 'bgp: BIRD did not restart', { err: e.message }));
      }, 1000).unref();
    });
    const end = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`bgp: BIRD exited at start: ${tail.trim().split('\n').slice(-3).join(' | ')}`);
      try {
        await birdCommand(this.ctl, 'show status', 1000);
        return;
      } catch (e) {
        if (Date.now() > end) throw new Error(`bgp: BIRD's control socket ${this.ctl} did not answer: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Re-reads quorum and drain; when the set of announced VIPs changes, reconfigures BIRD. */
  evaluate(): Promise<void> {
    this.applying = this.applying.then(async () => {
      if (this.stopping) return;
      this.decisions = decideVips(this.o.vips(), this.o.services(), this.o.quorum(), this.drained, this.o.dataPlaneAlive?.() ?? true);
      const want = this.decisions.filter((d) => d.announced).map((d) => d.prefix.split('/')[0]!);
      if (this.current && want.join(',') === this.current.join(',')) return;
      this.writeConf(want);
      try {
        await birdCommand(this.ctl, 'configure', 5000);
        const was = this.current ?? [];
        this.current = want;
        this.o.log('info', 'bgp: announcements changed', {
          announce: want,
          withdrawn: was.filter((v) => !want.includes(v)),
          reasons: Object.fromEntries(this.decisions.map((d) => [d.prefix, d.reason])),
        });
      } catch (e) {
        // Left unequal to `want`: the next poll tries again.
        this.o.log('error', 'bgp: BIRD refused the new configuration', { err: (e as Error).message });
      }
    });
    return this.applying;
  }

  /** Withdraws every VIP (drain) or announces again where quorum allows; resolves once BIRD has the change. */
  async setDrained(drained: boolean): Promise<AnnounceStatus> {
    if (this.drained !== drained) this.o.log('info', drained ? 'bgp: director drained: withdrawing every VIP' : 'bgp: director undrained', {});
    this.drained = drained;
    await this.evaluate();
    return this.status();
  }

  /** The announcer's decisions and BIRD's own view of its sessions. */
  async status(): Promise<AnnounceStatus> {
    const peers: AnnouncePeer[] = [];
    let running = false;
    try {
      const protos = parseProtocols(await birdCommand(this.ctl, 'show protocols'));
      running = true;
      let bfd = new Map<string, string>();
      if (this.o.bgp.bfd !== false) bfd = parseBfdSessions(await birdCommand(this.ctl, 'show bfd sessions').catch(() => []));
      for (let i = 0; i < this.o.bgp.neighbors.length; i++) {
        const name = peerProtocol(i);
        const p = protos.find((x) => x.name === name);
        const d = parseProtocolDetail(await birdCommand(this.ctl, `show protocols all ${name}`).catch(() => []));
        const neighbor = this.o.bgp.neighbors[i]!.address;
        peers.push({
          name,
          neighbor,
          state: p?.state ?? 'missing',
          bgpState: d.bgpState || p?.info || '',
          since: p?.since ?? '',
          exported: d.exported,
          bfd: this.o.bgp.bfd === false ? 'off' : (bfd.get(neighbor) ?? 'none'),
        });
      }
    } catch {
      // BIRD not answering: running stays false, no peers.
    }
    return { enabled: true, drained: this.drained, daemon: 'bird', running, vips: this.decisions, peers, control: this.ctl };
  }

  /** Withdraws everything: BIRD stops (SIGTERM sends each router a Cease) and is killed if it lingers. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await this.applying.catch(() => {});
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(t);
    this.o.log('info', 'bgp: BIRD stopped, routes withdrawn', {});
  }
}

/** What `announce` answers when no `bgp:` is configured. */
export function announceDisabled(): AnnounceStatus {
  return { enabled: false, drained: false, daemon: null, running: false, vips: [], peers: [], control: null };
}
