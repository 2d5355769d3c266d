// Debian's nginx as a lab real server that reads the PROXY protocol: one instance per real server, logging the client address it was handed.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Lab } from './topology.ts';

/** Whether nginx is installed (scripts/ensure-tools.sh installs nginx-light). */
export function haveNginx(): boolean {
  return spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).status === 0;
}

/**
 * The configuration: `listen PORT proxy_protocol` for each port, answering the server's name, a
 * WebDAV PUT/GET location under /dav/ (bytes both ways through the shifted sequence space), and an
 * access log of `$proxy_protocol_addr $proxy_protocol_port $remote_addr $server_port`: the client
 * the PROXY header named, then who the TCP connection came from (the director's LIP).
 */
export function nginxConf(dir: string, name: string, ports: readonly number[]): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  log_format pp '$proxy_protocol_addr $proxy_protocol_port $remote_addr $server_port';
  access_log ${dir}/access.log pp;
  server {
${ports.map((p) => `    listen ${p} proxy_protocol;`).join('\n')}
    location / { return 200 "${name}\\n"; }
    location /dav/ { root ${dir}; dav_methods PUT; create_full_put_path on; client_max_body_size 16m; client_body_buffer_size 1m; }
  }
}
`;
}

/** Starts nginx in real server `role`'s namespace (stopped with the lab); returns its access log path. */
export async function startLabNginx(lab: Lab, role: string, ports: readonly number[]): Promise<string> {
  const dir = join(lab.state.dir, `nginx-${role}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, role, ports));
  await lab.startProcess(role, 'nginx', ['nginx', '-c', join(dir, 'nginx.conf')], { ready: /epoll|start worker/ });
  return join(dir, 'access.log');
}

/** The access log's lines (empty before the first request). */
export function accessLines(log: string): string[] {
  return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter((l) => l !== '') : [];
}
