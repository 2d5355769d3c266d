import { labUp } from '../../src/lab/topology.ts';
const mode = process.argv[2] as 'dr';
const t0 = Date.now();
const lab = await labUp({ mode, servers: 3, name: 'smoke' });
console.log('up in', Date.now() - t0, 'ms', lab.roles());
try {
  console.log((await lab.exec('client', ['ping', '-c1', '-W1', '198.18.0.1'])).stdout.split('\n')[1]);
  console.log((await lab.exec('router', ['ping', '-c1', '-W1', lab.realServers[0]!.ip])).stdout.split('\n')[1]);
  console.log((await lab.exec('rs1', ['curl', '-s', 'http://' + lab.realServers[1]!.ip + '/'])));
  console.log((await lab.exec('rs1', ['ip', 'addr'])).stdout);
  console.log((await lab.exec('rs1', ['ip', 'route'])).stdout);
} finally { const t1 = Date.now(); await lab.down(); console.log('down in', Date.now() - t1); }
