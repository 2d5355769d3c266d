// The packet socket's filter for the fast path: refuses the frames the tcx program will carry, so they are never copied to the ring.
import { Asm, R0 } from './asm.ts';
import { emitClassify } from './tc-prog.ts';

/** What the filter is built for: the same map and interface MAC as that interface's tcx program. */
export interface SockFilterOptions {
  mapFd: number;
  mac: Uint8Array;
}

/**
 * Builds a BPF_PROG_TYPE_SOCKET_FILTER program (attached with SO_ATTACH_BPF). It runs the tcx
 * program's classification itself (`emitClassify`, through bpf_skb_load_bytes since socket filters
 * have no direct packet access) and returns 0 (not for this socket) where the tcx program will act,
 * the whole frame otherwise. Packet sockets are served before tc ingress, so this decides first.
 */
export function buildSockFilter(o: SockFilterOptions): Uint8Array {
  if (o.mac.length < 6) throw new RangeError('mac must be 6 bytes');
  const a = new Asm();
  emitClassify(a, o, 'copy');
  a.movi(R0, 0).exit();
  a.label('punt');
  a.movi(R0, -1).exit(); // 0xffffffff: the whole frame (capped to the snap length by the kernel)
  return a.bytes();
}
