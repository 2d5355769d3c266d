// tsvsd: the director daemon — parses its configuration, starts the data-plane worker and the control socket.
import { MessageChannel } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import pino from 'pino';
import pretty from 'pino-pretty';
import { ConfigError } from '../ctl/config.ts';
import { claimSocketPath, controlRefusals, startControlServer, stopControlServer } from '../ctl/server.ts';
import { errorResponse, okResponse, type Request, type RequestBody, type Response, type ReloadResult, type Timeouts } from '../ctl/protocol.ts';
import { checkServices, planReload, benignReloadError, RESTART_ONLY } from '../ctl/reload.ts';
import { startHealth, type HealthHandle } from '../health/index.ts';
import type { Config } from '../ctl/config.ts';
import { parseTsvsdArgs, preflight, TSVSD_USAGE } from './tsvsd-args.ts';
import type { WorkerEvent, WorkerInit, WorkerCommand } from '../dp/worker.ts';
import { ROOT, moduleWorker } from '../root.ts';
import { VrrpNotifier, trackedServices, poolName } from '../vrrp/notify.ts';
import { KernelSyncSockets, RELAY } from '../ipvs/sync/kernel-socket.ts';
import { serviceName } from '../health/plan.ts';
import type { Announcer } from '../bgp/announcer.ts';

function version(): string {
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string };
  return pkg.version;
}

/** Runs tsvsd until SIGINT/SIGTERM; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  let opts;
  try {
    opts = parseTsvsdArgs(argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`tsvsd: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (opts.help) {
    process.stdout.write(TSVSD_USAGE);
    return 0;
  }
  if (opts.version) {
    process.stdout.write(`tsvsd (tsvs) ${version()}\n`);
    return 0;
  }
  const problems = preflight(opts.config);
  if (problems.length) {
    process.stderr.write(`tsvsd: ${problems[0]}\n`);
    return 1;
  }
  const log = pino(
    { level: opts.logLevel, base: { name: 'tsvsd' } },
    process.stderr.isTTY ? pretty({ destination: 2, sync: true }) : pino.destination({ dest: 2, sync: true }),
  );

  // Before the data plane opens any interface: a second tsvsd on a live socket must not touch the
  // interfaces the first one forwards on; a socket file a killed tsvsd left is removed.
  try {
    await claimSocketPath(opts.socket);
  } catch (e) {
    process.stderr.write(`tsvsd: ${(e as Error).message}\n`);
    return 1;
  }

  const mailbox = new SharedArrayBuffer(RELAY.SLOTS * 4);
  const flags = new Int32Array(mailbox);
  const { port1, port2 } = new MessageChannel();
  const init: WorkerInit = { config: opts.config, mailbox, control: port2 };
  const worker = moduleWorker(import.meta.url, '../dp/worker', { workerData: init, transferList: [port2] });

  const notifier = new VrrpNotifier(opts.config.vrrp, (level, msg, fields) => log[level](fields ?? {}, msg));
  let seq = 0;
  const pending = new Map<number, (r: Response) => void>();
  const streams = new Map<number, (line: object) => void>();
  const send = (cmd: WorkerCommand) => {
    port1.postMessage(cmd);
    Atomics.add(flags, 0, 1);
  };
  // Sync daemons on kernel interfaces: their sockets live here, the messages in the data plane.
  const syncSockets = new KernelSyncSockets((bytes) => send({ type: 'sync-rx', bytes }), (level, msg, fields) => log[level](fields ?? {}, msg), flags);
  const ready = new Promise<WorkerEvent & { type: 'ready' }>((resolve, reject) => {
    port1.on('message', (e: WorkerEvent) => {
      switch (e.type) {
        case 'ready':
          resolve(e);
          break;
        case 'fatal':
          reject(new Error(e.message));
          break;
        case 'reply':
          pending.get(e.seq)?.(e.response as Response);
          pending.delete(e.seq);
          streams.delete(e.seq);
          break;
        case 'trace':
          streams.get(e.seq)?.(e.event as object);
          break;
        case 'log':
          log[e.level](e.fields ?? {}, e.msg);
          break;
        case 'vrrp':
          notifier.handle(e.event);
          break;
        case 'sync-open':
          syncSockets.open(e.state, e.daemon).then(
            () => send({ type: 'sync-opened', state: e.state, error: null }),
            (err: Error) => send({ type: 'sync-opened', state: e.state, error: err.message }),
          );
          break;
        case 'sync-close':
          syncSockets.close(e.state);
          break;
        case 'sync-tx':
          syncSockets.send(e.bytes);
          break;
        case 'stopped':
          break;
      }
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`data plane exited (${code})`)));
  });
  let info;
  try {
    info = await ready;
  } catch (e) {
    process.stderr.write(`tsvsd: ${(e as Error).message}\n`);
    await worker.terminate();
    return 1;
  }
  log.info({ ports: info.ports, addresses: opts.config.addresses, services: opts.config.services.length }, 'data plane ready');

  const toWorker = (req: Request, stream?: (line: object) => void, signal?: AbortSignal): Promise<Response> =>
    new Promise((resolve) => {
      const s = ++seq;
      // A trace runs until its count is reached or its client goes away; everything else answers at once.
      const timer =
        req.op === 'trace'
          ? undefined
          : setTimeout(() => {
              pending.delete(s);
              resolve(errorResponse(req.id, req.op, 'EINVAL', 'the data plane did not answer in time'));
            }, 5000);
      pending.set(s, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      if (req.op === 'trace' && stream) {
        if (signal?.aborted) {
          pending.delete(s);
          resolve(errorResponse(req.id, req.op, 'EINVAL', 'the client went away'));
          return;
        }
        streams.set(s, (event) => stream({ v: 1, id: req.id, event }));
        signal?.addEventListener('abort', () => send({ type: 'trace-stop', seq: s }), { once: true });
      }
      send({ type: 'request', seq: s, request: req });
    });

  // Health checks and reloads act through the same requests as tsvsadm: one path changes the director.
  const healthLog = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => log[level](fields ?? {}, msg);
  let current = opts.config;
  let health: HealthHandle | null = null;
  let announcer: Announcer | null = null;
  let reloading: Promise<ReloadResult> | null = null;
  const reload = async (): Promise<ReloadResult> => {
    const next = parseTsvsdArgs(argv).config;
    checkServices(next);
    let id = 0;
    const ask = (body: RequestBody) => toWorker({ v: 1, id: ++id, ...body } as Request);
    const live = await ask({ op: 'get-timeout' });
    const plan = planReload(current, next, live.ok ? (live.result as Timeouts) : undefined);
    // All or nothing: on the first real refusal, undo what was applied, newest first.
    const applied: RequestBody[][] = [];
    for (let i = 0; i < plan.requests.length; i++) {
      const body = plan.requests[i]!;
      const r = await ask(body);
      if (!r.ok && !benignReloadError(body, r.error.code)) {
        for (const u of applied.reverse()) for (const b of u) await ask(b);
        throw new Error(`${body.op}: ${r.error.message}`);
      }
      applied.push(plan.undo[i]!);
    }
    // Restart-only fields keep their running values.
    const next2 = { ...next } as Config;
    for (const k of RESTART_ONLY) (next2 as Record<string, unknown>)[k] = current[k];
    current = next2;
    const errors: string[] = [];
    if (health) await health.stop({ removeServers: false });
    health = null;
    try {
      health = await startHealth(current, toWorker, healthLog);
    } catch (e) {
      errors.push(`health checks did not restart: ${(e as Error).message}`);
    }
    const result: ReloadResult = { summary: plan.summary, restartNeeded: plan.restartNeeded, errors };
    log.info({ ...plan.summary, restartNeeded: plan.restartNeeded, errors }, 'configuration reloaded');
    return result;
  };
  const reloadOnce = (): Promise<ReloadResult> => {
    reloading ??= reload().finally(() => (reloading = null));
    return reloading;
  };
  const handle = async (req: Request, stream?: (line: object) => void, signal?: AbortSignal): Promise<Response> => {
    if (req.op === 'reload') {
      try {
        return okResponse(req.id, await reloadOnce());
      } catch (e) {
        return errorResponse(req.id, req.op, 'EINVAL', `reload refused, nothing changed: ${(e as Error).message}`);
      }
    }
    if (req.op === 'health') return okResponse(req.id, health ? health.snapshot() : { pools: [], counters: {} });
    if (req.op === 'announce' || req.op === 'director-drain' || req.op === 'director-undrain') {
      if (!announcer) {
        if (req.op === 'announce') return okResponse(req.id, (await import('../bgp/announcer.ts')).announceDisabled());
        return errorResponse(req.id, req.op, 'EINVAL', 'this director announces no routes (no bgp: in its configuration)');
      }
      return okResponse(req.id, req.op === 'announce' ? await announcer.status() : await announcer.setDrained(req.op === 'director-drain'));
    }
    return toWorker(req, stream, signal);
  };

  let server;
  try {
    server = await startControlServer(opts.socket, handle);
  } catch (e) {
    process.stderr.write(`tsvsd: ${(e as Error).message}\n`);
    send({ type: 'stop' });
    await worker.terminate();
    return 1;
  }
  log.info({ socket: opts.socket }, 'control socket listening');
  try {
    health = await startHealth(current, toWorker, healthLog);
  } catch (e) {
    log.error({ err: (e as Error).message }, 'health checks did not start');
  }
  // Route announcement (src/bgp): BIRD runs while tsvsd does; started after health checking so the
  // first announcement already knows quorum.
  if (opts.config.bgp) {
    const { Announcer: AnnouncerClass } = await import('../bgp/announcer.ts');
    // From the current configuration each time: a reload that adds or removes services changes the VIPs.
    const services = () => current.services.map((s) => ({ addr: s.address, name: serviceName(s) }));
    const bgp = opts.config.bgp;
    const vips = () => bgp.vips ?? [...new Set(services().map((s) => s.addr))];
    // A heartbeat to the data plane: a worker that stops answering must not keep attracting flows.
    let lastBeat = Date.now();
    const beat = setInterval(() => {
      void toWorker({ v: 1, id: 0, op: 'hello' }).then((r) => {
        if (r.ok) lastBeat = Date.now();
      });
    }, 500);
    beat.unref();
    try {
      announcer = new AnnouncerClass({
        bgp,
        dataPlaneAlive: () => Date.now() - lastBeat < 2000,
        vips,
        services,
        quorum: () => new Map((health?.snapshot().pools ?? []).map((p) => [p.service, p.quorumUp])),
        controlSocket: opts.socket,
        log: (level, msg, fields) => log[level](fields ?? {}, msg),
      });
      await announcer.start();
    } catch (e) {
      process.stderr.write(`tsvsd: ${(e as Error).message}\n`);
      await announcer?.stop();
      if (health) await health.stop({ removeServers: false });
      await stopControlServer(server, opts.socket);
      send({ type: 'stop' });
      await worker.terminate();
      return 1;
    }
  }
  // VRRP instances that track a virtual service follow its quorum as the health monitor sees it. A
  // service without health checks always has quorum.
  const tracked = trackedServices(current.vrrp);
  const quorum = new Map<string, boolean>();
  const quorumTimer = tracked.length
    ? setInterval(() => {
        const pools = health?.snapshot().pools ?? [];
        for (const svc of tracked) {
          const up = pools.find((p) => p.service === poolName(svc))?.quorumUp ?? true;
          if (quorum.get(svc) === up) continue;
          quorum.set(svc, up);
          send({ type: 'vrrp-track', service: svc, up });
        }
      }, 200)
    : null;
  process.on('SIGHUP', () => {
    reloadOnce().catch((e: Error) => log.error({ err: e.message }, 'reload refused, nothing changed'));
  });

  // --- admin HTTP API, metrics and dashboard (src/api) start here ---
  // Loaded only when asked for, so a director without --admin never loads hono.
  if (opts.config.admin) {
    const api = await import('../api/server.ts');
    let admin;
    try {
      admin = await api.startAdmin({
        listen: api.parseAdminListen(opts.config.admin),
        ...(opts.adminToken ? { token: opts.adminToken } : {}),
        // The same handler as the control socket: tsvsadm's requests, reload and health included.
        handler: handle,
        health: () => health?.snapshot() ?? null,
        dashboard: opts.config.dashboard,
        log: (level, msg, fields) => log[level](fields ?? {}, msg),
        controlRefusals: () => controlRefusals(server),
      });
    } catch (e) {
      process.stderr.write(`tsvsd: ${(e as Error).message}\n`);
      if (health) await health.stop({ removeServers: false });
      await stopControlServer(server, opts.socket);
      send({ type: 'stop' });
      await worker.terminate();
      return 1;
    }
    log.info({ admin: admin.address, dashboard: opts.config.dashboard, token: !!opts.adminToken }, 'admin API listening');
    const closeAdmin = () => void admin.close();
    process.once('SIGINT', closeAdmin);
    process.once('SIGTERM', closeAdmin);
  }
  // --- end of admin HTTP API ---

  const code = await new Promise<number>((resolve) => {
    const stop = (sig: string) => {
      log.info({ signal: sig }, 'stopping');
      resolve(0);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    worker.once('exit', (c) => {
      log.error({ code: c }, 'data plane exited');
      resolve(1);
    });
  });
  // Routes go first, while the data plane still forwards what the routers sent before they heard.
  if (announcer) await announcer.stop();
  if (quorumTimer) clearInterval(quorumTimer);
  if (health) await health.stop({ removeServers: false });
  await stopControlServer(server, opts.socket);
  send({ type: 'stop' });
  await Promise.race([new Promise((r) => worker.once('exit', r)), new Promise((r) => setTimeout(r, 2000))]);
  // notify_stop scripts (the data plane posted STOP on its way out), bounded.
  await Promise.race([notifier.drain(), new Promise((r) => setTimeout(r, 5000))]);
  await worker.terminate();
  syncSockets.closeAll();
  port1.close();
  log.info('stopped');
  return code;
}

// Run directly (`node --import tsx src/cli/tsvsd.ts`); bin/tsvsd.mjs imports main() instead.
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/src\//, '/src/')) && process.argv[1].endsWith('tsvsd.ts')) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`tsvsd: ${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}
