// Client side of the control protocol: one unix-socket connection to tsvsd, requests answered in order.
import { createConnection, type Socket } from 'node:net';
import { IpvsError, type IpvsErrno } from './errors.ts';
import { PROTOCOL_VERSION, errorOpFor, type Op, type RequestBody, type Response, type ResultMap } from './protocol.ts';

/** No tsvsd answers on the socket (absent, refused, or it hung up): the message names the path. */
export class NoDaemonError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`no tsvsd answering on ${path} (${reason}); is tsvsd running? (set --socket PATH or TSVS_SOCKET)`);
    this.name = 'NoDaemonError';
  }
}

type Body<O extends Op> = Extract<RequestBody, { op: O }>;

interface Pending {
  id: number;
  resolve: (r: Response) => void;
  reject: (e: Error) => void;
}

/**
 * A connection to tsvsd. `request` sends one request and resolves with its result, or rejects with
 * an IpvsError (the director refused) or a NoDaemonError (nothing answers on the socket).
 */
export class ControlClient {
  private sock: Socket | null = null;
  private connecting: Promise<Socket> | null = null;
  private buf = '';
  private nextId = 1;
  private pending: Pending[] = [];

  constructor(readonly path: string) {}

  private connect(): Promise<Socket> {
    if (this.sock) return Promise.resolve(this.sock);
    if (this.connecting) return this.connecting;
    this.connecting = new Promise<Socket>((resolve, reject) => {
      const s = createConnection({ path: this.path });
      s.setEncoding('utf8');
      const onError = (e: NodeJS.ErrnoException) => {
        this.connecting = null;
        reject(new NoDaemonError(this.path, e.code ?? e.message));
      };
      s.once('error', onError);
      s.once('connect', () => {
        s.off('error', onError);
        this.sock = s;
        this.connecting = null;
        s.on('data', (d: string) => this.onData(d));
        s.on('error', (e: NodeJS.ErrnoException) => this.failAll(new NoDaemonError(this.path, e.code ?? e.message)));
        s.on('close', () => {
          this.sock = null;
          this.failAll(new NoDaemonError(this.path, 'connection closed before an answer'));
        });
        resolve(s);
      });
    });
    return this.connecting;
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line.trim() === '') continue;
      let msg: Response;
      try {
        msg = JSON.parse(line) as Response;
      } catch {
        this.failAll(new NoDaemonError(this.path, 'the peer does not speak the tsvs control protocol'));
        this.sock?.destroy();
        return;
      }
      const i = this.pending.findIndex((p) => p.id === msg.id);
      if (i < 0) continue;
      const [p] = this.pending.splice(i, 1);
      p!.resolve(msg);
    }
  }

  private failAll(e: Error): void {
    const ps = this.pending;
    this.pending = [];
    for (const p of ps) p.reject(e);
  }

  /** Send one request and await its result. */
  async request<O extends Op>(body: Body<O>): Promise<ResultMap[O]> {
    const sock = await this.connect();
    const id = this.nextId++;
    const msg = { v: PROTOCOL_VERSION, id, ...body };
    const res = await new Promise<Response>((resolve, reject) => {
      this.pending.push({ id, resolve, reject });
      sock.write(JSON.stringify(msg) + '\n');
    });
    if (res.v !== PROTOCOL_VERSION) {
      throw new NoDaemonError(this.path, `the peer speaks protocol v${String(res.v)}, this client v${PROTOCOL_VERSION}`);
    }
    if (res.ok) return res.result as ResultMap[O];
    const code = (res.error?.code ?? 'EINVAL') as IpvsErrno;
    throw new IpvsError(code, res.error?.op ?? errorOpFor(body.op), res.error?.message);
  }

  /** Close the connection (pending requests fail with NoDaemonError). */
  close(): void {
    this.sock?.end();
    this.sock = null;
  }
}

/** Connect, send one request, await its answer, disconnect. */
export async function requestOnce<O extends Op>(path: string, body: Body<O>): Promise<ResultMap[O]> {
  const c = new ControlClient(path);
  try {
    return await c.request(body);
  } finally {
    c.close();
  }
}
