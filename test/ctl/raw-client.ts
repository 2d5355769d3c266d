// A raw control-socket client for tests that misbehave on purpose: it writes whatever it is told and collects the reply lines.
import { connect, type Socket } from 'node:net';

export interface ReplyLine {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: { code: string; op: string; message: string };
}

/** Connects to `path`; `lines` fills as replies arrive, `closed` resolves (with the time) when tsvsd hangs up. */
export function rawControlClient(path: string) {
  const sock = connect(path);
  const lines: ReplyLine[] = [];
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, nl)) as ReplyLine);
      buf = buf.slice(nl + 1);
    }
  });
  sock.on('error', () => {});
  const closed = new Promise<number>((r) => sock.once('close', () => r(Date.now())));
  const connected = new Promise<void>((r, j) => {
    sock.once('connect', () => r());
    sock.once('error', j);
  });
  return { sock, lines, closed, connected };
}

/** Writes `total` bytes of "a" (no newline) in 1 MiB chunks, honouring backpressure, until sent or the peer hangs up. */
export async function streamWithoutNewline(sock: Socket, total: number): Promise<number> {
  const chunk = Buffer.alloc(1 << 20, 0x61);
  let sent = 0;
  while (sent < total && !sock.destroyed && sock.writable) {
    if (!sock.write(chunk)) await new Promise((r) => (sock.once('drain', r), sock.once('close', r)));
    sent += chunk.length;
  }
  return sent;
}
