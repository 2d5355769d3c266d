// Runs inside a test namespace: sends frames into veth in1 → in0 (the tcx program on in0's ingress) and reads what arrives on out1.
//
// argv[2]: a JSON file of cases { name, frame (hex, vnet header + Ethernet), entry (FastEntry with MACs
// as hex; the ifindex is out0's), expect (frames to wait for) }. Prints one JSON line of results:
// { name, retFrames: hex[] (vnet header + Ethernet, as the AF_PACKET socket on out1 got them),
// ringFrames (how many a packet socket on in0, with the fast path's socket filter, received), packets,
// bytes } per case; `entry: null` sends with no entry installed. Frames come from a packet socket with a vnet header, so the skb the program
// sees carries CHECKSUM_PARTIAL and GSO state as a local sender's would.
import { readFileSync } from 'node:fs';
import { AfPacketPort } from '../../src/io/afpacket.ts';
import { BpfHashMap, loadProgram, tcxAttach, closeFd, attachSocketFilter, BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_SOCKET_FILTER } from '../../src/fastpath/bpf.ts';
import { buildSockFilter } from '../../src/fastpath/sock-filter.ts';
import { buildTcProgram, TC_ACT } from '../../src/fastpath/tc-prog.ts';
import { KEY, VALUE, encodeKey, encodeValue, decodeCounters, type FastEntry } from '../../src/fastpath/layout.ts';

interface Case {
  name: string;
  frame: string;
  entry: (Omit<FastEntry, 'dmac' | 'smac' | 'ifindex'> & { dmac: string; smac: string }) | null;
  expect: number;
}

const cases = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Case[];
const ifindex = (n: string): number => Number(readFileSync(`/sys/class/net/${n}/ifindex`, 'utf8').trim());
const fromHex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));

const map = new BpfHashMap(KEY.SIZE, VALUE.SIZE, 64, 'tsvs_fast_e2e');
const inMac = fromHex(readFileSync('/sys/class/net/in0/address', 'utf8').trim().replace(/:/g, ''));
const prog = loadProgram(BPF_PROG_TYPE_SCHED_CLS, buildTcProgram({ mapFd: map.fd, mac: inMac, punt: TC_ACT.SHOT }), 'tsvs_fast_e2e');
const link = tcxAttach(prog, ifindex('in0'));
const tx = new AfPacketPort('in1');
const rx = new AfPacketPort('out1');
// The director's own packet socket on in0, refusing what the tcx program carries.
const ring = new AfPacketPort('in0');
const filter = loadProgram(BPF_PROG_TYPE_SOCKET_FILTER, buildSockFilter({ mapFd: map.fd, mac: inMac }), 'tsvs_fast_e2e');
if (attachSocketFilter(ring.fd, filter) !== 0) throw new Error('SO_ATTACH_BPF refused');
closeFd(filter); // the socket holds it
const buf = new Uint8Array(64 * 70_000);
const offs = Uint32Array.from({ length: 64 }, (_, i) => i * 70_000);
const lens = new Uint32Array(64);
const key = new Uint8Array(KEY.SIZE);
const val = new Uint8Array(VALUE.SIZE);

const results: { name: string; retFrames: string[]; ringFrames: number; packets: number; bytes: number }[] = [];
try {
  for (const c of cases) {
    while (rx.rxBurst(buf, offs, lens, 64) > 0 || ring.rxBurst(buf, offs, lens, 64) > 0);
    const f = fromHex(c.frame);
    const e = Buffer.from(f.subarray(10));
    encodeKey(key, e[23]!, e.readUInt32BE(26), e.readUInt32BE(30), e.readUInt16BE(34), e.readUInt16BE(36));
    if (c.entry !== null) {
      const entry: FastEntry = { ...c.entry, dmac: fromHex(c.entry.dmac), smac: fromHex(c.entry.smac), ifindex: ifindex('out0') };
      if (map.update(key, encodeValue(val, entry)) !== 0) throw new Error('map update failed');
    }
    buf.set(f, 0);
    lens[0] = f.length;
    if (tx.txBurst(buf, offs, lens, 1) !== 1) throw new Error(`${c.name}: txBurst refused the frame`);
    const got: string[] = [];
    const end = Date.now() + 1000;
    while (Date.now() < end && got.length < c.expect) {
      if (!rx.wait(50)) continue;
      const n = rx.rxBurst(buf, offs, lens, 64);
      for (let i = 0; i < n; i++) got.push(Buffer.from(buf.subarray(offs[i]!, offs[i]! + lens[i]!)).toString('hex'));
    }
    // Anything more (there must not be) within a short grace period.
    if (rx.wait(100)) {
      const n = rx.rxBurst(buf, offs, lens, 64);
      for (let i = 0; i < n; i++) got.push(Buffer.from(buf.subarray(offs[i]!, offs[i]! + lens[i]!)).toString('hex'));
    }
    let ringFrames = 0;
    for (let n; (n = ring.rxBurst(buf, offs, lens, 64)) > 0; ) ringFrames += n;
    const cnt = map.lookup(key, val) ? decodeCounters(val) : { packets: 0, bytes: 0 };
    map.delete(key);
    results.push({ name: c.name, retFrames: got, ringFrames, packets: cnt.packets, bytes: cnt.bytes });
  }
} finally {
  tx.close();
  rx.close();
  ring.close();
  closeFd(link);
  closeFd(prog);
  map.close();
}
process.stdout.write(`${JSON.stringify(results)}\n`);
