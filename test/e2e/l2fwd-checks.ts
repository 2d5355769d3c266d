// The check every port type's forwarder e2e test runs: ping both ways, then a TCP transfer each way, hashed.
import assert from 'node:assert/strict';
import type { L2fwdLab } from '../../src/lab/l2fwd-lab.ts';

/** Ping A→B and B→A (every echo answered), then `bytes` of TCP each way with sha256 compared. */
export async function bothWays(lab: L2fwdLab, bytes: number): Promise<void> {
  for (const side of ['a', 'b'] as const) {
    const p = await lab.ping(side, 3);
    assert.ok(p.sent > 0);
    assert.equal(p.received, p.sent, `ping from ${side}: ${p.output}`);
  }
  for (const side of ['a', 'b'] as const) {
    const r = await lab.tcpTransfer(side, bytes).catch(async (e: Error) => {
      // Say where the bytes stopped: the forwarder's and the ports' counters at the time of failure.
      throw new Error(`${e.message}; forwarder: ${JSON.stringify(await lab.fwdStats().catch(() => null))} ${lab.fwdStderr()}`);
    });
    assert.equal(r.recvBytes, bytes, `TCP from ${side}: byte count`);
    assert.equal(r.recvSha, r.sentSha, `TCP from ${side}: sha256`);
  }
}
