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

/**
 * What one control connection may cost, so a buggy or hostile local client (the socket is root-only)
 * can neither grow tsvsd's memory nor hold its slots: docs/operating.md lists them.
 */
export interface ControlLimits {
  /** Longest request line in bytes; the largest real request is under 1 KiB. */
  maxLine: number;
  /** Connections served at once; one more is answered EBUSY and closed. */
  maxClients: number;
  /** A request line, once started, must end (newline) within this many ms, or ETIMEDOUT and close. */
  lineTimeoutMs: number;
  /** A connection with nothing received and no request in flight for this long is closed. */
  idleTimeoutMs: number;
  /** Requests queued on one connection before tsvsd stops reading it (pipelining without reading replies). */
  maxQueued: number;
  /** Unread replies (bytes) a client may leave queued before it is dropped (a trace nobody reads). */
  maxUnread: number;
}

export const CONTROL_LIMITS: Readonly<ControlLimits> = {
  maxLine: 64 * 1024,
  maxClients: 64,
  lineTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  maxQueued: 32,
  maxUnread: 4 << 20,
};

/** Connections the control socket refused or closed, by reason (since it started). */
export type ControlRefusals = {
  lineTooLong: number;
  tooManyClients: number;
  stalled: number;
  idle: number;
  slowReader: number;
  /** Lines answered EINVAL because they were not JSON or not a valid request (the connection stays). */
  malformed: number;
};

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
export async function startControlServer(path: string, handle: RequestHandler, limits: Readonly<ControlLimits> = CONTROL_LIMITS): Promise<Server> {
  await claimSocketPath(path);
  const clients = new Set<Socket>();
  const refused: ControlRefusals = { lineTooLong: 0, tooManyClients: 0, stalled: 0, idle: 0, slowReader: 0, malformed: 0 };
  let served = 0;
  const server = createServer((sock) => {
    clients.add(sock);
    sock.once('close', () => clients.delete(sock));
    sock.on('error', () => sock.destroy());
    if (served >= limits.maxClients) {
      refused.tooManyClients++;
      closeWith(sock, errorResponse(0, 'other', 'EBUSY', `too many control clients (${limits.maxClients}): try again`));
      return;
    }
    served++;
    sock.once('close', () => served--);
    serve(sock, handle, limits, refused);
  });
  openClients.set(server, clients);
  refusals.set(server, refused);
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
const refusals = new WeakMap<Server, ControlRefusals>();

/** What the control server refused so far (a live object; zeros for a server it did not start). */
export function controlRefusals(server: Server): Readonly<ControlRefusals> {
  return refusals.get(server) ?? { lineTooLong: 0, tooManyClients: 0, stalled: 0, idle: 0, slowReader: 0, malformed: 0 };
}

/** Sends one last response line and closes; a client that does not read it is cut off after a second. */
function closeWith(sock: Socket, res: Response): void {
  if (sock.destroyed) return;
  // Whatever the client still sends is read and dropped, never buffered.
  sock.removeAllListeners('data');
  sock.on('data', () => {});
  sock.resume();
  sock.end(encodeLine(res));
  setTimeout(() => sock.destroy(), 1000).unref();
}

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

function serve(sock: Socket, handle: RequestHandler, limits: Readonly<ControlLimits>, refused: ControlRefusals): void {
  // The started, unfinished line: its pieces and their total size, kept apart so a line that
  // arrives one byte at a time is neither re-scanned nor re-copied.
  let partial: Buffer[] = [];
  let partialLen = 0;
  let lineStarted = 0;
  let queued = 0;
  /** Received bytes not yet split into lines because the queue was full. */
  let held: Buffer | null = null;
  let closing = false;
  let timer: NodeJS.Timeout | undefined;
  const gone = new AbortController();
  sock.on('close', () => {
    gone.abort();
    clearTimeout(timer);
  });
  const refuse = (res: Response, why: keyof ControlRefusals) => {
    if (closing) return;
    closing = true;
    refused[why]++;
    clearTimeout(timer);
    partial = [];
    closeWith(sock, res);
  };
  /** One timer: the started line's deadline, or the idle deadline when nothing is pending. */
  const arm = () => {
    clearTimeout(timer);
    if (closing) return;
    if (partialLen > 0) {
      timer = setTimeout(
        () => refuse(errorResponse(0, 'other', 'ETIMEDOUT', `request line not completed within ${limits.lineTimeoutMs / 1000} s`), 'stalled'),
        Math.max(0, lineStarted + limits.lineTimeoutMs - Date.now()),
      );
    } else if (queued === 0) {
      timer = setTimeout(() => refuse(errorResponse(0, 'other', 'ETIMEDOUT', `idle for ${limits.idleTimeoutMs / 1000} s: connection closed`), 'idle'), limits.idleTimeoutMs);
    } else return;
    timer.unref();
  };
  const tooLong = () => refuse(errorResponse(0, 'other', 'EINVAL', `request line too long (limit ${limits.maxLine} bytes)`), 'lineTooLong');
  /** Writes one line; a client that leaves megabytes of replies unread is dropped. */
  const send = (text: string) => {
    if (sock.destroyed || closing) return;
    sock.write(text);
    if (sock.writableLength > limits.maxUnread) {
      closing = true;
      refused.slowReader++;
      sock.destroy();
    }
  };
  // Requests on one connection are answered in order.
  let chain = Promise.resolve();
  const enqueue = (line: string) => {
    queued++;
    chain = chain.then(async () => {
      try {
        // A client that has gone gets no more work done for it (a queued trace would run for nobody).
        if (gone.signal.aborted || closing) return;
        const parsed = parseRequestLine(line);
        let res: Response;
        if (!parsed.ok) {
          refused.malformed++;
          res = parsed.response;
        } else {
          try {
            res = await handle(parsed.request, (l) => send(JSON.stringify(l) + '\n'), gone.signal);
          } catch (e) {
            res = errorResponse(parsed.request.id, parsed.request.op, 'EINVAL', `internal error: ${(e as Error).message}`);
          }
        }
        send(encodeLine(res));
      } finally {
        queued--;
        if (held && queued < limits.maxQueued && !closing) {
          const h = held;
          held = null;
          consume(h);
        }
        if (!held && queued < limits.maxQueued && sock.isPaused() && !closing) sock.resume();
        arm();
      }
    });
  };
  /** Splits received bytes into request lines; stops (keeping the rest in `held`) when the queue is full. */
  const consume = (chunk: Buffer) => {
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf(0x0a, start)) >= 0) {
      if (partialLen + (nl - start) > limits.maxLine) return tooLong();
      const piece = chunk.subarray(start, nl);
      const line = (partialLen ? Buffer.concat([...partial, piece]) : piece).toString('utf8').trim();
      partial = [];
      partialLen = 0;
      start = nl + 1;
      if (line) enqueue(line);
      if (closing) return;
      if (queued >= limits.maxQueued) {
        // Pipelined faster than answered: read no more until the queue drains.
        if (start < chunk.length) held = chunk.subarray(start);
        sock.pause();
        return;
      }
    }
    if (start < chunk.length) {
      if (partialLen === 0) lineStarted = Date.now();
      partialLen += chunk.length - start;
      if (partialLen > limits.maxLine) return tooLong();
      // A copy: the rest of a large chunk must not pin the whole chunk.
      partial.push(Buffer.from(chunk.subarray(start)));
    }
    arm();
  };
  sock.on('data', (chunk: Buffer) => {
    if (!closing) consume(chunk);
  });
  arm();
}
