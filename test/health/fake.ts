// Test doubles for the health monitor: a manual clock and a director table answering the control protocol.
import type { Clock } from '../../src/health/monitor.ts';
import type { DestConfig, Request, Response, ServiceKey } from '../../src/ctl/protocol.ts';
import { errorResponse, okResponse } from '../../src/ctl/protocol.ts';

export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

/** Timers run only when the test advances time. */
export class FakeClock implements Clock {
  t = 1_000_000;
  private seq = 0;
  private timers: Array<{ at: number; id: number; fn: () => void }> = [];
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.push({ at: this.t + ms, id, fn });
    return id;
  }
  clearTimer(h: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== h);
  }
  /** Runs every timer due within `ms`, in time order, letting async work settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await flush();
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

const skey = (k: ServiceKey) => (k.type === 'fwmark' ? `fwmark ${k.fwmark}` : `${k.type} ${k.addr}:${k.port}`);

/** A director's table of real servers per service, answering list/add/edit/delete-server. */
export class FakeDirector {
  readonly services = new Map<string, Map<string, DestConfig>>();
  readonly requests: Request[] = [];
  failNext = 0;

  addService(k: ServiceKey, dests: DestConfig[]): void {
    this.services.set(skey(k), new Map(dests.map((d) => [`${d.addr}:${d.port}`, { ...d }])));
  }
  /** "addr:port=weight" of a service's servers, sorted. */
  table(k: ServiceKey): string[] {
    return [...(this.services.get(skey(k))?.values() ?? [])].map((d) => `${d.addr}:${d.port}=${d.weight}`).sort();
  }
  readonly handler = async (req: Request): Promise<Response> => {
    this.requests.push(req);
    if (this.failNext > 0) {
      this.failNext--;
      return errorResponse(req.id, req.op, 'EINVAL', 'injected failure');
    }
    if (req.op === 'list') {
      const svc = req.service && this.services.get(skey(req.service));
      if (!svc) return errorResponse(req.id, req.op, 'ESRCH');
      return okResponse(req.id, { version: '1.2.1', size: 4096, services: [{ key: req.service, dests: [...svc.values()] }] });
    }
    if (req.op === 'add-server' || req.op === 'edit-server' || req.op === 'delete-server') {
      const svc = this.services.get(skey(req.service));
      if (!svc) return errorResponse(req.id, req.op, 'ESRCH');
      const k = `${req.dest.addr}:${req.dest.port}`;
      if (req.op === 'add-server') {
        if (svc.has(k)) return errorResponse(req.id, req.op, 'EEXIST');
        svc.set(k, { ...req.dest });
      } else if (req.op === 'edit-server') {
        if (!svc.has(k)) return errorResponse(req.id, req.op, 'ENOENT');
        svc.set(k, { ...req.dest });
      } else {
        if (!svc.delete(k)) return errorResponse(req.id, req.op, 'ENOENT');
      }
      return okResponse(req.id, null);
    }
    return errorResponse(req.id, req.op, 'EINVAL', 'not in the fake');
  };
}
