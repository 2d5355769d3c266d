// A client for BIRD's control socket (the protocol birdc speaks): one command, its reply lines, errors as exceptions.
import { createConnection } from 'node:net';

/** A reply line: BIRD's 4-digit code (continuation lines repeat the previous one) and the text. */
export interface BirdLine {
  code: number;
  text: string;
}

/** BIRD answered with an error code (8xxx run-time, 9xxx parse error). */
export class BirdError extends Error {
  override name = 'BirdError';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Sends one command to the BIRD control socket at `path` and resolves with its reply lines (the
 * welcome line dropped). Rejects on a connection problem, a timeout, or an error reply.
 */
export function birdCommand(path: string, command: string, timeoutMs = 3000): Promise<BirdLine[]> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    const lines: BirdLine[] = [];
    let buf = '';
    let welcomed = false;
    let last = 0;
    const timer = setTimeout(() => finish(new Error(`BIRD did not answer "${command}" within ${timeoutMs} ms`)), timeoutMs);
    const finish = (err: Error | null) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(lines);
    };
    sock.setEncoding('utf8');
    sock.on('error', (e) => finish(e));
    sock.on('close', () => finish(new Error(`BIRD closed its control socket during "${command}"`)));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const raw = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^(\d{4})([ -])(.*)$/.exec(raw);
        let code = last;
        let text: string;
        let final = false;
        if (m) {
          code = Number(m[1]);
          text = m[3]!;
          final = m[2] === ' ';
        } else text = raw.startsWith(' ') ? raw.slice(1) : raw;
        last = code;
        if (!welcomed) {
          // "0001 BIRD 2.0.12 ready." comes first; then the command goes out.
          if (final) {
            welcomed = true;
            sock.write(`${command}\n`);
          }
          continue;
        }
        if (code >= 8000) return finish(new BirdError(code, `BIRD: ${command}: ${text}`));
        if (text !== '' || !final) lines.push({ code, text });
        if (final) return finish(null);
      }
    });
  });
}

/** One protocol row of `show protocols`. */
export interface BirdProtocol {
  name: string;
  proto: string;
  state: string;
  since: string;
  info: string;
}

/** Parses `show protocols` (code 1002 rows). */
export function parseProtocols(lines: readonly BirdLine[]): BirdProtocol[] {
  return lines
    .filter((l) => l.code === 1002)
    .map((l) => {
      const [name = '', proto = '', , state = '', since = '', ...info] = l.text.trim().split(/\s+/);
      return { name, proto, state, since, info: info.join(' ') };
    });
}

/** From `show protocols all NAME`: the neighbor address, BGP state and the channel's exported route count. */
export function parseProtocolDetail(lines: readonly BirdLine[]): { neighbor: string; bgpState: string; exported: number } {
  let neighbor = '';
  let bgpState = '';
  let exported = 0;
  for (const { text } of lines) {
    let m = /^\s*BGP state:\s+(\S+)/.exec(text);
    if (m) bgpState = m[1]!;
    m = /^\s*Neighbor address:\s+(\S+)/.exec(text);
    if (m) neighbor = m[1]!;
    m = /^\s*Routes:\s+\d+ imported, (\d+) exported/.exec(text);
    if (m) exported = Number(m[1]);
  }
  return { neighbor, bgpState, exported };
}

/** From `show bfd sessions`: neighbor address → BFD state (Up, Down, Init, AdminDown). */
export function parseBfdSessions(lines: readonly BirdLine[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const { text } of lines) {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3})\s+\S+\s+(\S+)/.exec(text.trim());
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}
