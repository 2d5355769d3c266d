// The lab router's resilient ECMP: BIRD's multipath routes (in a kernel table nothing forwards by) mirrored into Linux resilient nexthop groups in the main table.
//
// BIRD 2.0 installs a multipath route as a plain list of next hops (RTA_MULTIPATH), which Linux
// forwards by hash-threshold: adding a 4th next hop re-draws the boundaries of the hash space and
// moves about half of the flows. Production routers hash resiliently (a table of buckets, each owned
// by one next hop; a change reassigns only the buckets it must). Linux has that too since 5.13, as
// nexthop objects (`ip nexthop ... type resilient`), which BIRD 2.0's kernel protocol cannot target.
// So the router's BIRD writes its merged routes to BIRD_TABLE, no rule looks that table up, and this
// program keeps, per route there, one resilient group of the same next hops and a main-table route
// through it. BIRD stays the one that decides (its best paths, BFD, withdrawals); this only changes
// how the kernel spreads flows over what BIRD chose.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { run } from './netns.ts';

/** BIRD's kernel protocol exports here; nothing forwards by it (no `ip rule` points at it). */
export const BIRD_TABLE = 100;
/** rtm_protocol of the routes and nexthop objects this program owns (unnamed in rt_protos). */
export const RESILIENT_PROTO = 240;
/** Buckets per group: with 3 or 4 next hops each owns 32-43, so a change moves close to its exact share. */
export const BUCKETS = 128;
/** The metric of the programmed routes (below the lab's `unreachable` fallback at 4000). */
export const METRIC = 32;
/** Group ids start here, single next hops below it. */
export const GROUP_BASE = 65536;

export interface Hop {
  gateway: string;
  dev: string;
}

/** A route of BIRD's table: destination and its next hops. */
export interface BirdRoute {
  dst: string;
  hops: Hop[];
}

/** A nexthop object this program owns: a single next hop or a group of them. */
export interface NexthopObject {
  id: number;
  gateway?: string;
  dev?: string;
  group?: number[];
}

/** A main-table route this program owns. */
export interface OwnRoute {
  dst: string;
  nhid: number;
}

/** What the kernel holds now: BIRD's routes, our nexthop objects and our main-table routes. */
export interface FibView {
  bird: BirdRoute[];
  nexthops: NexthopObject[];
  routes: OwnRoute[];
}

const prefix = (dst: string) => (dst.includes('/') ? dst : `${dst}/32`);

/**
 * The `ip -batch` lines that bring the main table in line with BIRD's table: next-hop objects
 * added first, groups replaced only when their member set changed (a replace of a resilient group
 * keeps every bucket whose next hop stays), routes pointed at them, and what BIRD no longer has
 * removed (route before group before next hop). Nothing when they already agree.
 */
export function planResilient(v: FibView): string[] {
  const out: string[] = [];
  const singles = new Map<string, number>();
  const groups = new Map<number, number[]>();
  const used = new Set<number>();
  for (const n of v.nexthops) {
    used.add(n.id);
    if (n.group) groups.set(n.id, [...n.group].sort((a, b) => a - b));
    else if (n.gateway && n.dev) singles.set(`${n.gateway}%${n.dev}`, n.id);
  }
  const free = (from: number) => {
    let id = from;
    while (used.has(id)) id++;
    used.add(id);
    return id;
  };
  const routeOf = new Map(v.routes.map((r) => [prefix(r.dst), r.nhid]));
  const keepSingles = new Set<number>();
  const keepGroups = new Set<number>();
  const wanted = new Set<string>();
  for (const r of v.bird) {
    if (r.hops.length === 0) continue;
    const dst = prefix(r.dst);
    wanted.add(dst);
    const members: number[] = [];
    for (const h of r.hops) {
      const k = `${h.gateway}%${h.dev}`;
      let id = singles.get(k);
      if (id === undefined) {
        id = free(1);
        singles.set(k, id);
        out.push(`nexthop add id ${id} via ${h.gateway} dev ${h.dev} proto ${RESILIENT_PROTO}`);
      }
      keepSingles.add(id);
      members.push(id);
    }
    members.sort((a, b) => a - b);
    const current = routeOf.get(dst);
    const gid = current !== undefined && groups.has(current) ? current : free(GROUP_BASE);
    keepGroups.add(gid);
    if (groups.get(gid)?.join('/') !== members.join('/')) {
      out.push(`nexthop replace id ${gid} group ${members.join('/')} type resilient buckets ${BUCKETS} idle_timer 0 proto ${RESILIENT_PROTO}`);
    }
    if (current !== gid) out.push(`route replace ${dst} nhid ${gid} proto ${RESILIENT_PROTO} metric ${METRIC}`);
  }
  for (const [dst] of routeOf) if (!wanted.has(dst)) out.push(`route del ${dst} proto ${RESILIENT_PROTO} metric ${METRIC}`);
  for (const [gid] of groups) if (!keepGroups.has(gid)) out.push(`nexthop del id ${gid}`);
  for (const [, id] of singles) if (!keepSingles.has(id)) out.push(`nexthop del id ${id}`);
  return out;
}

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  nhid?: number;
  nexthops?: Array<{ gateway?: string; dev?: string }>;
}

/** Parses `ip -j route show table T` into BirdRoutes (a single-hop route or a multipath one). */
export function parseBirdRoutes(json: string): BirdRoute[] {
  const rows = (json.trim() ? JSON.parse(json) : []) as IpRoute[];
  return rows.map((r) => ({
    dst: r.dst,
    hops: (r.nexthops ?? [{ gateway: r.gateway, dev: r.dev }]).flatMap((h) => (h.gateway && h.dev ? [{ gateway: h.gateway, dev: h.dev }] : [])),
  }));
}

/** Parses `ip -j nexthop show protocol P`. */
export function parseNexthops(json: string): NexthopObject[] {
  const rows = (json.trim() ? JSON.parse(json) : []) as Array<{ id: number; gateway?: string; dev?: string; group?: Array<{ id: number }> }>;
  return rows.map((n) => ({ id: n.id, ...(n.gateway ? { gateway: n.gateway } : {}), ...(n.dev ? { dev: n.dev } : {}), ...(n.group ? { group: n.group.map((g) => g.id) } : {}) }));
}

/** Runs `ip -batch` lines; resolves with its stdout, rejects (stderr, lines) when a line fails. */
function ipBatch(lines: readonly string[], json = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', [...(json ? ['-j'] : []), '-batch', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`ip -batch failed (${code}): ${err.trim()}\n${lines.join('\n')}`))));
    child.stdin.end(lines.join('\n') + '\n');
  });
}

/** Reads the kernel's current view (in this process's namespace), in one `ip -j -batch`: one JSON array a line. */
export async function readFib(): Promise<FibView> {
  const out = await ipBatch([`route show table ${BIRD_TABLE}`, `nexthop show protocol ${RESILIENT_PROTO}`, `route show protocol ${RESILIENT_PROTO}`], true);
  const [bird = '', nh = '', routes = ''] = out.split('\n');
  const own = ((routes.trim() ? JSON.parse(routes) : []) as IpRoute[]).filter((r) => r.nhid !== undefined).map((r) => ({ dst: r.dst, nhid: r.nhid! }));
  return { bird: parseBirdRoutes(bird), nexthops: parseNexthops(nh), routes: own };
}

/** Applies a plan in one `ip -batch` (stops at the first failing line). */
export async function applyPlan(lines: readonly string[]): Promise<void> {
  await ipBatch(lines);
}

/** Fails unless this kernel has resilient nexthop groups (Linux 5.13+): a throwaway group on lo. */
export async function probeResilient(): Promise<void> {
  const id = GROUP_BASE - 2;
  await applyPlan([
    `nexthop replace id ${id} dev lo proto ${RESILIENT_PROTO}`,
    `nexthop replace id ${id + 1} group ${id} type resilient buckets 8 proto ${RESILIENT_PROTO}`,
    `nexthop del id ${id + 1}`,
    `nexthop del id ${id}`,
  ]);
}

/**
 * Keeps the main table in line with BIRD_TABLE: a sync on every route change the kernel reports
 * (`ip monitor route`, so a withdrawal reaches the forwarding table within milliseconds), and one
 * every `periodMs` in case an event was missed. `log` gets each applied plan.
 */
export class ResilientFib {
  private running = false;
  private again = false;
  private monitor: ReturnType<typeof spawn> | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly log: (line: string) => void,
    private readonly periodMs = 1000,
  ) {}

  /** One sync now (coalesced: a request while one runs makes it run once more afterwards). */
  async sync(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        const plan = planResilient(await readFib());
        if (plan.length) {
          await applyPlan(plan);
          this.log(plan.join('; '));
        }
      } while (this.again);
    } finally {
      this.running = false;
    }
  }

  private kick = () => {
    this.sync().catch((e: unknown) => this.log(`sync failed: ${(e as Error).message}`));
  };

  /** First sync (its errors are thrown: e.g. a kernel without resilient groups), then follows changes. */
  async start(): Promise<void> {
    await probeResilient();
    await this.sync();
    this.monitor = spawn('ip', ['monitor', 'route'], { stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: this.monitor.stdout! }).on('line', this.kick);
    this.timer = setInterval(this.kick, this.periodMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.monitor?.kill('SIGTERM');
  }
}

/**
 * From outside: the resilient group of route `dst` in namespace `ns`, as bucket index → the gateway
 * that owns it (`ip nexthop bucket show`). Empty when the route is not programmed (or goes meanwhile).
 */
export async function groupBuckets(ns: string, dst: string): Promise<string[]> {
  const route = await run('ip', ['-n', ns, '-j', 'route', 'show', dst, 'proto', String(RESILIENT_PROTO)]);
  const nhid = route.code === 0 && route.stdout.trim() ? (JSON.parse(route.stdout) as Array<{ nhid?: number }>)[0]?.nhid : undefined;
  if (nhid === undefined || nhid < GROUP_BASE) return [];
  const [nh, b] = await Promise.all([
    run('ip', ['-n', ns, '-j', 'nexthop', 'show', 'protocol', String(RESILIENT_PROTO)]),
    run('ip', ['-n', ns, '-j', 'nexthop', 'bucket', 'show', 'id', String(nhid)]),
  ]);
  if (nh.code !== 0 || b.code !== 0) return [];
  const gw = new Map(parseNexthops(nh.stdout).map((n) => [n.id, n.gateway ?? '?']));
  const out: string[] = [];
  for (const x of JSON.parse(b.stdout) as Array<{ bucket: { index: number; nhid: number } }>) out[x.bucket.index] = gw.get(x.bucket.nhid) ?? '?';
  return out;
}
