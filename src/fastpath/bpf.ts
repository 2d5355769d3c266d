// Typed access to the addon's bpf() calls (native/src/bpf.cc): hash maps, program load, test runs, tcx links.
import { native } from '../io/native.ts';

/** The addon's bpf() functions; map calls answer 0 or an errno. */
interface BpfNative {
  bpfMapCreate(type: number, keySize: number, valueSize: number, maxEntries: number, name: string): number;
  bpfMapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags: number): number;
  bpfMapLookup(fd: number, key: Uint8Array, valueOut: Uint8Array): number;
  bpfMapDelete(fd: number, key: Uint8Array): number;
  bpfMapNextKey(fd: number, key: Uint8Array | null, nextOut: Uint8Array): number;
  bpfMapLookupBatch(fd: number, inBatch: Uint8Array | null, outBatch: Uint8Array, keys: Uint8Array, values: Uint8Array, max: number): { count: number; errno: number };
  bpfProgLoad(type: number, insns: Uint8Array, name: string, expectedAttachType: number): number;
  bpfProgTestRun(fd: number, dataIn: Uint8Array, dataOut: Uint8Array, ctxIn: Uint8Array | null, ctxOut: Uint8Array | null): { retval: number; dataSizeOut: number; ctxSizeOut: number };
  bpfTcxAttach(progFd: number, ifindex: number, egress: boolean, first: boolean): number;
  bpfAttachSocket(sockFd: number, progFd: number): number;
  bpfClose(fd: number): void;
}

/** uapi numbers used here (linux/bpf.h). */
export const BPF_MAP_TYPE_HASH = 1;
export const BPF_PROG_TYPE_SCHED_CLS = 3;
export const BPF_PROG_TYPE_SOCKET_FILTER = 1;
/** BPF_MAP_UPDATE_ELEM flags. */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;
/** errno values the map calls answer with. */
export const ENOENT = 2;
export const E2BIG = 7;

const n = (): BpfNative => native<BpfNative>();
/** Elements per BPF_MAP_LOOKUP_BATCH call. */
const BATCH = 1024;

/** A BPF hash map owned by this process (closed with `close()`). */
export class BpfHashMap {
  readonly fd: number;
  constructor(
    readonly keySize: number,
    readonly valueSize: number,
    readonly maxEntries: number,
    name: string,
  ) {
    this.fd = n().bpfMapCreate(BPF_MAP_TYPE_HASH, keySize, valueSize, maxEntries, name);
  }
  /** 0, or an errno (E2BIG: the map is full; EEXIST/ENOENT with NOEXIST/EXIST). */
  update(key: Uint8Array, value: Uint8Array, flags = BPF_ANY): number {
    return n().bpfMapUpdate(this.fd, key, value, flags);
  }
  /** True and `out` filled when the key is there. */
  lookup(key: Uint8Array, out: Uint8Array): boolean {
    return n().bpfMapLookup(this.fd, key, out) === 0;
  }
  /** True when the key was there. */
  delete(key: Uint8Array): boolean {
    return n().bpfMapDelete(this.fd, key) === 0;
  }
  /**
   * Calls `fn(keys, values, at)` for every element, `BATCH` at a time through BPF_MAP_LOOKUP_BATCH (one
   * syscall per batch instead of one per element); `at` is the element's byte offset / size within
   * the batch buffers. Elements added or removed meanwhile may or may not be seen. Returns false when
   * the kernel has no batch operations (callers then look elements up one by one).
   */
  forEach(fn: (keys: Uint8Array, values: Uint8Array, index: number) => void): boolean {
    const nat = n();
    const keys = (this.batchKeys ??= new Uint8Array(BATCH * this.keySize));
    const vals = (this.batchVals ??= new Uint8Array(BATCH * this.valueSize));
    const tokA = (this.tokA ??= new Uint8Array(8));
    const tokB = (this.tokB ??= new Uint8Array(8));
    let inTok: Uint8Array | null = null;
    let outTok = tokA;
    for (;;) {
      const r = nat.bpfMapLookupBatch(this.fd, inTok, outTok, keys, vals, BATCH);
      // Any other error (no batch ops in this kernel, a bucket larger than the batch): the caller looks
      // elements up one by one; what was handed over already is safe to see twice (callers fold deltas).
      if (r.errno !== 0 && r.errno !== ENOENT) return false;
      for (let i = 0; i < r.count; i++) fn(keys, vals, i);
      if (r.errno === ENOENT) return true;
      inTok = outTok;
      outTok = outTok === tokA ? tokB : tokA;
    }
  }
  private batchKeys: Uint8Array | undefined;
  private batchVals: Uint8Array | undefined;
  private tokA: Uint8Array | undefined;
  private tokB: Uint8Array | undefined;

  /** Every key (a snapshot; for flushes and tests, not the per-packet path). */
  keys(): Uint8Array[] {
    const out: Uint8Array[] = [];
    let cur: Uint8Array | null = null;
    for (;;) {
      const next = new Uint8Array(this.keySize);
      if (n().bpfMapNextKey(this.fd, cur, next) !== 0) return out;
      out.push(next);
      cur = next;
    }
  }
  close(): void {
    n().bpfClose(this.fd);
  }
}

/** Loads a program; throws an IoError whose message carries the verifier's log on refusal. */
export function loadProgram(type: number, insns: Uint8Array, name: string, expectedAttachType = 0): number {
  return n().bpfProgLoad(type, insns, name, expectedAttachType);
}

/** One BPF_PROG_TEST_RUN: the program's return value and the frame (and ctx) as it left it. */
export function testRun(progFd: number, frame: Uint8Array, ctxIn: Uint8Array | null = null): { retval: number; data: Uint8Array; ctx: Uint8Array | null } {
  // Room for what the program may add in front (TUN: 20 bytes) and a margin.
  const out = new Uint8Array(frame.length + 256);
  const ctxOut = ctxIn === null ? null : new Uint8Array(ctxIn.length);
  const r = n().bpfProgTestRun(progFd, frame, out, ctxIn, ctxOut);
  return { retval: r.retval, data: out.subarray(0, r.dataSizeOut), ctx: ctxOut === null ? null : ctxOut.subarray(0, r.ctxSizeOut) };
}

/** Attaches a SCHED_CLS program to an interface's tcx hook (`first`: before the programs already there); returns the link fd (closing it detaches). */
export function tcxAttach(progFd: number, ifindex: number, egress = false, first = false): number {
  return n().bpfTcxAttach(progFd, ifindex, egress, first);
}

/** Attaches a SOCKET_FILTER program to a socket (SO_ATTACH_BPF); 0 or an errno. The socket holds the program. */
export function attachSocketFilter(sockFd: number, progFd: number): number {
  return n().bpfAttachSocket(sockFd, progFd);
}

/** Takes a socket's filter off (SO_DETACH_BPF); 0 or an errno (ENOENT: none was attached). */
export function detachSocketFilter(sockFd: number): number {
  return n().bpfAttachSocket(sockFd, -1);
}

/** Closes a program, map or link fd. */
export function closeFd(fd: number): void {
  n().bpfClose(fd);
}
