// Process entry for one real server's programs: `rs-main --name rs1 [--http 80] [--udp 53] [--exit-with-stdin]`.
import { parseArgs } from 'node:util';
import { startRealServerPrograms, RS_HTTP_PORT, RS_UDP_PORT } from './servers.ts';

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    http: { type: 'string', default: String(RS_HTTP_PORT) },
    udp: { type: 'string', default: String(RS_UDP_PORT) },
    host: { type: 'string', default: '0.0.0.0' },
    // Set by in-process labs: the programs die with the process that started them, even on a crash.
    'exit-with-stdin': { type: 'boolean', default: false },
  },
});

if (!values.name) {
  console.error('rs-main: --name is required');
  process.exit(2);
}

const programs = await startRealServerPrograms({
  name: values.name,
  httpPort: Number(values.http),
  udpPort: Number(values.udp),
  host: values.host!,
  // The lab waits for "udp on VIP" after setting up a DR/TUN real server.
  onUdpBound: (addr) => console.log(`udp on ${addr}`),
});
// The lab waits for this line (in a pipe or a log file) before it calls the real server ready.
console.log(`ready ${values.name} http=${programs.httpPort} udp=${programs.udpPort} pid=${process.pid}`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void programs.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (values['exit-with-stdin']) {
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
