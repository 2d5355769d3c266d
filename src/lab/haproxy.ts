// Debian's haproxy as a lab real server that reads the PROXY protocol (bind ... accept-proxy): one instance per real server, logging the client address it was handed.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Lab } from './topology.ts';

/** Whether haproxy is installed (scripts/ensure-tools.sh installs it). */
export function haveHaproxy(): boolean {
  return spawnSync('sh', ['-c', 'command -v haproxy'], { encoding: 'utf8' }).status === 0;
}

/**
 * The configuration: one mode-http frontend with `bind :PORT accept-proxy` per port, answering the
 * server's name, logging to stdout (haproxy 2.6 needs no syslog for that) one `pp %ci %cp %fi %fp`
 * line per request: the source and destination the PROXY header named (without accept-proxy they
 * would be the LIP and the RIP).
 */
export function haproxyConf(name: string, ports: readonly number[]): string {
  return `global
  log stdout format raw local0
  maxconn 256
defaults
  mode http
  log global
  timeout connect 5s
  timeout client 10s
  timeout server 10s
frontend pp
${ports.map((p) => `  bind :${p} accept-proxy`).join('\n')}
  log-format "pp %ci %cp %fi %fp"
  http-request return status 200 content-type text/plain string "${name}\\n"
`;
}

/** Starts haproxy in the foreground in real server `role`'s namespace (stopped with the lab); returns its log path. */
export async function startLabHaproxy(lab: Lab, role: string, ports: readonly number[]): Promise<string> {
  const dir = join(lab.state.dir, `haproxy-${role}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'haproxy.cfg'), haproxyConf(role, ports));
  // -V prints the polling mechanism once the listeners are bound: the ready sign.
  const p = await lab.startProcess(role, 'haproxy', ['haproxy', '-db', '-V', '-f', join(dir, 'haproxy.cfg')], { ready: /Using \w+\(\) as the polling mechanism/ });
  return p.log;
}

/** The request log's lines (`pp CIP CPORT VIP VPORT`), without haproxy's own notices. */
export function requestLines(log: string): string[] {
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('pp ')) : [];
}
