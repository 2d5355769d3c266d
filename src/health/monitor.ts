// The health monitor: per-real-server check state machines (rise/fall, retry delay, alpha), per-service quorum, sorry server and omega, applied through control requests.
import type { RequestHandler } from '../ctl/server.ts';
import type { DestConfig, DestKey, RequestBody, Response, ServiceKey } from '../ctl/protocol.ts';
import { PROTOCOL_VERSION } from '../ctl/protocol.ts';
import { execWithTimeout, runCheck, type CheckResult, type CheckSpec } from './checks.ts';

/** Time source and timers; tests inject a manual clock. */
export interface Clock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** One check of one real server, with its schedule. */
export interface CheckPlan {
  spec: CheckSpec;
  intervalMs: number;
  /** Delay before the next probe while an up server is failing but has not reached `fall`. */
  retryDelayMs: number;
  rise: number;
  fall: number;
  /** The first probe waits a random time up to this. */
  warmupMs: number;
  /** Start as failed. */
  alpha: boolean;
}

export interface ServerPlan {
  /** The real server as the director should carry it when up (weight = configured weight). */
  dest: DestConfig;
  checks: CheckPlan[];
  /** Weight 0 instead of removal when down. */
  inhibit: boolean;
  notifyUp?: string;
  notifyDown?: string;
}

export interface PoolPlan {
  /** "TCP 198.18.1.100:80", for logs and snapshots. */
  name: string;
  service: ServiceKey;
  servers: ServerPlan[];
  sorry?: DestConfig;
  sorryInhibit: boolean;
  quorum: number;
  hysteresis: number;
  quorumUp?: string;
  quorumDown?: string;
  omega: boolean;
}

export type HealthLogLevel = 'info' | 'warn' | 'error';
/** Receives each state change once (and request failures). */
export type HealthLog = (level: HealthLogLevel, msg: string, fields?: Record<string, unknown>) => void;

export interface MonitorDeps {
  /** The director's one control path. */
  handler: RequestHandler;
  log: HealthLog;
  clock?: Clock;
  /** Runs one probe (default: runCheck in this process; see prober.ts for namespaces). */
  probe?: (spec: CheckSpec) => Promise<CheckResult>;
  /** Runs a quorum_up/quorum_down/notify command (default: /bin/sh -c, 30 s timeout). */
  runScript?: (cmd: string) => Promise<void>;
  random?: () => number;
  /** Delay before retrying a pool whose control requests failed (default 5 s). */
  resyncMs?: number;
}

export interface ServerSnapshot {
  addr: string;
  port: number;
  state: 'up' | 'down';
  /** Clock time (ms) of the last transition; null before any. */
  lastChange: number | null;
  checks: number;
  failures: number;
  transitions: number;
  lastLatencyMs: number | null;
  lastDetail: string;
  /** Weight the monitor wants in the table (null = removed). */
  weight: number | null;
}

export interface PoolSnapshot {
  service: string;
  quorumUp: boolean;
  sorryActive: boolean;
  liveWeight: number;
  servers: ServerSnapshot[];
}

export interface HealthSnapshot {
  pools: PoolSnapshot[];
  counters: { checks: number; failures: number; transitions: number; quorumChanges: number; requestErrors: number };
}

const destKey = (d: DestKey) => `${d.addr}:${d.port}`;

class CheckerState {
  up: boolean;
  successes = 0;
  fails = 0;
  timer: unknown = null;
  constructor(readonly plan: CheckPlan) {
    this.up = !plan.alpha;
  }
}

class ServerState {
  alive: boolean;
  readonly checkers: CheckerState[];
  dynamicWeight: number | null = null;
  lastChange: number | null = null;
  checks = 0;
  failures = 0;
  transitions = 0;
  lastLatencyMs: number | null = null;
  lastDetail = '';
  constructor(readonly plan: ServerPlan) {
    this.checkers = plan.checks.map((c) => new CheckerState(c));
    this.alive = this.checkers.every((c) => c.up);
    if (!plan.checks.length) this.lastDetail = 'not checked';
    else if (!this.alive) this.lastDetail = 'alpha: down until checked';
  }
  get weight(): number {
    return this.dynamicWeight ?? this.plan.dest.weight;
  }
}

class PoolState {
  readonly servers: ServerState[];
  quorumUp = true;
  /** What the director carries, as far as we know (null = not synced). */
  applied: Map<string, DestConfig> | null = null;
  chain: Promise<void> = Promise.resolve();
  resyncTimer: unknown = null;
  constructor(readonly plan: PoolPlan) {
    this.servers = plan.servers.map((s) => new ServerState(s));
  }
  liveWeight(): number {
    let sum = 0;
    for (const s of this.servers) if (s.alive) sum += s.weight;
    return sum;
  }
  get sorryActive(): boolean {
    return !!this.plan.sorry && !this.quorumUp;
  }
  /** The weight a server should have in the table, or null when it should be absent. */
  desired(s: ServerState): number | null {
    if (s.alive && !this.sorryActive) return s.weight;
    return s.plan.inhibit ? 0 : null;
  }
  desiredSorry(): number | null {
    if (!this.plan.sorry) return null;
    if (this.sorryActive) return this.plan.sorry.weight;
    return this.plan.sorryInhibit ? 0 : null;
  }
}

/**
 * Runs the checks of every pool and keeps the director's table in line with their results. All
 * changes go through the control handler as add-server / edit-server / delete-server requests.
 */
export class HealthMonitor {
  private readonly pools: PoolState[];
  private readonly clock: Clock;
  private readonly probe: (spec: CheckSpec) => Promise<CheckResult>;
  private readonly runScript: (cmd: string) => Promise<void>;
  private readonly random: () => number;
  private readonly resyncMs: number;
  private running = false;
  private stopped = false;
  private reqId = 0;
  private readonly counters = { checks: 0, failures: 0, transitions: 0, quorumChanges: 0, requestErrors: 0 };

  constructor(plans: readonly PoolPlan[], private readonly deps: MonitorDeps) {
    this.pools = plans.map((p) => new PoolState(p));
    this.clock = deps.clock ?? systemClock;
    this.probe = deps.probe ?? runCheck;
    this.runScript = deps.runScript ?? defaultRunScript(deps.log);
    this.random = deps.random ?? Math.random;
    this.resyncMs = deps.resyncMs ?? 5000;
  }

  /**
   * Reads each service from the director, applies the initial state (alpha servers out, sorry server
   * in when quorum is down) and starts the probes. Resolves once the initial state is applied.
   */
  async start(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    for (const pool of this.pools) {
      const sum = pool.liveWeight();
      const p = pool.plan;
      pool.quorumUp = sum >= p.quorum + p.hysteresis;
      if (!pool.quorumUp) {
        this.counters.quorumChanges++;
        this.deps.log('warn', `${p.name}: starting with quorum down (live weight ${sum} < ${p.quorum}+${p.hysteresis})`, { service: p.name, liveWeight: sum });
        if (p.quorumDown) void this.runScript(p.quorumDown);
      }
      this.reconcile(pool);
    }
    await Promise.all(this.pools.map((p) => p.chain));
    for (const pool of this.pools) {
      for (const s of pool.servers) {
        for (const c of s.checkers) {
          const w = c.plan.warmupMs > 0 ? Math.floor(this.random() * c.plan.warmupMs) : 0;
          c.timer = this.clock.setTimer(() => void this.tick(pool, s, c), w);
        }
      }
    }
  }

  /**
   * Stops all probes. With omega, runs the quorum_down command of pools that had quorum and the
   * notify_down of live servers, as keepalived does on shutdown. With removeServers, also deletes
   * the servers (and sorry server) this monitor manages from the director.
   */
  async stop(opts: { removeServers?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const scripts: Promise<void>[] = [];
    for (const pool of this.pools) {
      this.clock.clearTimer(pool.resyncTimer);
      for (const s of pool.servers) for (const c of s.checkers) this.clock.clearTimer(c.timer);
      const p = pool.plan;
      if (p.omega) {
        for (const s of pool.servers) if (s.alive && s.plan.notifyDown) scripts.push(this.runScript(s.plan.notifyDown));
        if (pool.quorumUp && p.quorumDown) {
          this.deps.log('info', `${p.name}: shutting down, quorum down (omega)`, { service: p.name });
          scripts.push(this.runScript(p.quorumDown));
        }
      }
      if (opts.removeServers) {
        pool.chain = pool.chain.then(async () => {
          if (!pool.applied && !(await this.sync(pool))) return;
          const keys = p.servers.map((s) => s.dest as DestKey);
          if (p.sorry) keys.push(p.sorry);
          for (const k of keys) if (pool.applied!.has(destKey(k))) await this.apply(pool, k, null);
        });
      }
    }
    await Promise.all([...scripts, ...this.pools.map((p) => p.chain)]);
  }

  /** Per-service and per-server health, for tsvsadm --json and metrics. */
  snapshot(): HealthSnapshot {
    return {
      pools: this.pools.map((pool) => ({
        service: pool.plan.name,
        quorumUp: pool.quorumUp,
        sorryActive: pool.sorryActive,
        liveWeight: pool.liveWeight(),
        servers: pool.servers.map((s) => ({
          addr: s.plan.dest.addr,
          port: s.plan.dest.port,
          state: s.alive ? 'up' : 'down',
          lastChange: s.lastChange,
          checks: s.checks,
          failures: s.failures,
          transitions: s.transitions,
          lastLatencyMs: s.lastLatencyMs,
          lastDetail: s.lastDetail,
          weight: pool.desired(s),
        })),
      })),
      counters: { ...this.counters },
    };
  }

  /** Resolves when all pending control requests have been sent (tests and reload use it). */
  async idle(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.chain));
  }

  private async tick(pool: PoolState, s: ServerState, c: CheckerState): Promise<void> {
    c.timer = null;
    if (this.stopped) return;
    let r: CheckResult;
    try {
      r = await this.probe(c.plan.spec);
    } catch (e) {
      r = { ok: false, latencyMs: 0, detail: `probe error: ${(e as Error)?.message ?? String(e)}` };
    }
    if (this.stopped) return;
    this.counters.checks++;
    s.checks++;
    s.lastLatencyMs = r.latencyMs;
    s.lastDetail = r.detail;
    let next = c.plan.intervalMs;
    if (r.ok) {
      c.fails = 0;
      c.successes++;
      if (!c.up && c.successes >= c.plan.rise) this.setChecker(pool, s, c, true, r);
      if (r.weight !== undefined && r.weight !== s.dynamicWeight) {
        const old = s.weight;
        s.dynamicWeight = r.weight;
        if (s.weight !== old) {
          this.deps.log('info', `${pool.plan.name}: ${destKey(s.plan.dest)} weight ${old} -> ${s.weight} (dynamic)`, { service: pool.plan.name, server: destKey(s.plan.dest), weight: s.weight });
          if (s.alive) this.changed(pool);
        }
      }
    } else {
      this.counters.failures++;
      s.failures++;
      c.successes = 0;
      c.fails++;
      if (c.up && c.fails >= c.plan.fall) this.setChecker(pool, s, c, false, r);
      else if (c.up) next = c.plan.retryDelayMs;
    }
    if (!this.stopped) c.timer = this.clock.setTimer(() => void this.tick(pool, s, c), next);
  }

  private setChecker(pool: PoolState, s: ServerState, c: CheckerState, up: boolean, r: CheckResult): void {
    c.up = up;
    const alive = s.checkers.every((x) => x.up);
    if (alive === s.alive) return;
    s.alive = alive;
    s.transitions++;
    s.lastChange = this.clock.now();
    this.counters.transitions++;
    const p = pool.plan;
    const action = alive ? (s.plan.inhibit ? 'enabled' : 'added') : s.plan.inhibit ? 'inhibited (weight 0)' : 'removed';
    this.deps.log(alive ? 'info' : 'warn', `${p.name}: real server ${destKey(s.plan.dest)} is ${alive ? 'up' : 'down'} (${r.detail}); ${action}`, {
      service: p.name,
      server: destKey(s.plan.dest),
      state: alive ? 'up' : 'down',
      detail: r.detail,
    });
    const script = alive ? s.plan.notifyUp : s.plan.notifyDown;
    if (script) void this.runScript(script);
    this.changed(pool);
  }

  /** A server's liveness or weight changed: re-evaluate quorum, then bring the table in line. */
  private changed(pool: PoolState): void {
    const p = pool.plan;
    const sum = pool.liveWeight();
    const threshold = p.quorum + (pool.quorumUp ? -p.hysteresis : p.hysteresis);
    if (!pool.quorumUp && sum >= threshold) {
      pool.quorumUp = true;
      this.counters.quorumChanges++;
      this.deps.log('info', `${p.name}: gained quorum (live weight ${sum} >= ${threshold})${p.sorry ? `; sorry server ${destKey(p.sorry)} out` : ''}`, {
        service: p.name,
        liveWeight: sum,
        quorum: 'up',
      });
      if (p.quorumUp) void this.runScript(p.quorumUp);
    } else if (pool.quorumUp && (sum === 0 || sum < threshold)) {
      pool.quorumUp = false;
      this.counters.quorumChanges++;
      this.deps.log('warn', `${p.name}: lost quorum (live weight ${sum} < ${threshold})${p.sorry ? `; sorry server ${destKey(p.sorry)} in` : ''}`, {
        service: p.name,
        liveWeight: sum,
        quorum: 'down',
      });
      if (p.quorumDown) void this.runScript(p.quorumDown);
    }
    this.reconcile(pool);
  }

  /** Queues one pass that makes the director's table match the desired state of the pool. */
  private reconcile(pool: PoolState): void {
    pool.chain = pool.chain.then(async () => {
      if (this.stopped) return;
      if (!pool.applied && !(await this.sync(pool))) return this.scheduleResync(pool);
      for (const s of pool.servers) {
        if (!(await this.apply(pool, s.plan.dest, pool.desired(s)))) return this.scheduleResync(pool);
      }
      if (pool.plan.sorry && !(await this.apply(pool, pool.plan.sorry, pool.desiredSorry()))) return this.scheduleResync(pool);
    });
  }

  private scheduleResync(pool: PoolState): void {
    if (this.stopped || pool.resyncTimer) return;
    pool.resyncTimer = this.clock.setTimer(() => {
      pool.resyncTimer = null;
      this.reconcile(pool);
    }, this.resyncMs);
  }

  private async request(body: RequestBody): Promise<Response> {
    const req = { v: PROTOCOL_VERSION, id: ++this.reqId, ...body } as Parameters<RequestHandler>[0];
    try {
      return await this.deps.handler(req);
    } catch (e) {
      return { v: PROTOCOL_VERSION, id: req.id, ok: false, error: { code: 'EINVAL', op: 'other', message: (e as Error)?.message ?? String(e) } };
    }
  }

  /** Reads the service's real servers from the director. */
  private async sync(pool: PoolState): Promise<boolean> {
    const r = await this.request({ op: 'list', service: pool.plan.service });
    if (!r.ok) {
      this.counters.requestErrors++;
      this.deps.log('error', `${pool.plan.name}: cannot read the service from the director: ${r.error.message}`, { service: pool.plan.name });
      return false;
    }
    const svc = (r.result as { services: Array<{ dests: DestConfig[] }> }).services[0];
    pool.applied = new Map();
    for (const d of svc?.dests ?? []) {
      const { addr, port, fwd, weight, uThreshold, lThreshold, tunType, tunPort, tunCsum } = d;
      pool.applied.set(destKey(d), { addr, port, fwd, weight, uThreshold, lThreshold, tunType, tunPort, tunCsum });
    }
    return true;
  }

  /** Makes one server present with `weight`, or absent (null). False when the director refused. */
  private async apply(pool: PoolState, dest: DestKey, weight: number | null): Promise<boolean> {
    const key = destKey(dest);
    const cur = pool.applied!.get(key);
    let body: RequestBody;
    let next: DestConfig | null;
    if (weight === null) {
      if (!cur) return true;
      body = { op: 'delete-server', service: pool.plan.service, dest: { addr: dest.addr, port: dest.port } };
      next = null;
    } else if (!cur) {
      const conf = pool.plan.servers.find((s) => destKey(s.dest) === key)?.dest ?? pool.plan.sorry!;
      const added: DestConfig = { ...conf, weight };
      next = added;
      body = { op: 'add-server', service: pool.plan.service, dest: added };
    } else if (cur.weight !== weight) {
      const edited: DestConfig = { ...cur, weight };
      next = edited;
      body = { op: 'edit-server', service: pool.plan.service, dest: edited };
    } else return true;
    const r = await this.request(body);
    if (!r.ok) {
      this.counters.requestErrors++;
      pool.applied = null;
      this.deps.log('error', `${pool.plan.name}: ${body.op} ${key} failed: ${r.error.message}`, { service: pool.plan.name, server: key });
      return false;
    }
    if (next) pool.applied!.set(key, next);
    else pool.applied!.delete(key);
    return true;
  }
}

function defaultRunScript(log: HealthLog): (cmd: string) => Promise<void> {
  return async (cmd) => {
    const r = await execWithTimeout(['/bin/sh', '-c', cmd], 30_000);
    if (r.error || r.timedOut || r.code !== 0) {
      log('warn', `command failed: ${cmd}: ${r.error ?? (r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`)}`, { command: cmd });
    }
  };
}
