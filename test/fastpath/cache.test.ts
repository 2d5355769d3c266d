// The fast-path cache over the real map and program: installed on ESTABLISHED, counters folded into stats, removed on FIN and unhash, idle expiry by last-seen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBuilder, ip } from '../packet/builder.ts';
import { LAN_MAC, NAT_MAC, ROUTER_MAC, RS_MAC, setup, bytesOf, eth } from './harness.ts';
import { BpfHashMap, loadProgram, testRun, closeFd, BPF_PROG_TYPE_SCHED_CLS } from '../../src/fastpath/bpf.ts';
import { buildTcProgram, TC_ACT } from '../../src/fastpath/tc-prog.ts';
import { KEY, VALUE } from '../../src/fastpath/layout.ts';
import { FastCache } from '../../src/fastpath/cache.ts';
import { fastEntryFor } from '../../src/fastpath/entry.ts';
import { countFolded, foldInPkts } from '../../src/ipvs/core.ts';
import { SyncMaster, SM, SYNC_SYSCTL_DEFAULTS } from '../../src/ipvs/sync/master.ts';
import { ST_TOTAL, ST_INPKTS, ST_INBYTES, ST_OUTPKTS, ST_OUTBYTES } from '../../src/ipvs/stats.ts';

const skip = process.getuid?.() !== 0 && 'needs root (BPF maps and BPF_PROG_TEST_RUN)';

function bed(watched: (i: number) => boolean = () => false, perEntry = false, mapFull?: () => void) {
  const env = setup('nat');
  const ipvs = env.dp.ipvs;
  const ct = ipvs.conns;
  const map = new BpfHashMap(KEY.SIZE, VALUE.SIZE, 4, 'tsvs_cache_t');
  let mono = 1_000_000;
  // perEntry: the map as a kernel without batch lookups would serve it (no forEach).
  const fastMap = perEntry ? { update: map.update.bind(map), lookup: map.lookup.bind(map), delete: map.delete.bind(map) } : map;
  const cache = new FastCache(fastMap, ct, {
    entryFor: (i, side, out) => fastEntryFor(env.dp.director, ct, i, side, () => 7, out),
    // As runtime.ts folds: the stats, and the client packets into in_pkts (and the sync rules).
    count: (i, side, pk, by) => {
      countFolded(ipvs, ipvs.destById[ct.dest[i]!], side === 'out', pk, by);
      if (side === 'in') foldInPkts(ipvs, i, pk);
    },
    watched,
    ...(mapFull ? { mapFull } : {}),
  }, () => mono);
  const progs = new Map<string, number>();
  const progFd = (ifmac: string) => {
    let fd = progs.get(ifmac);
    if (fd === undefined) progs.set(ifmac, (fd = loadProgram(BPF_PROG_TYPE_SCHED_CLS, buildTcProgram({ mapFd: map.fd, mac: Uint8Array.from(Buffer.from(ifmac.replace(/:/g, ''), 'hex')), punt: TC_ACT.OK }), 'tsvs_cache_t')));
    return fd;
  };
  const run = (ifmac: string, f: Uint8Array) => testRun(progFd(ifmac), f).retval;
  const close = () => {
    for (const fd of progs.values()) closeFd(fd);
    map.close();
  };
  const cin = (flags: number, p: number[] = [], sport = 40000) => bytesOf(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport, dport: 80, flags }).payload(p));
  const rout = (flags: number, p: number[] = [], dport = 40000) => bytesOf(new PacketBuilder().eth({ dst: NAT_MAC, src: RS_MAC }).ipv4({ src: '198.18.2.11', dst: '198.18.0.2' }).tcp({ sport: 8080, dport, flags }).payload(p));
  const conn = (sport = 40000) => ct.lookupIn(6, ip('198.18.0.2'), sport, ip('198.18.1.100'), 80);
  /** The TS path forwards a frame, then the cache considers the conn, as the integration does. */
  const tsThen = (port: 'lan' | 'nat', f: Uint8Array, sport = 40000) => {
    env.ts(port === 'lan' ? env.lan : env.nat, f);
    const c = conn(sport);
    if (c >= 0) cache.consider(c);
  };
  /** SYN, SYN-ACK, ACK through the TS path: the conn is ESTABLISHED (and installed); returns its slot. */
  const handshake = () => {
    tsThen('lan', cin(0x02));
    tsThen('nat', rout(0x12));
    tsThen('lan', cin(0x10));
    return conn();
  };
  return { env, ipvs, ct, map, cache, run, progFd, close, cin, rout, conn, tsThen, handshake, setMono: (v: number) => (mono = v) };
}

test('installed when the handshake completes, both directions; counters folded into the stats; removed on FIN', { skip }, () => {
  const b = bed();
  try {
    b.tsThen('lan', b.cin(0x02));
    b.tsThen('nat', b.rout(0x12));
    assert.equal(b.cache.installedOf(b.conn()), 0, 'not before ESTABLISHED');
    b.tsThen('lan', b.cin(0x10));
    assert.equal(b.cache.installedOf(b.conn()), 3, 'both directions once ESTABLISHED');
    const st = b.ipvs.stats;
    const before = [ST_INPKTS, ST_INBYTES, ST_OUTPKTS, ST_OUTBYTES].map((f) => st.raw(ST_TOTAL, f));
    // The program carries 3 client frames and 2 replies.
    const ins = [b.cin(0x10, [1, 2, 3]), b.cin(0x18, [4]), b.cin(0x10)];
    const outs = [b.rout(0x10, [9, 9]), b.rout(0x18, new Array(100).fill(1))];
    for (const f of ins) assert.equal(b.run(LAN_MAC, eth(f)), TC_ACT.REDIRECT);
    for (const f of outs) assert.equal(b.run(NAT_MAC, eth(f)), TC_ACT.REDIRECT);
    b.cache.fold();
    const after = [ST_INPKTS, ST_INBYTES, ST_OUTPKTS, ST_OUTBYTES].map((f) => st.raw(ST_TOTAL, f));
    const ipLen = (fs: Uint8Array[]) => fs.reduce((s, f) => s + f.length - 24, 0);
    assert.deepEqual(after.map((v, k) => v - before[k]!), [3, ipLen(ins), 2, ipLen(outs)], 'what the TS path would have counted');
    b.cache.fold();
    assert.deepEqual([ST_INPKTS, ST_INBYTES, ST_OUTPKTS, ST_OUTBYTES].map((f) => st.raw(ST_TOTAL, f)), after, 'folding twice adds nothing');
    // The FIN is punted by the program; the TS path sees it, the conn leaves ESTABLISHED, the entries go.
    assert.equal(b.run(LAN_MAC, eth(b.cin(0x11))), TC_ACT.OK);
    b.tsThen('lan', b.cin(0x11));
    assert.equal(b.cache.installedOf(b.conn()), 0);
    assert.equal(b.run(LAN_MAC, eth(b.cin(0x10))), TC_ACT.OK, 'the next ACK goes to the TS path');
    assert.equal(b.cache.size, 0);
  } finally {
    b.close();
  }
});

test('idle expiry by last-seen: a conn the program carried stays, an idle one expires; unhash removes the entries', { skip }, () => {
  const b = bed();
  try {
    const c = b.handshake();
    assert.equal(b.cache.installedOf(c), 3);
    const timeoutMs = b.ct.timeout[c]! * 1000;
    // The program saw a packet just now (bpf_ktime_get_ns): the timer firing now is re-armed.
    assert.equal(b.run(LAN_MAC, eth(b.cin(0x10))), TC_ACT.REDIRECT);
    const nowMono = Number(process.hrtime.bigint() / 1_000_000n);
    b.setMono(nowMono + 1000);
    assert.equal(b.cache.onExpire(c), true, 'kept');
    assert.ok(Math.abs(b.ct.remainingMs(c) - (timeoutMs - 1000)) < 50, `re-armed for the rest of the timeout (${b.ct.remainingMs(c)} ms)`);
    // A whole timeout later without a packet: it expires.
    b.setMono(nowMono + timeoutMs + 10);
    assert.equal(b.cache.onExpire(c), false);
    b.cache.onUnhash(c);
    assert.equal(b.cache.installedOf(c), 0);
    assert.equal(b.run(LAN_MAC, eth(b.cin(0x10))), TC_ACT.OK, 'entry gone');
    assert.equal(b.cache.stats.kept, 1);
  } finally {
    b.close();
  }
});

test('map full: the flow stays on the TS path, counted, the operator told once; a watched conn is never installed', { skip }, () => {
  let watchAll = false;
  let told = 0;
  const b = bed(() => watchAll, false, () => told++);
  try {
    // 4 entries fit: two NAT conns (in + out each); the third finds the map full.
    for (const sport of [40000, 40001, 40002]) {
      b.tsThen('lan', b.cin(0x02, [], sport), sport);
      b.tsThen('nat', b.rout(0x12, [], sport), sport);
      b.tsThen('lan', b.cin(0x10, [], sport), sport);
    }
    assert.equal(b.cache.installedOf(b.conn(40000)), 3);
    assert.equal(b.cache.installedOf(b.conn(40001)), 3);
    assert.equal(b.cache.installedOf(b.conn(40002)), 0);
    assert.equal(b.cache.stats.full, 2);
    assert.equal(told, 1, 'the first refusal is reported, once');
    assert.equal(b.run(LAN_MAC, eth(b.cin(0x10, [], 40002))), TC_ACT.OK);
    // Trace starts watching: the next TS-path packet of a conn takes its entries out.
    watchAll = true;
    b.tsThen('lan', b.cin(0x10, [], 40000), 40000);
    assert.equal(b.cache.installedOf(b.conn(40000)), 0);
  } finally {
    b.close();
  }
});

for (const perEntry of [false, true]) {
test(`refresh (${perEntry ? 'entry by entry' : 'batched'}): a neighbour's new MAC rewrites the entry (counters folded first); a neighbour gone elsewhere takes the conn off`, { skip }, () => {
  const b = bed(undefined, perEntry);
  try {
    const c = b.handshake();
    assert.equal(b.run(LAN_MAC, eth(b.cin(0x10, [1]))), TC_ACT.REDIRECT);
    const st = b.ipvs.stats;
    const in0 = st.raw(ST_TOTAL, ST_INPKTS);
    b.env.dp.director.neigh.learn(ip('198.18.2.11'), 1, Uint8Array.from([2, 0, 0, 0, 0x0b, 0x99]), 0, 0, true);
    b.cache.refresh();
    assert.equal(st.raw(ST_TOTAL, ST_INPKTS), in0 + 1, 'the packet before the rewrite was folded');
    const r = testRun(b.progFd(LAN_MAC), eth(b.cin(0x10, [2])));
    assert.equal(r.retval, TC_ACT.REDIRECT);
    assert.equal(Buffer.from(r.data.subarray(0, 6)).toString('hex'), '020000000b99', 'the new MAC');
    b.cache.fold();
    assert.equal(st.raw(ST_TOTAL, ST_INPKTS), in0 + 2, 'counting goes on after the rewrite');
    b.cache.refresh();
    assert.equal(b.cache.stats.removes, 0);
    // The real server's address now answers on the other port: no usable next hop, off the fast path.
    b.env.dp.director.neigh.learn(ip('198.18.2.11'), 0, Uint8Array.from([2, 0, 0, 0, 0x0b, 0x99]), 0, 0, true);
    b.cache.refresh();
    assert.equal(b.cache.installedOf(c), 0);
  } finally {
    b.close();
  }
});
}

test('BpfHashMap.forEach reads every element in batches (more than one batch); fold uses it, not one lookup per entry', { skip }, () => {
  const m = new BpfHashMap(KEY.SIZE, VALUE.SIZE, 4096, 'tsvs_batch_t');
  try {
    const k = new Uint8Array(KEY.SIZE);
    const v = new Uint8Array(VALUE.SIZE);
    for (let i = 0; i < 2500; i++) {
      k.fill(0);
      new DataView(k.buffer).setUint32(0, i);
      v[20] = i & 0xff;
      assert.equal(m.update(k, v), 0);
    }
    const seen = new Set<number>();
    const ok = m.forEach((keys, vals, idx) => {
      const n = new DataView(keys.buffer, keys.byteOffset).getUint32(idx * KEY.SIZE);
      assert.equal(vals[idx * VALUE.SIZE + 20], n & 0xff, 'value matches its key');
      seen.add(n);
    });
    assert.equal(ok, true, 'the kernel has batch lookups');
    assert.equal(seen.size, 2500);
  } finally {
    m.close();
  }
  // fold() over a map that counts its per-entry lookups.
  const b = bed();
  try {
    b.handshake();
    assert.equal(b.run(LAN_MAC, eth(b.cin(0x10, [1]))), TC_ACT.REDIRECT);
    let lookups = 0;
    const real = b.map.lookup.bind(b.map);
    b.map.lookup = (key, out) => (lookups++, real(key, out));
    const before = b.ipvs.stats.raw(ST_TOTAL, ST_INPKTS);
    b.cache.fold();
    assert.equal(b.ipvs.stats.raw(ST_TOTAL, ST_INPKTS), before + 1);
    assert.equal(lookups, 0, 'no per-entry lookup');
  } finally {
    b.close();
  }
});

test('a master sync daemon still syncs a conn the program carries: in_pkts folded back fires the threshold and period rules', { skip }, () => {
  const b = bed();
  try {
    // sync_threshold 3, sync_period 50 (the kernel's defaults).
    const master = new SyncMaster(b.ct, 1, 1500, { ...SYNC_SYSCTL_DEFAULTS });
    b.ipvs.sync = master;
    const c = b.handshake();
    assert.equal(b.cache.installedOf(c), 3, 'installed at in_pkts 2, before the threshold');
    assert.equal(b.ct.inPkts[c], 2);
    assert.equal(master.counts[SM.CONNS], 0, 'not synced yet (as on the TS path)');
    // The third client packet (the one the TS path syncs at) is carried by the program.
    assert.equal(b.run(LAN_MAC, eth(b.cin(0x18, [1]))), TC_ACT.REDIRECT);
    b.cache.fold();
    assert.equal(b.ct.inPkts[c], 3);
    assert.equal(master.counts[SM.CONNS], 1, 'synced once the carried packet is folded');
    // 49 more: in_pkts 52, no period boundary yet; one more (53 ≡ 3 mod 50) syncs again.
    for (let k = 0; k < 49; k++) b.run(LAN_MAC, eth(b.cin(0x10)));
    b.cache.fold();
    assert.equal(master.counts[SM.CONNS], 1);
    b.run(LAN_MAC, eth(b.cin(0x10)));
    b.run(LAN_MAC, eth(b.cin(0x10)));
    b.cache.fold();
    assert.equal(b.ct.inPkts[c], 54);
    assert.equal(master.counts[SM.CONNS], 2, 'the period rule fires across a fold');
  } finally {
    b.close();
  }
});

test('a VIP the director releases (VRRP BACKUP) takes its conns off the fast path at the next refresh; replies may come back on', { skip }, () => {
  const b = bed();
  try {
    const c = b.handshake();
    assert.equal(b.cache.installedOf(c), 3);
    const gen = b.env.dp.director.addrGen;
    assert.equal(b.env.dp.director.delAddress(ip('198.18.1.100')), true);
    assert.ok(b.env.dp.director.addrGen > gen, 'the address change is visible to the runtime tick');
    b.cache.refresh();
    assert.equal(b.cache.installedOf(c), 0, 'entries gone');
    assert.equal(b.run(LAN_MAC, eth(b.cin(0x10))), TC_ACT.OK, 'a client frame still sent here goes to the TS path (which drops it: not local)');
    // A reply the real server still sends this way is the TS path's FORWARD business (as in the kernel): NAT out may be carried again.
    b.tsThen('nat', b.rout(0x10));
    assert.equal(b.cache.installedOf(c), 2, 'only the reply direction');
    assert.equal(b.run(LAN_MAC, eth(b.cin(0x10))), TC_ACT.OK);
  } finally {
    b.close();
  }
});

test('an entry rewritten by refresh (a neighbour\'s new MAC) keeps its last-seen: a conn in use does not expire as idle since its install', { skip }, () => {
  const b = bed();
  try {
    const realMono = () => Number(process.hrtime.bigint() / 1_000_000n);
    b.tsThen('lan', b.cin(0x02));
    b.tsThen('nat', b.rout(0x12));
    const timeoutMs = 900_000;
    // Installed long ago (more than a timeout back on the monotonic clock).
    b.setMono(realMono() - 2 * timeoutMs);
    b.tsThen('lan', b.cin(0x10));
    const c = b.conn();
    assert.equal(b.cache.installedOf(c), 3);
    assert.equal(b.ct.timeout[c]! * 1000, timeoutMs, 'the ESTABLISHED timeout');
    // The program carries the conn until now; then the real server's MAC changes and the entry is rewritten.
    assert.equal(b.run(LAN_MAC, eth(b.cin(0x10, [1]))), TC_ACT.REDIRECT);
    b.env.dp.director.neigh.learn(ip('198.18.2.11'), 1, Uint8Array.from([2, 0, 0, 0, 0x0b, 0x99]), 0, 0, true);
    b.setMono(realMono());
    const in0 = b.ipvs.stats.raw(ST_TOTAL, ST_INPKTS);
    b.cache.refresh();
    assert.equal(b.ipvs.stats.raw(ST_TOTAL, ST_INPKTS), in0 + 1);
    // Its timer fires a second later: carried a second ago, it stays.
    b.setMono(realMono() + 1000);
    assert.equal(b.cache.onExpire(c), true, 'kept: last-seen survived the rewrite');
    b.cache.fold();
    assert.equal(b.ipvs.stats.raw(ST_TOTAL, ST_INPKTS), in0 + 1, 'nothing counted twice');
  } finally {
    b.close();
  }
});
