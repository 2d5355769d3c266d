// The real-server programs of the lab: an HTTP server and a UDP echo server that both answer with their name.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';

/** Default ports of the lab's real-server programs (what the lab's virtual services point at). */
export const RS_HTTP_PORT = 80;
export const RS_UDP_PORT = 53;

export interface RealServerProgramOptions {
  /** The name every answer carries, e.g. "rs1". */
  name: string;
  httpPort?: number;
  udpPort?: number;
  /** Bind address; 0.0.0.0 so DR/TUN requests to the VIP and NAT requests to the RIP both land. */
  host?: string;
  /** Called when a UDP socket is bound to a (new) local address. */
  onUdpBound?: (addr: string) => void;
}

export interface RealServerPrograms {
  httpPort: number;
  udpPort: number;
  /** Addresses the UDP echo has a socket on. */
  udpAddresses(): string[];
  /** Requests answered so far (HTTP requests + UDP datagrams). */
  served(): { http: number; udp: number };
  close(): Promise<void>;
}

/**
 * Starts both programs. HTTP: every request (any method, any path) gets 200 and the body "NAME\n".
 * UDP: every datagram gets back "NAME " followed by the datagram's payload, byte for byte, sent from the
 * address it was sent to.
 */
/** 64 KB of the byte pattern downloads use: byte i is (i * 31 + 7) & 255, repeating every 64 KB. */
export function patternChunk(): Buffer {
  const b = Buffer.alloc(65536);
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + 7) & 255;
  return b;
}

export async function startRealServerPrograms(opts: RealServerProgramOptions): Promise<RealServerPrograms> {
  const host = opts.host ?? '0.0.0.0';
  const body = Buffer.from(`${opts.name}\n`);
  const prefix = Buffer.from(`${opts.name} `);
  const counts = { http: 0, udp: 0 };

  const http: Server = createServer((req, res) => {
    counts.http++;
    // A request with a body is answered "NAME SHA256 BYTES" so clients can check every byte crossed;
    // the download path ("/bytes/N") sends N deterministic bytes for the reverse direction.
    const hash = createHash('sha256');
    let n = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      n += c.length;
    });
    req.on('end', () => {
      const m = /^\/bytes\/(\d{1,9})$/.exec(req.url ?? '');
      if (m) {
        const total = Number(m[1]);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total, 'x-real-server': opts.name });
        const chunk = patternChunk();
        let left = total;
        const pump = () => {
          while (left > 0) {
            const k = Math.min(left, chunk.length);
            left -= k;
            if (!res.write(k === chunk.length ? chunk : chunk.subarray(0, k))) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
        return;
      }
      const out = n > 0 ? Buffer.from(`${opts.name} ${hash.digest('hex')} ${n}\n`) : body;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': out.length, 'x-real-server': opts.name });
      res.end(out);
    });
  });
  http.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.httpPort ?? RS_HTTP_PORT, host, () => resolve());
  });

  // A UDP socket bound to 0.0.0.0 answers from the address the route picks (the RIP), not from the
  // address the client asked (the VIP): a DR/TUN client would drop that answer. So there is one socket
  // per local address (the kernel delivers to the most specific bind), found again every 250 ms because
  // the VIP may be added after start-up, plus the wildcard for anything else.
  const udpPort = opts.udpPort ?? RS_UDP_PORT;
  const sockets = new Map<string, Socket>();
  const bindUdp = async (addr: string): Promise<void> => {
    const sock: Socket = createSocket({ type: 'udp4', reuseAddr: true });
    sock.on('message', (msg, rinfo) => {
      counts.udp++;
      sock.send(Buffer.concat([prefix, msg]), rinfo.port, rinfo.address);
    });
    sockets.set(addr, sock);
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind(udpPort, addr, () => resolve());
      });
    } catch (e) {
      sockets.delete(addr);
      sock.close();
      throw e;
    }
    // After start-up, a send error (e.g. no route back) must not kill the server.
    sock.on('error', () => {});
    opts.onUdpBound?.(addr);
  };
  const localAddrs = () =>
    Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && a.family === 'IPv4')
      .map((a) => a!.address);
  const scan = async () => {
    for (const a of localAddrs()) if (!sockets.has(a)) await bindUdp(a).catch(() => {});
  };
  let rescan: NodeJS.Timeout | undefined;
  try {
    await bindUdp(host);
    if (host === '0.0.0.0') {
      await scan();
      rescan = setInterval(() => void scan(), 250);
    }
  } catch (e) {
    http.close();
    for (const sock of sockets.values()) sock.close();
    throw e;
  }

  const httpAddr = http.address();
  return {
    httpPort: typeof httpAddr === 'object' && httpAddr ? httpAddr.port : (opts.httpPort ?? RS_HTTP_PORT),
    udpPort: sockets.get(host)!.address().port,
    udpAddresses: () => [...sockets.keys()],
    served: () => ({ ...counts }),
    close: async () => {
      http.closeAllConnections();
      if (rescan) clearInterval(rescan);
      await Promise.all([
        new Promise<void>((r) => http.close(() => r())),
        ...[...sockets.values()].map((sock) => new Promise<void>((r) => sock.close(() => r()))),
      ]);
    },
  };
}

/** Arguments of src/lab/rs-main.ts for real server `name`. */
export function realServerProgramArgs(name: string, httpPort = RS_HTTP_PORT, udpPort = RS_UDP_PORT, exitWithStdin = false): string[] {
  const args = ['--name', name, '--http', String(httpPort), '--udp', String(udpPort)];
  if (exitWithStdin) args.push('--exit-with-stdin');
  return args;
}
