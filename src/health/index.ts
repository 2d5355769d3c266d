// Entry point of health checking for tsvsd: plan the pools from the config, start the monitor, hand back a handle.
import type { Config } from '../ctl/config.ts';
import type { RequestHandler } from '../ctl/server.ts';
import { HealthMonitor, type Clock, type HealthLog, type HealthSnapshot } from './monitor.ts';
import { planHealth } from './plan.ts';
import { createProber } from './prober.ts';

export type { HealthLog, HealthSnapshot } from './monitor.ts';
export { HealthMonitor } from './monitor.ts';
export { planHealth } from './plan.ts';

export interface HealthHandle {
  monitor: HealthMonitor;
  snapshot(): HealthSnapshot;
  /** Stops probing; omega scripts run; removeServers deletes the managed servers from the director. */
  stop(opts?: { removeServers?: boolean }): Promise<void>;
}

/**
 * Starts health checking for every service of `config` that has checks, a sorry server or quorum
 * commands. Decisions reach the director only through `handler` (add/edit/delete-server). Resolves
 * after the initial state is applied (alpha servers out, sorry server in when quorum is down).
 */
export async function startHealth(config: Config, handler: RequestHandler, log: HealthLog, opts: { clock?: Clock } = {}): Promise<HealthHandle> {
  const prober = createProber();
  const monitor = new HealthMonitor(planHealth(config), { handler, log, probe: prober.probe, ...(opts.clock ? { clock: opts.clock } : {}) });
  await monitor.start();
  return {
    monitor,
    snapshot: () => monitor.snapshot(),
    stop: async (o) => {
      await monitor.stop(o);
      prober.close();
    },
  };
}
