// tsvsd's command line merged over its config file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTsvsdArgs } from '../../src/cli/tsvsd-args.ts';
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
