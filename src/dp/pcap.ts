// pcap capture of the frames the director receives and sends (--pcap FILE), buffered, for tshark/Wireshark.
import { openSync, writeSync, closeSync } from 'node:fs';
import type { FrameSink } from './director.ts';

const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 262144;
const BUF_SIZE = 1 << 20;

/**
 * Writes classic pcap (microsecond timestamps, Ethernet). Frames go into a 1 MB buffer flushed when
 * full and on close, so capture costs a copy per frame, not a syscall. Times are wall-clock,
 * derived from the monotonic time the data plane passes.
 */
export class PcapWriter implements FrameSink {
  private readonly fd: number;
  private readonly buf = Buffer.alloc(BUF_SIZE);
  private used = 0;
  frames = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'w', 0o600);
    const h = Buffer.alloc(24);
    h.writeUInt32LE(0xa1b2c3d4, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeInt32LE(0, 8);
    h.writeUInt32LE(0, 12);
    h.writeUInt32LE(SNAPLEN, 16);
    h.writeUInt32LE(LINKTYPE_ETHERNET, 20);
    writeSync(this.fd, h);
  }

  write(frame: Uint8Array, eth: number, len: number, nowMs: number): void {
    if (len <= 0) return;
    const cap = Math.min(len, SNAPLEN);
    if (this.used + 16 + cap > BUF_SIZE) this.flush();
    if (16 + cap > BUF_SIZE) return;
    const wall = performance.timeOrigin + nowMs;
    const sec = Math.floor(wall / 1000);
    const usec = Math.floor((wall - sec * 1000) * 1000);
    const b = this.buf;
    b.writeUInt32LE(sec >>> 0, this.used);
    b.writeUInt32LE(usec, this.used + 4);
    b.writeUInt32LE(cap, this.used + 8);
    b.writeUInt32LE(len, this.used + 12);
    b.set(frame.subarray(eth, eth + cap), this.used + 16);
    this.used += 16 + cap;
    this.frames++;
  }

  flush(): void {
    if (this.used === 0) return;
    writeSync(this.fd, this.buf, 0, this.used);
    this.used = 0;
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}
