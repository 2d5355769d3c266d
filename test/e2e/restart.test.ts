// kill -9 of tsvsd leaves nothing that stops a restart (sockets, tcx links, TAP bridges); a live tsvsd is never displaced; persistent labs survive a killed process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNetns, run, waitFor } from '../../src/lab/netns.ts';
import { namespacePids, tsvsdArgs } from '../../src/lab/topology.ts';
import { startDirector } from '../../src/lab/director.ts';
import { withDirectorLab, ROOT, VIP, type DirectorLab } from './director-harness.ts';

const skip = !canUseNetns() && 'needs root';

async function defineAndServe(d: DirectorLab, what: string, define = true): Promise<void> {
  const port = d.lab.state.ports.http;
  if (define) await d.restore([`-A -t ${VIP}:${port} -s rr`, ...d.lab.realServers.map((r) => `-a -t ${VIP}:${port} -r ${r.ip}:${port} -m`)].join('\n') + '\n');
  const r = await d.client('http', port, 10);
  assert.equal(r.failed, 0, `${what}: ${r.errors.join('; ')}`);
  assert.equal(Object.keys(r.byServer).length, d.lab.realServers.length, `${what}: every real server answered`);
}

/** The BPF links (tcx ingress) process `pid` holds, by id, from its fds' fdinfo. */
function tcxLinks(pid: number): number[] {
  const ids: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    let info: string;
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    const m = /^link_type:\s+tcx$[\s\S]*^link_id:\s+(\d+)$/m.exec(info);
    if (m) ids.push(Number(m[1]));
  }
  return ids.sort((a, b) => a - b);
}

/** Ids of every BPF link on the system (bpftool), or null when bpftool is not installed. */
function allLinks(): number[] | null {
  try {
    return (JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { id: number }[]).map((l) => l.id);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function tsvsdPid(d: DirectorLab): number {
  const procs = d.lab.state.procs.filter((p) => p.what === 'tsvsd');
  return procs[procs.length - 1]!.pid;
}

async function kill9Tsvsd(d: DirectorLab): Promise<number> {
  const pid = tsvsdPid(d);
  assert.ok((await namespacePids(d.lab.ns('director'))).includes(pid), 'tsvsd runs in the director namespace');
  process.kill(pid, 'SIGKILL');
  await waitFor('tsvsd to die', async () => !(await namespacePids(d.lab.ns('director'))).includes(pid), 10_000);
  return pid;
}

/** The second tsvsd on a live socket: refused with one line before it opens any interface. */
async function secondRefused(d: DirectorLab, extra: string[]): Promise<void> {
  const r = await run('ip', ['netns', 'exec', d.lab.ns('director'), process.execPath, `${ROOT}bin/tsvsd.mjs`, ...tsvsdArgs(d.lab.director), ...extra], 60_000);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `tsvsd: another tsvsd already answers on ${d.lab.director.socket} (stop it first, or give another path)\n`);
}

test('kill -9 tsvsd (AF_PACKET, tcx drop, pcap, admin socket): a restart with the same arguments starts, forwards and answers', { skip, timeout: 240_000 }, async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'tsvs-restart-'));
  const pcap = join(tmp, 'cap.pcap');
  const admin = join(tmp, 'admin.sock');
  const extra = ['--kernel-rx', 'drop', '--pcap', pcap, '--admin', `unix:${admin}`];
  try {
    await withDirectorLab('nat', async (d) => {
      await defineAndServe(d, 'first tsvsd');
      await secondRefused(d, extra);
      await defineAndServe(d, 'first tsvsd, after the refused second one', false);

      // The kernel-rx drop programs: one tcx link per owned interface, held only by tsvsd's fds.
      const links = tcxLinks(tsvsdPid(d));
      assert.equal(links.length, 2, `tcx links of tsvsd: ${links.join(' ')}`);
      await kill9Tsvsd(d);
      if (allLinks() === null) t.diagnostic('bpftool is not installed (scripts/ensure-tools.sh): the tcx links were not looked for after kill -9');
      else {
        // The kernel frees a link whose last fd closed from a work queue: give it a moment.
        const stale = () => links.filter((id) => allLinks()!.includes(id));
        await waitFor('the killed tsvsd\'s tcx links to go', () => stale().length === 0, 5000).catch(() => {});
        assert.deepEqual(stale(), [], 'the tcx links went with the killed tsvsd');
      }
      const sock = d.lab.director.socket;
      assert.ok(lstatSync(sock).isSocket() && lstatSync(admin).isSocket(), 'kill -9 leaves both socket files behind');
      const dead = await d.adm('-L', '-n');
      assert.notEqual(dead.code, 0, 'nobody answers on the stale socket');

      await startDirector(d.lab, extra);
      assert.equal(tcxLinks(tsvsdPid(d)).length, 2, 'the restarted tsvsd attached its own tcx links');
      const list = await d.admOk('-L', '-n');
      assert.match(list, /^IP Virtual Server version /, 'tsvsadm answers the new tsvsd');
      await defineAndServe(d, 'restarted tsvsd');
      const v = await d.lab.exec('director', ['curl', '-s', '--unix-socket', admin, 'http://localhost/api/v1/version']);
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout, /tsvsd/);
      const magic = readFileSync(pcap).subarray(0, 4).toString('hex');
      assert.ok(['d4c3b2a1', 'a1b2c3d4', '4d3cb2a1', 'a1b23c4d'].includes(magic), `the pcap file was opened again (magic ${magic})`);
    }, 2, extra);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('kill -9 tsvsd --io tap: the bridge it built is found stale and rebuilt; a live one is refused', { skip, timeout: 240_000 }, async () => {
  await withDirectorLab('nat', async (d) => {
    await defineAndServe(d, 'tap tsvsd');
    const bridges = async () => (await d.lab.sh('director', 'ls /sys/class/net')).split(/\s+/).filter((n) => n.startsWith('tbr'));
    const built = await bridges();
    assert.equal(built.length, 2, `one bridge per owned interface (${built.join(' ')})`);
    await kill9Tsvsd(d);
    assert.deepEqual(await bridges(), built, 'kill -9 leaves the bridges behind');
    await startDirector(d.lab, ['--io', 'tap']);
    await defineAndServe(d, 'restarted tap tsvsd');
    // A second tap tsvsd with another socket: its bridge is in use, so it refuses and changes nothing.
    const other = join(d.lab.state.dir, 'other.sock');
    const args = tsvsdArgs(d.lab.director).map((a) => (a === d.lab.director.socket ? other : a));
    const r = await run('ip', ['netns', 'exec', d.lab.ns('director'), process.execPath, `${ROOT}bin/tsvsd.mjs`, ...args, '--io', 'tap'], 60_000);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /lan0 is in use: bridge tbr\d+ holds tap\d+ \(another tsvsd\?\)/);
    await defineAndServe(d, 'tap tsvsd after the refused second one', false);
  }, 2, ['--io', 'tap']);
});

test('kill -9 tsvsd --io macvtap: the restart reuses the macvtaps the killed one made', { skip, timeout: 240_000 }, async () => {
  await withDirectorLab('nat', async (d) => {
    await defineAndServe(d, 'macvtap tsvsd');
    const mvts = async () => (await d.lab.sh('director', 'ls /sys/class/net')).split(/\s+/).filter((n) => n.startsWith('mvt'));
    const made = await mvts();
    assert.equal(made.length, 2, `one macvtap per owned interface (${made.join(' ')})`);
    await kill9Tsvsd(d);
    assert.deepEqual(await mvts(), made, 'kill -9 leaves the macvtaps behind');
    await startDirector(d.lab, ['--io', 'macvtap']);
    await defineAndServe(d, 'restarted macvtap tsvsd');
    assert.deepEqual(await mvts(), made, 'the same macvtaps serve again');
    // Reused, not re-made: another port may be using an existing macvtap, so they stay after this
    // tsvsd's clean stop too (ip link del mvtN removes them).
  }, 2, ['--io', 'macvtap']);
});

test('persistent lab: a killed tsvsd shows in status, down removes everything, the same name comes up again', { skip, timeout: 240_000 }, async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'tsvs-labkill-'));
  const name = `k${process.pid % 100000}`;
  const tsvs = (lab: 'lab', cmd: string, ...a: string[]) => run(process.execPath, [`${ROOT}bin/tsvs.mjs`, lab, cmd, '--name', name, '--state-dir', stateDir, ...a], 120_000);
  const nsLeft = async () => (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(`tsvs-lab-${name}-`));
  try {
    const up = await tsvs('lab', 'up', '--mode', 'dr', '--servers', '1');
    assert.equal(up.code, 0, up.stderr);
    const state = JSON.parse(readFileSync(join(stateDir, `lab-${name}.json`), 'utf8')) as { procs: { what: string; pid: number }[] };
    const pid = state.procs.find((p) => p.what === 'tsvsd')!.pid;
    process.kill(pid, 'SIGKILL');
    await waitFor('the lab tsvsd to die', () => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'), 10_000);
    const st = await tsvs('lab', 'status');
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, new RegExp(`tsvsd in director \\(pid ${pid}\\): not running; its log: `));
    assert.match(st.stdout, /programs in rs1 \(pid \d+\): running/);
    const again = await tsvs('lab', 'up', '--mode', 'dr', '--servers', '1');
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`lab ${name} is already up .*run: tsvs lab down --name ${name}`));
    const down = await tsvs('lab', 'down');
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(await nsLeft(), []);
    const up2 = await tsvs('lab', 'up', '--mode', 'dr', '--servers', '1');
    assert.equal(up2.code, 0, up2.stderr);
    const curl = await tsvs('lab', 'exec', 'client', '--', 'curl', '-s', '-m', '3', `http://${VIP}/`);
    assert.equal(curl.stdout.trim(), 'rs1', curl.stderr);

    // A `tsvs lab up` killed in the middle of its build: down still finds and removes what it made.
    assert.equal((await tsvs('lab', 'down')).code, 0);
    const { spawn } = await import('node:child_process');
    const build = spawn(process.execPath, [`${ROOT}bin/tsvs.mjs`, 'lab', 'up', '--mode', 'nat', '--servers', '2', '--name', name, '--state-dir', stateDir], { stdio: 'ignore' });
    await waitFor('the build to make namespaces', async () => (await nsLeft()).length > 0, 30_000);
    build.kill('SIGKILL');
    await new Promise((r) => build.once('exit', r));
    const down2 = await tsvs('lab', 'down');
    assert.equal(down2.code, 0, down2.stderr);
    assert.deepEqual(await nsLeft(), [], 'nothing of the killed build is left');
    const up3 = await tsvs('lab', 'up', '--mode', 'nat', '--servers', '1');
    assert.equal(up3.code, 0, up3.stderr);
  } finally {
    await tsvs('lab', 'down');
    rmSync(stateDir, { recursive: true, force: true });
  }
});
