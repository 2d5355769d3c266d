// A real server's long-lived-connection peer for the failover tests: echoes every byte back and prints, per connection, the bytes and SHA-256 it received.
import { createServer } from 'node:net';
import { createHash } from 'node:crypto';

const port = Number(process.argv[2] ?? 9000);
const server = createServer((s) => {
  const h = createHash('sha256');
  let n = 0;
  const peer = `${s.remoteAddress}:${s.remotePort}`;
  s.on('data', (d) => {
    h.update(d);
    n += d.length;
    s.write(d);
  });
  s.on('end', () => {
    console.log(JSON.stringify({ peer, bytes: n, hash: h.digest('hex') }));
    s.end();
  });
  s.on('error', (e) => console.log(JSON.stringify({ peer, bytes: n, error: e.message })));
});
server.listen(port, '0.0.0.0', () => console.log(`ready echo ${port}`));
process.on('SIGTERM', () => process.exit(0));
