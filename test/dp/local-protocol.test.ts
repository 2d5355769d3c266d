// Director.addLocalProtocol/removeLocalProtocol join and leave their groups' MACs on the ports they listen on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryPort } from '../../src/io/memory.ts';
import { Director, groupMac, type LocalProtocol } from '../../src/dp/director.ts';
import { IoError } from '../../src/io/errors.ts';

const lp = (port: number, groups: number[]): LocalProtocol => ({ proto: 17, udpPort: 8848, port, groups, deliver: () => {} });

test('groups are joined on the protocol\'s port (every port for -1), counted, and left on removal', () => {
  const a = new MemoryPort('a0');
  const b = new MemoryPort('b0');
  const d = new Director([a, b]);
  assert.deepEqual([...groupMac(0xe0000051)], [1, 0, 0x5e, 0, 0, 0x51]);
  assert.deepEqual([...groupMac(0xefff8012)], [1, 0, 0x5e, 0x7f, 0x80, 0x12], 'low 23 bits only');
  const sync = lp(0, [0xe0000051]);
  const vrrp = lp(-1, [0xe0000012, 0xe0000051]);
  d.addLocalProtocol(sync);
  d.addLocalProtocol(vrrp);
  assert.deepEqual(Object.fromEntries(a.multicast), { '01:00:5e:00:00:51': 2, '01:00:5e:00:00:12': 1 });
  assert.deepEqual(Object.fromEntries(b.multicast), { '01:00:5e:00:00:51': 1, '01:00:5e:00:00:12': 1 });
  d.removeLocalProtocol(sync);
  d.removeLocalProtocol(sync);
  assert.deepEqual(Object.fromEntries(a.multicast), { '01:00:5e:00:00:51': 1, '01:00:5e:00:00:12': 1 }, 'a second removal leaves nothing twice');
  d.removeLocalProtocol(vrrp);
  assert.equal(a.multicast.size + b.multicast.size, 0);
});

test('a device that refuses a join: the error surfaces, the joins made are undone, nothing is delivered', () => {
  const a = new MemoryPort('a0');
  const b = new MemoryPort('b0');
  b.mcAdd = () => {
    throw new IoError('ESETUP', 'refused');
  };
  const d = new Director([a, b]);
  assert.throws(() => d.addLocalProtocol(lp(-1, [0xe0000051])), IoError);
  assert.equal(a.multicast.size, 0);
  d.removeLocalProtocol(lp(-1, [0xe0000051]));
  assert.equal(a.multicast.size, 0);
});
