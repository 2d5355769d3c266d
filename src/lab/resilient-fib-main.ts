// Process entry of the lab router's resilient-ECMP programmer (src/lab/resilient-fib.ts), run inside the router namespace.
import { ResilientFib, BIRD_TABLE, BUCKETS } from './resilient-fib.ts';

const stamp = () => new Date().toISOString();
const fib = new ResilientFib((line) => console.log(`${stamp()} ${line}`));
try {
  await fib.start();
} catch (e) {
  console.error(`resilient-fib: ${(e as Error).message}`);
  console.error('(resilient nexthop groups need Linux 5.13 or later and iproute2 5.13 or later; the namespace\'s lo must be up)');
  process.exit(1);
}
console.log(`ready resilient-fib: table ${BIRD_TABLE} -> main, ${BUCKETS} buckets per group, pid ${process.pid}`);
const stop = () => {
  fib.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
