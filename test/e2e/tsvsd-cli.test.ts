// tsvsd's command-line contract: one clear line on refusal, clean exit on SIGTERM, socket mode 0600, --busy-poll.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, writeFileSync, statSync, existsSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNetns, withNetns, waitFor } from '../../src/lab/netns.ts';
import { ROOT } from './director-harness.ts';

const TSVSD = [process.execPath, `${ROOT}bin/tsvsd.mjs`];

/** CPU seconds (user + system) process `pid` uses over the next `ms` milliseconds. */
async function cpuOver(pid: number, ms: number): Promise<number> {
  const ticks = () => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]); // utime, stime
  };
  const a = ticks();
  await new Promise((r) => setTimeout(r, ms));
  return (ticks() - a) / 100; // USER_HZ
}

test('tsvsd refuses bad starts with one clear line and stops cleanly on SIGTERM', { skip: !canUseNetns() && 'needs root', timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvsd-cli-'));
  try {
    await withNetns('cli', async (n) => {
      await n.add('d');
      await n.add('p');
      await n.veth('d', 'up0', 'p', 'peer0');
      await n.veth('d', 'down0', 'p', 'peer1');
      await n.ip('d', 'link', 'set', 'down0', 'down');
      const sock = join(dir, 's.sock');
      const missing = await n.exec('d', [...TSVSD, '--interface', 'nope0', '--socket', sock]);
      assert.equal(missing.code, 1);
      assert.equal(missing.stderr, 'tsvsd: interface nope0 does not exist in this network namespace\n');
      const down = await n.exec('d', [...TSVSD, '--interface', 'down0', '--socket', sock]);
      assert.equal(down.code, 1);
      assert.equal(down.stderr, 'tsvsd: interface down0 is down (ip link set down0 up)\n');
      // Not root in the kernel's sense: uid 0 with CAP_NET_RAW and CAP_NET_ADMIN dropped from every set
      // (an unprivileged uid has an empty effective set; the preflight reads that set, not the uid).
      // Staying uid 0 keeps the checkout readable wherever it lives (under /root, mode 0700, too).
      const dropped = ['setpriv', '--inh-caps=-net_raw,-net_admin', '--bounding-set=-net_raw,-net_admin'];
      const caps = await n.exec('d', [...dropped, 'grep', '^CapEff:', '/proc/self/status']);
      assert.equal(BigInt(`0x${caps.stdout.split(/\s+/)[1]}`) & 0x3000n, 0n, `setpriv dropped both: ${caps.stdout}`);
      const noroot = await n.exec('d', [...dropped, ...TSVSD, '--interface', 'up0', '--socket', sock]);
      assert.equal(noroot.code, 1);
      assert.match(noroot.stderr, /^tsvsd: tsvsd needs root \(CAP_NET_RAW and CAP_NET_ADMIN\) to own interfaces\n$/);
      const cfg = join(dir, 'bad.yaml');
      writeFileSync(cfg, 'interfaces: [up0]\nservices:\n  - protocol: tcp\n    address: 198.18.1.100\n    port: 99999\n');
      const bad = await n.exec('d', [...TSVSD, '--config', cfg, '--socket', sock]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /bad\.yaml:5: services\[0\]\.port/);
      assert.ok(!existsSync(sock), 'nothing started');

      const child = spawn('ip', ['netns', 'exec', n.ns('d'), ...TSVSD, '--interface', 'up0', '--address', '198.18.0.1/24@up0', '--socket', sock], { stdio: ['ignore', 'ignore', 'pipe'] });
      let log = '';
      child.stderr!.on('data', (b) => (log += b));
      await waitFor('tsvsd ready', () => log.includes('control socket listening'), 30_000);
      assert.equal(statSync(sock).mode & 0o777, 0o600, 'control socket is mode 0600');
      const ping = await n.exec('p', ['sh', '-c', 'ip addr add 198.18.0.2/24 dev peer0 && ping -c 1 -W 2 198.18.0.1']);
      assert.equal(ping.code, 0, 'tsvsd answers ARP and ICMP echo for its address');
      const idleCpu = await cpuOver(child.pid!, 1000);
      // An idle client (or a running trace) must not hold up the shutdown.
      const idle = connect(sock);
      await new Promise<void>((r) => idle.once('connect', () => r()));
      idle.on('error', () => {});
      const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      const t0 = Date.now();
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.ok(Date.now() - t0 < 5000, 'stopped promptly with a client connected');
      idle.destroy();
      assert.ok(!existsSync(sock), 'the socket is removed on exit');
      for (const line of log.trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), `JSON log line: ${line}`);

      // --busy-poll: same service, but the data-plane thread spins instead of sleeping when idle.
      const busy = spawn('ip', ['netns', 'exec', n.ns('d'), ...TSVSD, '--interface', 'up0', '--address', '198.18.0.1/24@up0', '--socket', sock, '--busy-poll'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let blog = '';
      busy.stderr!.on('data', (b) => (blog += b));
      try {
        await waitFor('tsvsd --busy-poll ready', () => blog.includes('control socket listening'), 30_000);
        assert.equal((await n.exec('p', ['ping', '-c', '1', '-W', '2', '198.18.0.1'])).code, 0, 'busy-poll forwards and answers');
        const busyCpu = await cpuOver(busy.pid!, 1000);
        assert.ok(busyCpu > 0.15 && busyCpu > 3 * idleCpu, `busy-poll spins (${busyCpu} s of CPU in 1 s idle) where the default sleeps (${idleCpu} s)`);
      } finally {
        const gone = new Promise<number | null>((r) => busy.once('exit', (c) => r(c)));
        busy.kill('SIGTERM');
        assert.equal(await gone, 0);
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
