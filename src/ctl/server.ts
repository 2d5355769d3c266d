// tsvsd's control socket: a unix stream socket (mode 0600) speaking the newline-delimited JSON protocol.
import { createServer, type Server, type Socket } from 'node:net';
import { mkdirSync, chmodSync, existsSync, unlinkSync, lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import { connect } from 'node:net';
import { encodeLine, errorResponse, parseRequestLine, type Request, type Response } from './protocol.ts';

/**
 * Answers one validated request. Must not throw; errors become error responses. Streaming requests
 * (trace) send intermediate lines through `stream` before the final response; `signal` aborts when
 * the client goes away.
 */
export type RequestHandler = (req: Request, stream?: (line: object) => void, signal?: AbortSignal) => Promise<Response>;

const MAX_LINE = 1 << 20;

/** True when something answers on the unix socket at `path`. */
export function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Makes `path` free for a listening unix socket: creates its directory, refuses (throws one line)
 * when the path is not a socket or another process answers on it, and removes a stale socket file
 * that a killed daemon left behind (nobody listens: connect() is refused).
 */
export async function claimSocketPath(path: string, what = 'control socket path'): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new Error(`${what} ${path} exists and is not a socket`);
  if (await socketAlive(path)) throw new Error(`another tsvsd already answers on ${path} (stop it first, or give another path)`);
  unlinkSync(path);
}

/**
 * Listens on `path`, refusing to start when another daemon already answers there; a stale socket
 * file left by a crash is replaced. The socket is created mode 0600 (root-only, as ipvsadm needs root).
 */
export async function startControlServer(path: string, handle: RequestHandler): Promise<Server> {
  await claimSocketPath(path);
  const clients = new Set<Socket>();
  const server = createServer((sock) => {
    clients.add(sock);
    sock.once('close', () => clients.delete(sock));
    serve(sock, handle);
  });
  openClients.set(server, clients);
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  chmodSync(path, 0o600);
  return server;
}

const openClients = new WeakMap<Server, Set<Socket>>();

/** Removes the socket file, closes every client connection (traces included) and stops listening. */
export async function stopControlServer(server: Server, path: string): Promise<void> {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const c of openClients.get(server) ?? []) c.destroy();
  await closed;
}

function serve(sock: Socket, handle: RequestHandler): void {
  let buf = '';
  const gone = new AbortController();
  sock.on('close', () => gone.abort());
  // Requests on one connection are answered in order.
  let chain = Promise.resolve();
  sock.setEncoding('utf8');
  sock.on('data', (chunk: string) => {
    buf += chunk;
    if (buf.length > MAX_LINE && !buf.includes('\n')) {
      sock.end(encodeLine(errorResponse(0, 'other', 'EINVAL', 'request line too long')));
      return;
    }
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      chain = chain.then(async () => {
        // A client that has gone gets no more work done for it (a queued trace would run for nobody).
        if (gone.signal.aborted) return;
        const parsed = parseRequestLine(line);
        let res: Response;
        if (!parsed.ok) res = parsed.response;
        else {
          try {
            res = await handle(parsed.request, (line) => {
              if (!sock.destroyed) sock.write(JSON.stringify(line) + '\n');
            }, gone.signal);
          } catch (e) {
            res = errorResponse(parsed.request.id, parsed.request.op, 'EINVAL', `internal error: ${(e as Error).message}`);
          }
        }
        if (!sock.destroyed) sock.write(encodeLine(res));
      });
    }
  });
  sock.on('error', () => sock.destroy());
}
