// The pure-TS memory port and the L2 forwarder over it: linked pairs, bounded queues, counted drops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryPort } from '../../src/io/memory.ts';
import { L2Forwarder } from '../../src/io/l2fwd.ts';
import type { PortKind } from '../../src/io/port.ts';
import { openPort } from '../../src/io/open.ts';
import { IoError } from '../../src/io/errors.ts';
import { VNET, VNET_HDR_LEN } from '../../src/io/port.ts';

function frame(len: number, tag: number, gso = 0, flags = 0): Uint8Array {
  const f = new Uint8Array(len);
  f[VNET.FLAGS] = flags;
  f[VNET.GSO_TYPE] = gso;
  for (let i = VNET_HDR_LEN; i < len; i++) f[i] = (tag + i) & 0xff;
  return f;
}

function burst(n: number, slot: number) {
  const buf = new Uint8Array(n * slot);
  const offsets = Uint32Array.from({ length: n }, (_, i) => i * slot);
  return { buf, offsets, lengths: new Uint32Array(n) };
}

test('memory pair: txBurst on one end arrives on the other, byte for byte and in order', () => {
  const [a, b] = MemoryPort.pair('a', 'b');
  const src = burst(3, 256);
  const frames = [frame(60, 1), frame(100, 2), frame(250, 3)];
  frames.forEach((f, i) => {
    src.buf.set(f, src.offsets[i]);
    src.lengths[i] = f.length;
  });
  assert.equal(a.txBurst(src.buf, src.offsets, src.lengths, 3), 3);
  assert.equal(b.pending, 3);
  assert.ok(b.wait(0));
  const dst = burst(8, 512);
  assert.equal(b.rxBurst(dst.buf, dst.offsets, dst.lengths, 8), 3);
  frames.forEach((f, i) => assert.deepEqual(dst.buf.subarray(dst.offsets[i], dst.offsets[i] + dst.lengths[i]), f));
  assert.equal(b.rxBurst(dst.buf, dst.offsets, dst.lengths, 8), 0);
  assert.equal(b.wait(0), false);
  assert.deepEqual(
    [a.stats().txFrames, a.stats().txBytes, b.stats().rxFrames, b.stats().rxBytes],
    [3, 410, 3, 410],
  );
});

test('memory port: a full queue drops and counts; oversize frames are refused', () => {
  const p = new MemoryPort('p', { capacity: 2, maxFrame: 128 });
  assert.equal(p.inject(frame(60, 1)), true);
  assert.equal(p.inject(frame(60, 2)), true);
  assert.equal(p.inject(frame(60, 3)), false);
  assert.equal(p.inject(frame(200, 4)), false);
  assert.equal(p.stats().rxDropped, 2);
  const dst = burst(1, 128);
  assert.equal(p.rxBurst(dst.buf, dst.offsets, dst.lengths, 5), 1, 'max is bounded by offsets.length');
  assert.equal(dst.buf[VNET_HDR_LEN], (1 + VNET_HDR_LEN) & 0xff);

  const [a, b] = MemoryPort.pair('a', 'b', { capacity: 1 });
  const src = burst(2, 128);
  src.buf.set(frame(60, 1), 0);
  src.buf.set(frame(60, 2), 128);
  src.lengths.set([60, 60]);
  assert.equal(a.txBurst(src.buf, src.offsets, src.lengths, 2), 2, 'frames left the port');
  assert.equal(b.stats().rxDropped, 1, 'the peer counts what its full queue refused');
  src.lengths[0] = 5; // shorter than a vnet header
  assert.equal(a.txBurst(src.buf, src.offsets, src.lengths, 1), 0);
  assert.equal(a.stats().txErrors, 1);
});

test('unlinked memory port keeps what it sends for drain()', () => {
  const p = new MemoryPort('solo');
  const src = burst(1, 128);
  src.buf.set(frame(70, 9), 0);
  src.lengths[0] = 70;
  assert.equal(p.txBurst(src.buf, src.offsets, src.lengths, 1), 1);
  const out = p.drain();
  assert.equal(out.length, 1);
  assert.deepEqual(out[0], frame(70, 9));
  assert.equal(p.drain().length, 0);
});

test('L2 forwarder over memory ports moves frames both ways untouched and counts GSO / partial checksums', async () => {
  const [wireA, fa] = MemoryPort.pair('wa', 'fa', { capacity: 512, maxFrame: 4096 });
  const [fb, wireB] = MemoryPort.pair('fb', 'wb', { capacity: 512, maxFrame: 4096 });
  const fwd = new L2Forwarder(fa, fb, { burst: 16 });
  const sent: Uint8Array[] = [];
  for (let i = 0; i < 100; i++) {
    const f = frame(60 + i * 30, i, i % 4 === 0 ? VNET.GSO_TCPV4 : 0, i % 2 ? VNET.F_NEEDS_CSUM : 0);
    sent.push(f);
    assert.ok(fa.inject(f));
  }
  for (let i = 0; i < 10; i++) assert.ok(fb.inject(frame(80, 200 + i)));
  while (fwd.pump(0) > 0);
  const dst = burst(128, 4096);
  const got: Uint8Array[] = [];
  for (let n; (n = wireB.rxBurst(dst.buf, dst.offsets, dst.lengths, 128)) > 0; )
    for (let i = 0; i < n; i++) got.push(dst.buf.slice(dst.offsets[i], dst.offsets[i] + dst.lengths[i]));
  assert.deepEqual(got, sent);
  assert.equal(wireA.pending, 10);
  const s = fwd.stats();
  assert.equal(s.aToB.frames, 100);
  assert.equal(s.bToA.frames, 10);
  assert.equal(s.aToB.gsoFrames, 25);
  assert.equal(s.aToB.csumPartialFrames, 50);
  assert.equal(s.aToB.txDropped, 0);
  assert.equal(s.aToB.maxFrame, 60 + 99 * 30);
  assert.ok(s.aToB.bursts >= 100 / 16);

  // run()/stop(): frames injected while the loop runs get forwarded.
  const done = fwd.run();
  fa.inject(frame(64, 1));
  await new Promise((r) => setTimeout(r, 20));
  await fwd.stop();
  await done;
  assert.equal(fwd.stats().aToB.frames, 101);
});

test('openPort: memory opens, unknown kinds are EINVAL IoErrors', () => {
  const p = openPort('memory', 'm0');
  assert.equal(p.kind, 'memory');
  assert.equal(p.fd, -1);
  assert.throws(() => openPort('nosuch' as PortKind, 'eth0'), (e: unknown) => e instanceof IoError && e.code === 'EINVAL');
});
