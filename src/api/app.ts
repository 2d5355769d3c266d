// The admin HTTP API as a hono app: JSON routes mapped onto control requests, /metrics, the dashboard's files, bearer-token auth.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { IncomingMessage } from 'node:http';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import type { RequestHandler } from '../ctl/server.ts';
import type { IpvsErrno } from '../ctl/errors.ts';
import {
  PROTOCOL_VERSION,
  protocolSchemas,
  type DestConfig,
  type DestKey,
  type Request,
  type RequestBody,
  type Response as CtlResponse,
  type ResultMap,
  type ServiceKey,
  type CountersResult,
} from '../ctl/protocol.ts';
import type { HealthSnapshot } from '../health/index.ts';
import { METRICS_CONTENT_TYPE, renderMetrics } from './metrics.ts';
import { ROOT } from '../root.ts';

export type AdminLogLevel = 'debug' | 'info' | 'warn' | 'error';
export type AdminLog = (level: AdminLogLevel, msg: string, fields?: Record<string, unknown>) => void;

export interface AdminAppOptions {
  /** The director's control path (the same one tsvsadm's requests take). */
  handler: RequestHandler;
  /** Health checking's current state; null (or no getter) while it does not run. */
  health?: () => HealthSnapshot | null;
  /** When set, every data route needs `Authorization: Bearer TOKEN`. */
  token?: string;
  /** Serve the dashboard at / (default off). */
  dashboard: boolean;
  /**
   * Host names a request may carry in its Host header when there is no token (DNS-rebinding guard).
   * Undefined = any (unix sockets: only local processes reach them anyway).
   */
  allowedHosts?: ReadonlySet<string>;
  /** Largest request body in bytes (default ADMIN_MAX_BODY). */
  maxBody?: number;
  /** Where refusals are counted (the listener shares it, for its connection limit and /metrics). */
  refusals?: AdminRefusals;
  /** The control socket's refusals, shown in /metrics next to the API's own. */
  controlRefusals?: () => Readonly<Record<string, number>>;
  log: AdminLog;
}

/** The largest body a request may carry; the largest real one (a real server) is under 1 KiB. */
export const ADMIN_MAX_BODY = 64 * 1024;

/** Requests the admin API refused before any route ran, by reason. */
export type AdminRefusals = {
  /** Host header not naming the listener (DNS rebinding). */
  host: number;
  /** A state-changing request from another origin (Origin or Sec-Fetch-Site). */
  crossOrigin: number;
  /** A state-changing request that is not application/json (what an HTML form or a simple fetch sends). */
  contentType: number;
  /** A body over maxBody. */
  tooLarge: number;
  /** Missing or wrong bearer token. */
  token: number;
  /** Over the listener's connection limit. */
  tooManyClients: number;
};

export const newAdminRefusals = (): AdminRefusals => ({ host: 0, crossOrigin: 0, contentType: 0, tooLarge: 0, token: 0, tooManyClients: 0 });

/** Connections over the listener's limit: each request on them is answered 503 and the connection closed. */
export const overLimit = new WeakSet<object>();

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** HTTP status of a refused control request (one mapping, from the errno registry). */
export function httpStatusFor(code: IpvsErrno): ContentfulStatusCode {
  switch (code) {
    case 'EEXIST':
      return 409;
    case 'ESRCH':
    case 'ENOENT':
      return 404;
    case 'EINVAL':
    case 'ERANGE':
    case 'ENODEV':
      return 400;
    case 'EPERM':
      return 403;
    case 'EBUSY':
      return 503;
    case 'ETIMEDOUT':
      return 408;
    default:
      return 500;
  }
}

// ---------------------------------------------------------------------------------------------
// Request bodies. Omitted settings take tsvsadm's defaults (-A/-E/-a/-e), so an edit replaces all
// settings exactly as ipvsadm's does.

const u16 = z.number().int().min(0).max(65535);
const ipAddr = z.union([z.ipv4(), z.ipv6()]);
const serviceKey = z.discriminatedUnion('type', [
  z.object({ type: z.enum(['tcp', 'udp', 'sctp']), addr: ipAddr, port: u16 }).strict(),
  z.object({ type: z.literal('fwmark'), fwmark: z.number().int().min(1).max(0xffffffff), ipv6: z.boolean().optional() }).strict(),
]);
const destKey = z.object({ addr: ipAddr, port: u16 }).strict();

const serviceBody = z
  .object({
    service: serviceKey,
    config: z
      .object({
        scheduler: z.string().min(1).max(15).default('wlc'),
        persistent: z.boolean().default(false),
        /** Seconds; defaults to 300 for a persistent service (ipvsadm -p). */
        timeout: z.number().int().min(0).max(0xffffffff).optional(),
        netmask: z.string().optional(),
        onePacket: z.boolean().default(false),
        schedFlags: z.number().int().min(0).max(7).default(0),
        pe: z.string().max(32).default(''),
      })
      .strict()
      .default({ scheduler: 'wlc', persistent: false, onePacket: false, schedFlags: 0, pe: '' }),
  })
  .strict();

const serviceOnly = z.object({ service: serviceKey }).strict();
const optionalService = z.object({ service: serviceKey.optional() }).strict();

const destBody = z
  .object({
    service: serviceKey,
    dest: z
      .object({
        addr: ipAddr,
        port: u16,
        fwd: z.enum(['masq', 'local', 'tunnel', 'route', 'fullnat']).default('route'),
        weight: z.number().int().min(0).max(0x7fffffff).default(1),
        uThreshold: z.number().int().min(0).max(0x7fffffff).default(0),
        lThreshold: z.number().int().min(0).max(0x7fffffff).default(0),
        tunType: z.enum(['ipip', 'gue', 'gre']).default('ipip'),
        tunPort: u16.default(0),
        tunCsum: z.enum(['nocsum', 'csum', 'remcsum']).default('nocsum'),
      })
      .strict(),
  })
  .strict();

const destOnly = z.object({ service: serviceKey, dest: destKey }).strict();
const sysctlBody = z.object({ sloppy_tcp: z.number().int().min(0).max(1).optional(), sloppy_sctp: z.number().int().min(0).max(1).optional() }).strict();
const undrainBody = z.object({ service: serviceKey, dest: destKey, weight: z.number().int().min(1).max(0x7fffffff).optional() }).strict();
const timeoutsBody = z
  .object({ tcp: z.number().int().min(0).default(0), tcpfin: z.number().int().min(0).default(0), udp: z.number().int().min(0).default(0) })
  .strict();
const addressBody = z
  .object({ addr: ipAddr, plen: z.number().int().min(0).max(128), ifname: z.string().min(1).max(15) })
  .strict();

/** Stable text for a service key: "tcp 198.18.1.100:80", "fwmark 1". */
export function serviceKeyText(k: ServiceKey): string {
  return k.type === 'fwmark' ? `fwmark ${k.fwmark}${k.ipv6 ? ' ipv6' : ''}` : `${k.type} ${k.addr.includes(':') ? `[${k.addr}]` : k.addr}:${k.port}`;
}

const bookKey = (s: ServiceKey, d: DestKey) => `${serviceKeyText(s)} -> ${d.addr.includes(':') ? `[${d.addr}]` : d.addr}:${d.port}`;

class HttpError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly body: { error: { code: string; message: string; op?: string; issues?: unknown } },
  ) {
    super(body.error.message);
  }
}

function zodProblem(e: z.ZodError): HttpError {
  const first = e.issues[0];
  const where = first && first.path.length ? `${first.path.join('.')}: ` : '';
  return new HttpError(400, {
    error: {
      code: 'EINVAL',
      message: `invalid request body: ${where}${first?.message ?? 'invalid'}`,
      issues: e.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    },
  });
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Where the dashboard's files live (next to this file in the sources). */
function dashboardDir(): string {
  // Also when running from dist/: the assets stay in the sources.
  return `${ROOT}src/api/dashboard/`;
}

const ASSETS: ReadonlyArray<readonly [string, string, string]> = [
  ['/', 'index.html', 'text/html; charset=utf-8'],
  ['/dashboard.js', 'dashboard.js', 'text/javascript; charset=utf-8'],
  ['/dashboard.css', 'dashboard.css', 'text/css; charset=utf-8'],
];

/** The API's routes, independent of how it listens (tests call `app.request()`). */
export function createAdminApp(o: AdminAppOptions): Hono {
  const app = new Hono();
  const tokenHash = o.token ? sha256(o.token) : null;
  let nextId = 1;
  /** Weights of drained real servers, to put back on undrain. */
  const drained = new Map<string, number>();

  /** Sends one request through the control path; a refusal becomes an HttpError with ipvsadm's text. */
  async function call<B extends RequestBody>(body: B): Promise<ResultMap[B['op']]> {
    const req = { v: PROTOCOL_VERSION, id: nextId++, ...body } as Request;
    // The same validation the control socket applies, so the handler only ever sees valid requests.
    const checked = protocolSchemas().requestSchema.safeParse(req);
    if (!checked.success) throw zodProblem(checked.error);
    let res: CtlResponse;
    try {
      res = await o.handler(checked.data as Request);
    } catch (e) {
      throw new HttpError(500, { error: { code: 'EINTERNAL', message: (e as Error).message } });
    }
    if (!res.ok) throw new HttpError(httpStatusFor(res.error.code), { error: { code: res.error.code, op: res.error.op, message: res.error.message } });
    return res.result as ResultMap[B['op']];
  }

  /** The request's JSON body, validated; `optional` accepts an empty body as `{}`. */
  async function body<T extends z.ZodType>(c: Context, schema: T, optional = false): Promise<z.output<T>> {
    const text = await c.req.text();
    let raw: unknown = {};
    // Content-Type: application/json was checked for every state-changing request before any route.
    if (text.trim() !== '' || !optional) {
      try {
        raw = JSON.parse(text);
      } catch {
        throw new HttpError(400, { error: { code: 'EINVAL', message: 'request body is not valid JSON' } });
      }
    }
    const r = schema.safeParse(raw);
    if (!r.success) throw zodProblem(r.error);
    return r.data;
  }

  async function findDest(service: ServiceKey, dest: DestKey) {
    const list = await call({ op: 'list', service });
    const d = list.services[0]?.dests.find((x) => x.addr === dest.addr && x.port === dest.port);
    if (!d) throw new HttpError(404, { error: { code: 'ENOENT', op: 'edit-server', message: 'No such destination' } });
    return d;
  }

  const destConfigOf = (d: DestConfig, weight: number): DestConfig => ({
    addr: d.addr,
    port: d.port,
    fwd: d.fwd,
    weight,
    uThreshold: d.uThreshold,
    lThreshold: d.lThreshold,
    tunType: d.tunType,
    tunPort: d.tunPort,
    tunCsum: d.tunCsum,
  });

  app.onError((e, c) => {
    if (e instanceof HttpError) return c.json(e.body, e.status);
    o.log('error', 'admin API request failed', { path: c.req.path, err: (e as Error).message });
    return c.json({ error: { code: 'EINTERNAL', message: 'internal error' } }, 500);
  });
  app.notFound((c) => c.json({ error: { code: 'ENOENT', message: `no route ${c.req.method} ${c.req.path}` } }, 404));

  // Host check first (DNS rebinding), then the token. Both answer before any route runs.
  const refused = o.refusals ?? newAdminRefusals();
  // Refusals first, in this order: connection limit, Host (DNS rebinding), cross-origin and non-JSON
  // state changes (CSRF), then the token. All answer before any route runs.
  //
  // hono's csrf() middleware was the candidate for the CSRF part: it lets a form or text/plain body
  // through whenever Origin matches, and a JSON body from anywhere (relying on CORS). This API takes
  // JSON only and grants no CORS, so the rule here is stricter: every state-changing request must be
  // application/json (which a page can send cross-site only after a preflight that never succeeds)
  // and, when a browser names its origin, come from the API's own origin.
  app.use('*', async (c, next) => {
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    if (incoming && overLimit.has(incoming.socket)) {
      refused.tooManyClients++;
      c.header('Connection', 'close');
      return c.json({ error: { code: 'EBUSY', message: 'too many admin API connections: try again' } }, 503);
    }
    if (!tokenHash && o.allowedHosts) {
      const host = (c.req.header('host') ?? '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1').toLowerCase();
      if (!o.allowedHosts.has(host)) {
        refused.host++;
        return c.json({ error: { code: 'EPERM', message: `Host ${host || '(none)'} is not allowed: use the address the API listens on` } }, 403);
      }
    }
    if (!SAFE_METHODS.has(c.req.method)) {
      // Browsers name the page's origin on every cross-origin POST/PUT/DELETE ("null" from sandboxes
      // and file: pages), and modern ones say where the request comes from in Sec-Fetch-Site.
      const origin = c.req.header('origin');
      let sameOrigin = true;
      if (origin !== undefined) {
        try {
          sameOrigin = new URL(origin).host === (c.req.header('host') ?? '');
        } catch {
          sameOrigin = false;
        }
      }
      const site = c.req.header('sec-fetch-site');
      if (!sameOrigin || (site !== undefined && site !== 'same-origin' && site !== 'none')) {
        refused.crossOrigin++;
        return c.json({ error: { code: 'EPERM', message: `cross-origin request refused (Origin ${origin ?? '(none)'}, Sec-Fetch-Site ${site ?? '(none)'})` } }, 403);
      }
      if (!/^application\/json\s*(;|$)/i.test(c.req.header('content-type') ?? '')) {
        refused.contentType++;
        return c.json(
          { error: { code: 'EINVAL', message: 'a state-changing request must be Content-Type: application/json (an empty body is fine)' } },
          415,
        );
      }
    }
    const isAsset = o.dashboard && c.req.method === 'GET' && ASSETS.some(([p]) => p === c.req.path);
    // The dashboard's own files hold no data; the page sends the token with each API call.
    if (tokenHash && !isAsset) {
      const m = /^Bearer\s+(.+)$/i.exec(c.req.header('authorization') ?? '');
      if (!m || !timingSafeEqual(sha256(m[1]!.trim()), tokenHash)) {
        refused.token++;
        c.header('WWW-Authenticate', 'Bearer realm="tsvsd"');
        return c.json({ error: { code: 'EPERM', message: 'missing or wrong bearer token' } }, 401);
      }
    }
    await next();
    if (c.req.method !== 'GET') o.log('info', 'admin API', { method: c.req.method, path: c.req.path, status: c.res.status });
  });

  // Bodies are read whole (JSON): the limit applies before reading, from Content-Length, or while
  // reading a chunked body. The connection is closed after the answer rather than drained.
  const maxBody = o.maxBody ?? ADMIN_MAX_BODY;
  app.use(
    '*',
    bodyLimit({
      maxSize: maxBody,
      onError: (c) => {
        refused.tooLarge++;
        c.header('Connection', 'close');
        return c.json({ error: { code: 'EINVAL', message: `request body too large (limit ${maxBody} bytes)` } }, 413);
      },
    }),
  );

  if (o.dashboard) {
    const dir = dashboardDir();
    for (const [path, file, type] of ASSETS) {
      const text = readFileSync(dir + file, 'utf8');
      app.get(path, (c) => {
        c.header('Content-Type', type);
        c.header('Cache-Control', 'no-cache');
        c.header('X-Content-Type-Options', 'nosniff');
        c.header('Content-Security-Policy', "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
        return c.body(text);
      });
    }
  }

  app.get('/api/v1/services', async (c) => c.json(await call({ op: 'list' })));
  app.post('/api/v1/services', async (c) => {
    const b = await body(c, serviceBody);
    await call({ op: 'add-service', service: b.service, config: serviceConfig(b) });
    return c.json({ ok: true }, 201);
  });
  app.put('/api/v1/services', async (c) => {
    const b = await body(c, serviceBody);
    await call({ op: 'edit-service', service: b.service, config: serviceConfig(b) });
    return c.json({ ok: true });
  });
  app.delete('/api/v1/services', async (c) => {
    const b = await body(c, serviceOnly);
    await call({ op: 'delete-service', service: b.service });
    return c.json({ ok: true });
  });
  app.post('/api/v1/flush', async (c) => {
    await call({ op: 'flush' });
    drained.clear();
    return c.json({ ok: true });
  });

  app.post('/api/v1/servers', async (c) => {
    const b = await body(c, destBody);
    await call({ op: 'add-server', service: b.service, dest: b.dest });
    return c.json({ ok: true }, 201);
  });
  app.put('/api/v1/servers', async (c) => {
    const b = await body(c, destBody);
    await call({ op: 'edit-server', service: b.service, dest: b.dest });
    if (b.dest.weight > 0) drained.delete(bookKey(b.service, b.dest));
    return c.json({ ok: true });
  });
  app.delete('/api/v1/servers', async (c) => {
    const b = await body(c, destOnly);
    await call({ op: 'delete-server', service: b.service, dest: b.dest });
    drained.delete(bookKey(b.service, b.dest));
    return c.json({ ok: true });
  });
  app.post('/api/v1/servers/drain', async (c) => {
    const b = await body(c, destOnly);
    const d = await findDest(b.service, b.dest);
    const k = bookKey(b.service, b.dest);
    // Draining twice must not forget the weight to come back to.
    if (d.weight > 0) drained.set(k, d.weight);
    if (d.weight !== 0) await call({ op: 'edit-server', service: b.service, dest: destConfigOf(d, 0) });
    return c.json({ weight: 0, previous: d.weight, restoreTo: drained.get(k) ?? null });
  });
  app.post('/api/v1/servers/undrain', async (c) => {
    const b = await body(c, undrainBody);
    const d = await findDest(b.service, b.dest);
    const k = bookKey(b.service, b.dest);
    const remembered = drained.get(k);
    // A server drained before a restart (or by tsvsadm) has no remembered weight: 1, as ipvsadm -a.
    const weight = b.weight ?? remembered ?? (d.weight > 0 ? d.weight : 1);
    if (weight !== d.weight) await call({ op: 'edit-server', service: b.service, dest: destConfigOf(d, weight) });
    drained.delete(k);
    return c.json({ weight, previous: d.weight, remembered: remembered !== undefined });
  });
  app.get('/api/v1/drained', (c) => c.json({ drained: Object.fromEntries(drained) }));

  app.post('/api/v1/zero', async (c) => {
    // An empty body zeroes everything (ipvsadm -Z).
    const b = await body(c, optionalService, true);
    await call(b.service ? { op: 'zero', service: b.service } : { op: 'zero' });
    return c.json({ ok: true });
  });
  app.get('/api/v1/timeouts', async (c) => c.json(await call({ op: 'get-timeout' })));
  app.put('/api/v1/timeouts', async (c) => {
    const b = await body(c, timeoutsBody);
    await call({ op: 'set-timeout', timeouts: b });
    return c.json(await call({ op: 'get-timeout' }));
  });
  // The whole director (route announcement over BGP): drain withdraws its VIPs from the routers.
  app.get('/api/v1/director', async (c) => c.json(await call({ op: 'announce' })));
  app.post('/api/v1/director/drain', async (c) => c.json(await call({ op: 'director-drain' })));
  app.post('/api/v1/director/undrain', async (c) => c.json(await call({ op: 'director-undrain' })));
  app.get('/api/v1/sysctl', async (c) => c.json(await call({ op: 'get-sysctl' })));
  app.put('/api/v1/sysctl', async (c) => {
    const b = await body(c, sysctlBody);
    return c.json(await call({ op: 'set-sysctl', sysctl: b }));
  });
  app.get('/api/v1/connections', async (c) => c.json(await call({ op: 'connections' })));
  app.get('/api/v1/counters', async (c) => c.json(await call({ op: 'counters' })));
  app.get('/api/v1/addresses', async (c) => c.json(await call({ op: 'address-list' })));
  app.post('/api/v1/addresses', async (c) => {
    const b = await body(c, addressBody);
    await call({ op: 'address-add', address: b });
    return c.json({ ok: true }, 201);
  });
  app.delete('/api/v1/addresses', async (c) => {
    const b = await body(c, addressBody);
    await call({ op: 'address-del', address: b });
    return c.json({ ok: true });
  });
  app.get('/api/v1/health', (c) => {
    const h = o.health?.() ?? null;
    if (!h) return c.json({ enabled: false, pools: [], counters: null });
    return c.json({ enabled: true, now: Date.now(), ...h });
  });
  // Re-reads tsvsd's configuration file, as SIGHUP and tsvsadm --reload do.
  app.post('/api/v1/reload', async (c) => c.json(await call({ op: 'reload' })));
  app.get('/api/v1/version', async (c) => c.json(await call({ op: 'hello' })));
  app.get('/api/v1/vrrp', async (c) => c.json(await call({ op: 'vrrp' })));

  app.get('/metrics', async (c) => {
    const [list, counters, vrrp] = await Promise.all([call({ op: 'list' }), call({ op: 'counters' }), call({ op: 'vrrp' })]);
    const totals = list.totals;
    const health = o.health?.() ?? null;
    const refusals = { admin: refused, ...(o.controlRefusals ? { control: o.controlRefusals() } : {}) };
    const text = renderMetrics({ list, counters: counters as CountersResult, vrrp, ...(totals ? { totals } : {}), ...(health ? { health } : {}), refusals });
    c.header('Content-Type', METRICS_CONTENT_TYPE);
    return c.body(text);
  });

  return app;
}

/** A full ServiceConfig from a body, with tsvsadm's defaults for what it leaves out. */
function serviceConfig(b: z.output<typeof serviceBody>) {
  const v6 = b.service.type === 'fwmark' ? !!b.service.ipv6 : b.service.addr.includes(':');
  const c = b.config;
  return {
    scheduler: c.scheduler,
    persistent: c.persistent,
    timeout: c.persistent ? (c.timeout ?? 300) : 0,
    netmask: c.netmask ?? (v6 ? '128' : '255.255.255.255'),
    onePacket: c.onePacket,
    schedFlags: c.schedFlags,
    pe: c.pe,
  };
}
