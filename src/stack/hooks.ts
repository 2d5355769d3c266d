// The director's netfilter-like hook points and the trace point at each; free when nobody traces.

/** The hooks a packet crosses inside the director, as in netfilter. */
export const enum Hook {
  PREROUTING = 0,
  INPUT = 1,
  FORWARD = 2,
  POSTROUTING = 3,
}

export const HOOK_NAMES = ['PREROUTING', 'INPUT', 'FORWARD', 'POSTROUTING'] as const;

/** What the director decided for a packet at a hook (shown by the trace). */
export const enum TraceVerdict {
  /** The packet goes on to the next hook. */
  CONTINUE = 0,
  /** Rewritten by ipvs for a connection (NAT/DR/TUN) and goes on. */
  IPVS = 1,
  /** Answered locally (ARP, ICMP echo). */
  LOCAL = 2,
  /** Sent on a port. */
  SENT = 3,
  /** Queued while the next hop's MAC is resolved. */
  QUEUED = 4,
  /** Dropped (the drop reason counter says why). */
  DROP = 5,
}

export const TRACE_VERDICT_NAMES = ['CONTINUE', 'IPVS', 'LOCAL', 'SENT', 'QUEUED', 'DROP'] as const;

/**
 * A trace sink. The data plane checks one boolean (`Tracer.active`) before calling it, so tracing
 * costs one branch per hook when off. The sink gets the frame in place and must copy what it keeps.
 */
export interface TraceSink {
  /** Called at a hook; `eth` is the Ethernet header offset, `end` one past the frame. */
  onHook(hook: Hook, port: number, buf: Uint8Array, eth: number, end: number, verdict: TraceVerdict, reason: number): void;
  /** Called when the director has finished with one received frame (and everything it caused). */
  onPacketEnd(): void;
}

/** Holds the current trace sink (or none). */
export class Tracer {
  active = false;
  private sink: TraceSink | null = null;

  set(sink: TraceSink | null): void {
    this.sink = sink;
    this.active = sink !== null;
  }

  hook(hook: Hook, port: number, buf: Uint8Array, eth: number, end: number, verdict: TraceVerdict, reason: number): void {
    this.sink?.onHook(hook, port, buf, eth, end, verdict, reason);
  }

  packetEnd(): void {
    this.sink?.onPacketEnd();
  }
}
