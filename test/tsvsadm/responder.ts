// A control-socket responder for tsvsadm tests: a temp unix socket answering each request line.
import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Request, Response } from '../../src/ctl/protocol.ts';

/** Listen on a temp socket; answer each request line with `answer(request)`. */
export async function responder(answer: (req: Request) => Response | string | null): Promise<{ path: string; server: Server; seen: unknown[]; done: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'tsvsadm-'));
  const path = join(dir, 'tsvsd.sock');
  const seen: unknown[] = [];
  const server = createServer((s) => {
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const req = JSON.parse(line) as Request;
        seen.push(req);
        const a = answer(req);
        if (a === null) s.destroy();
        else s.write(typeof a === 'string' ? a : JSON.stringify(a) + '\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { path, server, seen, done: () => { server.close(); rmSync(dir, { recursive: true, force: true }); } };
}

