// `tsvs lab scene ecmp`: three directors behind ECMP, one killed with SIGKILL mid-transfer, every flow finishing on its real server.
import { canUseNetns, waitFor } from './netns.ts';
import { labUp, LAB } from './topology.ts';
import { addEcmpDirector, ecmpStatus, formatEcmpStatus, routerNextHops, runLabFlows, startRouterBird, type EcmpDirector } from './ecmp.ts';
import { requestOnce } from '../ctl/client.ts';

const FLOWS = 60;

/** Runs the scene, printing as it goes; resolves with the number of failed checks. */
export async function runEcmpScene(out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  if (!canUseNetns()) {
    out('the ECMP scene needs root (network namespaces)');
    return 1;
  }
  let failures = 0;
  const check = (ok: boolean, what: string) => {
    out(`  ${ok ? 'ok  ' : 'FAIL'}  ${what}`);
    if (!ok) failures++;
  };
  out('Building: a router running BIRD (resilient ECMP over a 5-tuple hash), three directors each running tsvsd + its BIRD, three DR real servers...');
  const lab = await labUp({ mode: 'dr', servers: 3, clients: 6, name: 'scene', ecmp: true });
  try {
    await startRouterBird(lab);
    const dirs: EcmpDirector[] = [];
    for (let k = 0; k < 3; k++) dirs.push(await addEcmpDirector(lab));
    const all = dirs.map((d) => d.lan).sort().join(' ');
    await waitFor('all three directors announced', async () => (await routerNextHops(lab)).join(' ') === all, 20_000, 50);
    out(formatEcmpStatus(await ecmpStatus(lab), await routerNextHops(lab)).trimEnd());
    out(`\n${FLOWS} TCP uploads of 60 KB each from ${lab.state.clients.length} client addresses, 6 s long; scheduler mh, sloppy_tcp=1.`);
    const victim = dirs[1]!;
    let killedFlows = 0;
    let ms = 0;
    const flows = await runLabFlows(lab, { flows: FLOWS, durationMs: 6000 }, async (keys) => {
      await new Promise((r) => setTimeout(r, 1500));
      const conns = await requestOnce(victim.socket, { op: 'connections' });
      killedFlows = conns.conns.filter((c) => keys.has(`${c.caddr}:${c.cport}`)).length;
      out(formatEcmpStatus(await ecmpStatus(lab), await routerNextHops(lab)).trimEnd());
      out(`\nkill -9 ${victim.role}'s tsvsd (it carries ${killedFlows} of the flows); its BIRD dies with it (parent-death signal)...`);
      const pid = lab.state.procs.find((p) => p.role === victim.role && p.what === 'tsvsd')!.pid;
      const t0 = Date.now();
      process.kill(pid, 'SIGKILL');
      const rest = dirs.filter((d) => d !== victim).map((d) => d.lan).sort().join(' ');
      await waitFor('the dead director withdrawn', async () => (await routerNextHops(lab)).join(' ') === rest, 5000, 10);
      ms = Date.now() - t0;
      out(`router: ${LAB.vip}/32 now via ${rest} (withdrawn after ${ms} ms; BFD would take 300 ms if the host had died silently)`);
    });
    const ok = flows.filter((f) => f.ok).length;
    const byRs = new Map<string, number>();
    for (const f of flows) byRs.set(f.server, (byRs.get(f.server) ?? 0) + 1);
    out(`\nflows by real server: ${[...byRs].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    check(ok === FLOWS, `${ok}/${FLOWS} flows completed, each real server's SHA-256 of the upload matching the client's (no reset)`);
    check(killedFlows > 0, `${killedFlows} flows moved off the dead director to the others, kept their real server (mh: every director computes the same table; another server would have reset them)`);
    check(ms < 2000, `the router stopped using the dead director within ${ms} ms`);
    out(formatEcmpStatus(await ecmpStatus(lab), await routerNextHops(lab)).trimEnd());
  } finally {
    await lab.down();
    out('lab removed');
  }
  return failures;
}
