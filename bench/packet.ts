// Benchmark (not a test): frames/s per core for parseFrame + a NAT-style daddr+dport rewrite with checksums.
// Run: node --import tsx bench/packet.ts [seconds-per-case]

import {
  PARSE,
  ParsedFrame,
  Verdict,
  frameSetDaddr,
  frameSetDport,
  l4PartialSeed,
  l4SetChecksum,
  parseFrame,
  writeEthHeader,
  writeIpv4Header,
} from '../src/packet/index.ts';

const SLOT = 192; // 64 bytes of headroom + 10 vnet + 60-byte frame, rounded up
const HEADROOM = 64;
const FRAMES = 4096;
const BATCH = 64;
const FRAME_LEN = 10 + 60; // vnet header + minimum Ethernet frame (padded)
const secs = Number(process.argv[2] ?? 1.5);

const MAC_A = Uint8Array.from([2, 0, 0, 0, 1, 2]);
const MAC_B = Uint8Array.from([2, 0, 0, 0, 15, 1]);

function fill(proto: number, partial: boolean): { buf: Uint8Array; offsets: Uint32Array; lengths: Uint32Array } {
  const buf = new Uint8Array(SLOT * FRAMES);
  const offsets = new Uint32Array(FRAMES);
  const lengths = new Uint32Array(FRAMES);
  for (let i = 0; i < FRAMES; i++) {
    const off = i * SLOT + HEADROOM;
    offsets[i] = off;
    lengths[i] = FRAME_LEN;
    const l3 = writeEthHeader(buf, off + 10, MAC_A, 0, MAC_B, 0, 0x0800);
    const l4len = proto === 6 ? 20 : 8 + 18; // both fill a 60-byte frame without padding for UDP
    const l4 = writeIpv4Header(buf, l3, 0, 20 + l4len, i, 0x4000, 64, proto, 0xc6120002 + (i & 255), 0xc6120164);
    buf[l4] = 0x9c;
    buf[l4 + 1] = i & 0xff;
    buf[l4 + 3] = 80;
    if (proto === 6) {
      buf[l4 + 12] = 0x50;
      buf[l4 + 13] = 0x10;
    } else {
      buf[l4 + 5] = l4len;
    }
    const end = l4 + l4len;
    const at = l4 + (proto === 6 ? 16 : 6);
    if (partial) {
      const s = l4PartialSeed(buf, l3, l4, end, proto);
      buf[at] = s >>> 8;
      buf[at + 1] = s & 0xff;
      buf[off] = 1; // NEEDS_CSUM
      buf[off + 6] = l4 - off - 10;
      buf[off + 8] = at - l4;
    } else {
      l4SetChecksum(buf, l3, l4, end, proto);
    }
  }
  return { buf, offsets, lengths };
}

const p = new ParsedFrame();

/** One pass over all frames in batches of BATCH; alternates the rewrite target so every frame changes. */
function pass(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, flip: number, rewrite: boolean): number {
  let ok = 0;
  const daddr = flip ? 0xc612020b : 0xc612020c;
  const dport = flip ? 8080 : 8081;
  for (let b = 0; b < FRAMES; b += BATCH) {
    for (let i = b; i < b + BATCH; i++) {
      if (parseFrame(buf, offsets[i]!, lengths[i]!, p, 0) !== Verdict.OK) continue;
      ok++;
      if (rewrite) {
        frameSetDaddr(buf, p, daddr);
        frameSetDport(buf, p, dport);
      }
    }
  }
  return ok;
}

function run(name: string, proto: number, partial: boolean, rewrite: boolean) {
  const { buf, offsets, lengths } = fill(proto, partial);
  for (let i = 0; i < 200; i++) pass(buf, offsets, lengths, i & 1, rewrite); // warm up
  let frames = 0;
  let flip = 0;
  const t0 = process.hrtime.bigint();
  const until = t0 + BigInt(Math.round(secs * 1e9));
  let t = t0;
  while (t < until) {
    for (let k = 0; k < 16; k++) {
      const ok = pass(buf, offsets, lengths, (flip ^= 1), rewrite);
      if (ok !== FRAMES) throw new Error(`${name}: only ${ok}/${FRAMES} frames parsed OK`);
      frames += FRAMES;
    }
    t = process.hrtime.bigint();
  }
  const ns = Number(t - t0);
  // Sanity: after an even number of passes the frames must still verify end to end.
  const check = new ParsedFrame();
  if (!partial && parseFrame(buf, offsets[0]!, lengths[0]!, check, PARSE.VERIFY_L4) !== Verdict.OK) {
    throw new Error(`${name}: checksum broken after rewrites`);
  }
  return { case: name, frames, seconds: ns / 1e9, framesPerSec: Math.round((frames * 1e9) / ns), nsPerFrame: +(ns / frames).toFixed(1) };
}

const only = process.argv[3]; // optional substring: run only matching cases
const cases: Array<[string, number, boolean, boolean]> = [
  ['parse-only-udp', 17, false, false],
  ['udp-nat-complete', 17, false, true],
  ['tcp-nat-complete', 6, false, true],
  ['udp-nat-partial', 17, true, true],
  ['tcp-nat-partial', 6, true, true],
];
const results = cases.filter((c) => !only || c[0].includes(only)).map((c) => run(...c));
console.log(JSON.stringify({ bench: 'packet', frameBytes: 60, batch: BATCH, node: process.version, results }, null, 2));
console.log(results.map((r) => `${r.case} ${(r.framesPerSec / 1e6).toFixed(2)} Mfps (${r.nsPerFrame} ns)`).join('; '));
