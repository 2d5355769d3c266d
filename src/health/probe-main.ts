// The probe helper process: started inside a network namespace, it runs socket checks for tsvsd and answers in JSON lines.
import { createInterface } from 'node:readline';
import { runCheck, type CheckSpec } from './checks.ts';

// One request per line: { id, spec }; one answer per line: { id, result }. Exits when stdin closes,
// so it never outlives tsvsd.
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let msg: { id: number; spec: CheckSpec };
  try {
    msg = JSON.parse(line) as { id: number; spec: CheckSpec };
  } catch {
    return;
  }
  const spec = { ...msg.spec };
  delete spec.netns;
  void runCheck(spec).then((result) => process.stdout.write(JSON.stringify({ id: msg.id, result }) + '\n'));
});
rl.on('close', () => process.exit(0));
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
