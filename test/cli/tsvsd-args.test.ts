// tsvsd's command line merged over its config file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTsvsdArgs, missingNetCapabilities } from '../../src/cli/tsvsd-args.ts';
import { ConfigError } from '../../src/ctl/config.ts';

test('--busy-poll: off by default, on by flag or YAML busy_poll', () => {
  assert.equal(parseTsvsdArgs(['--interface', 'eth1'], {}).config.busy_poll, false);
  assert.equal(parseTsvsdArgs(['--interface', 'eth1', '--busy-poll'], {}).config.busy_poll, true);
  assert.throws(() => parseTsvsdArgs(['--interface', 'eth1', '--busy-poll=yes'], {}), ConfigError);
});

test('--kernel-rx: drop by default, pass on request, YAML kernel_rx, anything else refused naming the field', () => {
  assert.equal(parseTsvsdArgs(['--interface', 'eth1'], {}).config.kernel_rx, 'drop');
  assert.equal(parseTsvsdArgs(['--interface', 'eth1', '--kernel-rx', 'pass'], {}).config.kernel_rx, 'pass');
  assert.throws(() => parseTsvsdArgs(['--interface', 'eth1', '--kernel-rx', 'keep'], {}), (e: unknown) => e instanceof ConfigError && /kernel_rx/.test(e.message));
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-args-'));
  try {
    const file = join(dir, 'tsvs.yaml');
    writeFileSync(file, 'interfaces: [eth1]\nkernel_rx: pass\n');
    assert.equal(parseTsvsdArgs(['--config', file], {}).config.kernel_rx, 'pass');
    // The flag wins over the file.
    assert.equal(parseTsvsdArgs(['--config', file, '--kernel-rx', 'drop'], {}).config.kernel_rx, 'drop');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('missingNetCapabilities reads the effective set of /proc/PID/status, not the uid', () => {
  const status = (eff: string) => `Name:\tnode\nUid:\t0\t0\t0\t0\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t${eff}\n`;
  assert.deepEqual(missingNetCapabilities(status('000001ffffffffff')), []);
  // Bits 12 (CAP_NET_ADMIN) and 13 (CAP_NET_RAW) only.
  assert.deepEqual(missingNetCapabilities(status('0000000000003000')), []);
  assert.deepEqual(missingNetCapabilities(status('0000000000001000')), ['CAP_NET_RAW']);
  assert.deepEqual(missingNetCapabilities(status('0000000000002000')), ['CAP_NET_ADMIN']);
  // Root with both dropped (setpriv --bounding-set=-net_raw,-net_admin) and an ordinary user.
  assert.deepEqual(missingNetCapabilities(status('000001ffffffcfff')), ['CAP_NET_RAW', 'CAP_NET_ADMIN']);
  assert.deepEqual(missingNetCapabilities(status('0000000000000000')), ['CAP_NET_RAW', 'CAP_NET_ADMIN']);
  assert.deepEqual(missingNetCapabilities('Name:\tnode\n'), ['CAP_NET_RAW', 'CAP_NET_ADMIN']);
});
