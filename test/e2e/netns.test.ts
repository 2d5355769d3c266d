// The namespace builder: unique names, a veth link that carries a real ping, and nothing left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canUseNetns, run, withNetns } from '../../src/lab/netns.ts';

test('netns: veth link carries ping and destroy removes everything', { skip: !canUseNetns() && 'needs root' }, async () => {
  let names: string[] = [];
  await withNetns('nst', async (n) => {
    await n.add('a');
    await n.add('b');
    names = [n.ns('a'), n.ns('b')];
    await n.veth('a', 'va', 'b', 'vb');
    await n.ip('a', 'addr', 'add', '198.18.0.1/24', 'dev', 'va');
    await n.ip('b', 'addr', 'add', '198.18.0.2/24', 'dev', 'vb');
    const r = await n.exec('a', ['ping', '-c', '2', '-i', '0.2', '-W', '2', '198.18.0.2']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /2 received/);
    const sleeper = n.spawn('b', ['sleep', '30']);
    assert.ok(sleeper.pid);
  });
  const list = (await run('ip', ['netns', 'list'])).stdout;
  for (const name of names) assert.ok(!list.includes(name), `${name} left behind`);
});
