// Listens for the admin HTTP API on TCP or a unix socket, refusing a non-loopback address without a token.
import { isIP } from 'node:net';
import { chmodSync, unlinkSync } from 'node:fs';
import type { AddressInfo, Server } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { claimSocketPath, type RequestHandler } from '../ctl/server.ts';
import type { HealthSnapshot } from '../health/index.ts';
import { createAdminApp, newAdminRefusals, overLimit, type AdminLog, type AdminRefusals } from './app.ts';

export type AdminListen = { host: string; port: number } | { path: string };

export interface AdminOptions {
  listen: AdminListen;
  /** Bearer token; required when `listen` is a non-loopback address. */
  token?: string;
  handler: RequestHandler;
  /** Health checking's current state; null while it does not run. */
  health?: () => HealthSnapshot | null;
  dashboard: boolean;
  log: AdminLog;
  /** The control socket's refusals, for /metrics. */
  controlRefusals?: () => Readonly<Record<string, number>>;
  limits?: Partial<AdminLimits>;
}

/** What clients of the admin listener may hold (docs/operating.md). */
export interface AdminLimits {
  /** Connections served at once; requests on further ones are answered 503 and closed. */
  maxConnections: number;
  /** The request line and headers must arrive within this (slow-loris); else 408 and close. */
  headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this; else 408 and close. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Largest request body in bytes; larger ones are answered 413 and closed. */
  maxBody: number;
}

export const ADMIN_LIMITS: Readonly<AdminLimits> = {
  maxConnections: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxBody: 64 * 1024,
};

export interface AdminServer {
  /** Where it listens: "http://127.0.0.1:9200" or "unix:/run/tsvs/admin.sock". */
  address: string;
  /** The bound TCP port (0 for a unix socket); useful with port 0. */
  port: number;
  /** Requests refused so far, by reason. */
  refusals: Readonly<AdminRefusals>;
  close(): Promise<void>;
}

/** A configuration problem with the admin listener, phrased as one line for tsvsd's stderr. */
export class AdminConfigError extends Error {
  override name = 'AdminConfigError';
}

/** Parses `ADDR:PORT`, `[V6]:PORT` or `unix:PATH`. */
export function parseAdminListen(spec: string): AdminListen {
  if (spec.startsWith('unix:')) {
    const path = spec.slice(5);
    if (!path.startsWith('/')) throw new AdminConfigError(`--admin ${spec}: the unix socket path must be absolute`);
    return { path };
  }
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(spec);
  if (!m) throw new AdminConfigError(`--admin ${spec}: expected ADDR:PORT, [IPV6]:PORT or unix:PATH`);
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port > 65535) throw new AdminConfigError(`--admin ${spec}: port out of range`);
  if (host !== 'localhost' && !isIP(host)) throw new AdminConfigError(`--admin ${spec}: ${host} is not an IP address (or localhost)`);
  return { host, port };
}

/** True for addresses only this host can reach. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  return !!m && m[1]!.startsWith('127.');
}

/**
 * Starts the admin API. Throws AdminConfigError (before listening) when a non-loopback address has no
 * token. A unix socket is created mode 0600, like the control socket.
 */
export async function startAdmin(o: AdminOptions): Promise<AdminServer> {
  const tcp = 'host' in o.listen ? o.listen : null;
  if (tcp && !isLoopback(tcp.host) && !o.token) {
    throw new AdminConfigError(
      `--admin ${tcp.host}:${tcp.port} is not a loopback address: give --admin-token TOKEN (or TSVS_ADMIN_TOKEN) to expose the admin API`,
    );
  }
  // Without a token, a loopback listener only answers requests naming a loopback host (DNS-rebinding guard).
  const allowedHosts = tcp && !o.token ? new Set(['localhost', '127.0.0.1', '::1', tcp.host.toLowerCase()]) : undefined;
  const limits = { ...ADMIN_LIMITS, ...o.limits };
  const refusals = newAdminRefusals();
  const app = createAdminApp({
    handler: o.handler,
    dashboard: o.dashboard,
    log: o.log,
    refusals,
    maxBody: limits.maxBody,
    ...(o.controlRefusals ? { controlRefusals: o.controlRefusals } : {}),
    ...(o.health ? { health: o.health } : {}),
    ...(o.token ? { token: o.token } : {}),
    ...(allowedHosts ? { allowedHosts } : {}),
  });
  const server = createAdaptorServer({
    fetch: app.fetch,
    serverOptions: {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node checks those deadlines this often (its default, 30 s, would let a slow client sit 3x longer).
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    },
  }) as Server;
  // Over the limit, a connection is still accepted so that its request gets a clear 503 (Node's own
  // maxConnections would close it without a word); it is cut off shortly after in any case.
  let open = 0;
  server.on('connection', (sock) => {
    if (open >= limits.maxConnections) {
      overLimit.add(sock);
      sock.setTimeout(2000, () => sock.destroy());
      return;
    }
    open++;
    sock.once('close', () => open--);
  });
  const unixPath = 'path' in o.listen ? o.listen.path : null;
  if (unixPath) {
    // A stale socket a killed tsvsd left is replaced; a live one (another tsvsd answers) is not stolen.
    try {
      await claimSocketPath(unixPath, 'the path');
    } catch (e) {
      throw new AdminConfigError(`--admin unix:${unixPath}: ${(e as Error).message}`);
    }
  }
  const oldMask = unixPath ? process.umask(0o177) : null;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = () => {
        server.off('error', reject);
        resolve();
      };
      if (unixPath) server.listen(unixPath, done);
      else server.listen(tcp!.port, tcp!.host, done);
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new AdminConfigError(`--admin: cannot listen on ${unixPath ? `unix:${unixPath}` : `${tcp!.host}:${tcp!.port}`}: ${err.code ?? err.message}`);
  } finally {
    if (oldMask !== null) process.umask(oldMask);
  }
  if (unixPath) chmodSync(unixPath, 0o600);
  const bound = unixPath ? 0 : (server.address() as AddressInfo).port;
  const address = unixPath ? `unix:${unixPath}` : `http://${tcp!.host.includes(':') ? `[${tcp!.host}]` : tcp!.host}:${bound}`;
  return {
    address,
    port: bound,
    refusals,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections (a dashboard's polling) would hold close() open.
        (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      if (unixPath) {
        try {
          unlinkSync(unixPath);
        } catch {
          // already gone
        }
      }
    },
  };
}
