// Hostile local clients against a live tsvsd: malformed JSON, 50 MB lines and bodies, hundreds of clients, stalled half-requests; forwarding keeps flowing and RSS stays bounded.
//
// The control socket and the admin API (on a unix socket here; the HTTP handling is the same as on
// TCP) are attacked from this process while the lab client pushes HTTP connections through the VIP
// in rounds. Each phase samples tsvsd's VmRSS (/proc/PID/status) every 20 ms and reports its peak.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { request } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNetns } from '../../src/lab/netns.ts';
import { PROTOCOL_VERSION } from '../../src/ctl/protocol.ts';
import { CONTROL_LIMITS } from '../../src/ctl/server.ts';
import { ADMIN_LIMITS } from '../../src/api/server.ts';
import type { ClientRun } from '../../src/lab/client.ts';
import { withDirectorLab, VIP } from './director-harness.ts';
import { parseExposition } from '../api/exposition.ts';
import { rawControlClient as ctlClient, streamWithoutNewline as stream } from '../ctl/raw-client.ts';

const MB = 1 << 20;

/** tsvsd's resident set in bytes. */
function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS in /proc/PID/status');
  return Number(m[1]) * 1024;
}

/** Runs `attack` while sampling RSS; returns the peak. */
async function sampled<T>(pid: number, attack: () => Promise<T>): Promise<{ result: T; start: number; peak: number }> {
  const start = rss(pid);
  let peak = start;
  const iv = setInterval(() => (peak = Math.max(peak, rss(pid))), 20);
  try {
    const result = await attack();
    peak = Math.max(peak, rss(pid));
    return { result, start, peak };
  } finally {
    clearInterval(iv);
  }
}

/**
 * One HTTP request over the admin unix socket; a body may be text or a size to stream (chunked or
 * with a Content-Length). JSON unless `extra` says otherwise.
 */
function http(
  path: string,
  method: string,
  url: string,
  body?: { bytes: number; chunked: boolean } | string,
  extra: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { host: 'localhost', 'content-type': 'application/json', ...extra };
    if (typeof body === 'object' && !body.chunked) headers['content-length'] = String(body.bytes);
    // No keep-alive agent: a connection left idle here would hold one of the API's slots.
    const req = request({ socketPath: path, method, path: url, headers, agent: false, timeout: 30_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', (e) => resolve({ status: 0, text: e.message }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    if (body === undefined) return void req.end();
    if (typeof body === 'string') return void req.end(body);
    const chunk = Buffer.alloc(MB, 0x20);
    let sent = 0;
    const pump = () => {
      while (sent < body.bytes) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

test('hostile clients on the control socket and the admin API: forwarding flows, RSS bounded, every refusal clear', { skip: !canUseNetns() && 'needs root', timeout: 240_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-hostile-'));
  const admin = join(dir, 'admin.sock');
  try {
    await withDirectorLab(
      'nat',
      async (d) => {
        const ctl = d.lab.director.socket;
        const pid = d.lab.state.procs.find((p) => p.role === 'director' && p.what === 'tsvsd')!.pid;
        assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /tsvsd\.mjs/, 'the PID is tsvsd itself');
        await d.restore([`-A -t ${VIP}:80 -s rr`, ...d.lab.realServers.map((r) => `-a -t ${VIP}:80 -r ${r.ip}:80 -m`)].join('\n') + '\n');

        // Traffic through the director in rounds of 100 connections for as long as the attacks run
        // (bounded: at most 200 rounds).
        let attacking = true;
        const rounds: Array<{ phase: string; run: ClientRun }> = [];
        let phase = 'warm-up';
        const traffic = (async () => {
          for (let i = 0; i < 200 && (attacking || rounds.length < 2); i++) {
            const p = phase;
            const t0 = Date.now();
            // A round that dies is a failed round of its phase, reported with the rest.
            const run = await d.client('http', 80, 100, 2).catch((e: Error): ClientRun => ({ kind: 'http', requests: 100, ok: 0, failed: 100, byServer: {}, errors: [`${e.message} after ${Date.now() - t0} ms`], ms: 0 }));
            rounds.push({ phase: p, run });
          }
        })();
        while (rounds.length < 2) await new Promise((r) => setTimeout(r, 50));
        const baseline = rss(pid);
        const peaks: Record<string, number> = {};
        const starts: Record<string, number> = {};
        const roundsIn = (p: string) => rounds.filter((r) => r.phase === p).length;
        const untilRound = async (p: string) => {
          const t0 = Date.now();
          while (roundsIn(p) === 0 && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 50));
        };

        // 1. Malformed JSON: 20 connections, 500 bad lines each.
        phase = 'malformed';
        const bad = ['{"v":1,"id":', 'not json', '\u0000\u00ff\u0001', '[]', '{"v":99,"id":1,"op":"list"}', '{"v":1,"id":2,"op":"no-such"}', '{"v":1,"id":3,"op":"add-service"}', 'null'];
        const malformed = await sampled(pid, async () => {
          const cs = Array.from({ length: 20 }, () => ctlClient(ctl));
          await Promise.all(cs.map((c) => c.connected));
          for (const c of cs) c.sock.write(Array.from({ length: 500 }, (_, i) => bad[i % bad.length]).join('\n') + '\n');
          const t0 = Date.now();
          while (cs.some((c) => c.lines.length < 500) && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 20));
          for (const c of cs) c.sock.destroy();
          // What a page in a browser could send to the API, 100 of each, 10 at a time: a form post
          // and a text/plain post to /flush, JSON from a foreign origin, and broken JSON.
          const kinds: Array<[string, string, Record<string, string>]> = [
            ['form', 'a=1', { 'content-type': 'application/x-www-form-urlencoded' }],
            ['text', '{}', { 'content-type': 'text/plain' }],
            ['origin', '{}', { origin: 'http://evil.example' }],
            ['json', '{"service":', {}],
          ];
          const statuses: Record<string, number[]> = {};
          for (const [kind, text, headers] of kinds) {
            statuses[kind] = [];
            for (let i = 0; i < 10; i++) {
              const got = await Promise.all(Array.from({ length: 10 }, () => http(admin, 'POST', kind === 'json' ? '/api/v1/services' : '/api/v1/flush', text, headers)));
              statuses[kind]!.push(...got.map((g) => g.status));
            }
          }
          await untilRound('malformed');
          return { lines: cs.flatMap((c) => c.lines), statuses };
        });
        peaks.malformed = malformed.peak;
        starts.malformed = malformed.start;
        assert.equal(malformed.result.lines.length, 10_000);
        assert.ok(malformed.result.lines.every((l) => !l.ok && l.error!.code === 'EINVAL'), 'every bad line answered EINVAL');
        const want: Record<string, number> = { form: 415, text: 415, origin: 403, json: 400 };
        for (const [kind, got] of Object.entries(malformed.result.statuses)) assert.deepEqual([...new Set(got)], [want[kind]], `${kind}: ${got.length} requests`);
        assert.match(await d.admOk('-L', '-n'), new RegExp(`TCP  ${VIP.replace(/\./g, '\\.')}:80 rr`), 'no flush went through');

        // 2. Four 50 MB lines on the control socket and four 50 MB bodies to the API at once.
        phase = 'huge';
        const huge = await sampled(pid, async () => {
          const cs = Array.from({ length: 4 }, () => ctlClient(ctl));
          await Promise.all(cs.map((c) => c.connected));
          const [sent, posts] = await Promise.all([
            Promise.all(cs.map((c) => stream(c.sock, 50 * MB).then(async (n) => (await c.closed, n)))),
            Promise.all([0, 1, 2, 3].map((i) => http(admin, 'POST', '/api/v1/services', { bytes: 50 * MB, chunked: i % 2 === 1 }))),
          ]);
          await untilRound('huge');
          return { cs, sent, posts };
        });
        peaks.huge = huge.peak;
        starts.huge = huge.start;
        for (const c of huge.result.cs) assert.match(c.lines[0]?.error?.message ?? '', /request line too long \(limit 65536 bytes\)/);
        for (const p of huge.result.posts) {
          // The answer comes first; a client still writing may see the close instead (EPIPE) — never a 2xx.
          assert.ok(p.status === 413 || p.status === 0, `a 50 MB body: ${p.status} ${p.text}`);
          if (p.status === 413) assert.match(p.text, /request body too large/);
        }
        assert.ok(huge.result.posts.some((p) => p.status === 413), 'at least one 413 reached its client');

        // 3. 300 control clients and 300 API connections held open at once.
        // The earlier phases' connections are gone on this side; let tsvsd see them go too.
        await new Promise((r) => setTimeout(r, 500));
        phase = 'crowd';
        const crowd = await sampled(pid, async () => {
          const cs = Array.from({ length: 300 }, () => ctlClient(ctl));
          await Promise.all(cs.map((c) => c.connected.catch(() => {})));
          cs.forEach((c, i) => c.sock.write(JSON.stringify({ v: PROTOCOL_VERSION, id: i + 1, op: 'list' }) + '\n'));
          const hs = Array.from({ length: 300 }, () => {
            const s = connect(admin);
            let text = '';
            s.setEncoding('utf8');
            s.on('data', (b: string) => (text += b));
            s.on('error', () => {});
            s.once('connect', () => s.write('GET /api/v1/services HTTP/1.1\r\nHost: localhost\r\n\r\n'));
            return { s, get text() {
              return text;
            } };
          });
          const t0 = Date.now();
          while ((cs.some((c) => c.lines.length === 0) || hs.some((h) => !/\r\n\r\n/.test(h.text))) && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 20));
          await untilRound('crowd');
          const ctlOk = cs.filter((c) => c.lines[0]?.ok).length;
          const ctlBusy = cs.filter((c) => c.lines[0]?.error?.code === 'EBUSY').length;
          const apiOk = hs.filter((h) => h.text.startsWith('HTTP/1.1 200')).length;
          const apiBusy = hs.filter((h) => h.text.startsWith('HTTP/1.1 503') && h.text.includes('"EBUSY"')).length;
          for (const c of cs) c.sock.destroy();
          for (const h of hs) h.s.destroy();
          return { ctlOk, ctlBusy, apiOk, apiBusy };
        });
        peaks.crowd = crowd.peak;
        starts.crowd = crowd.start;
        assert.deepEqual(crowd.result, { ctlOk: CONTROL_LIMITS.maxClients, ctlBusy: 300 - CONTROL_LIMITS.maxClients, apiOk: ADMIN_LIMITS.maxConnections, apiBusy: 300 - ADMIN_LIMITS.maxConnections });
        await new Promise((r) => setTimeout(r, 200));

        // 4. Half-open slow clients: 60 control clients stall mid-line, 60 API clients mid-headers.
        // Both stay under the connection limits, so tsvsadm and a scrape still get through meanwhile.
        phase = 'slow';
        const slow = await sampled(pid, async () => {
          const t0 = Date.now();
          const cs = Array.from({ length: 60 }, () => ctlClient(ctl));
          await Promise.all(cs.map((c) => c.connected));
          for (const c of cs) c.sock.write('{"v":1,"id":1,"op":"li');
          const hs = Array.from({ length: 60 }, () => {
            const s = connect(admin);
            s.on('error', () => {});
            // Reading, so that tsvsd's close reaches this end (an unread socket never sees EOF).
            let reply = '';
            s.on('data', (b) => (reply += b));
            s.once('connect', () => s.write('GET /api/v1/services HTTP/1.1\r\nHost: loc'));
            return new Promise<{ ms: number; status: string }>((r) => s.once('close', () => r({ ms: Date.now() - t0, status: reply.split('\r\n')[0]! })));
          });
          const listing = await d.admOk('-L', '-n');
          const scrape = await http(admin, 'GET', '/metrics');
          await untilRound('slow');
          await Promise.all(cs.map((c) => c.closed));
          const ctlClosedMs = Date.now() - t0;
          const api = await Promise.all(hs);
          return { cs, ctlClosedMs, apiClosedMs: Math.max(...api.map((a) => a.ms)), apiStatus: [...new Set(api.map((a) => a.status))], listing, scrape };
        });
        peaks.slow = slow.peak;
        starts.slow = slow.start;
        assert.match(slow.result.listing, new RegExp(`TCP  ${VIP.replace(/\./g, '\\.')}:80 rr`));
        assert.equal(slow.result.scrape.status, 200);
        for (const c of slow.result.cs) assert.equal(c.lines[0]?.error?.code, 'ETIMEDOUT');
        assert.deepEqual(slow.result.apiStatus, ['HTTP/1.1 408 Request Timeout']);
        // Closed at the deadlines (with margin for the 1 s check interval and a loaded machine).
        assert.ok(slow.result.ctlClosedMs < CONTROL_LIMITS.lineTimeoutMs + 5000, `control stalls closed after ${slow.result.ctlClosedMs} ms`);
        assert.ok(slow.result.apiClosedMs < ADMIN_LIMITS.headersTimeoutMs + 5000, `API stalls closed after ${slow.result.apiClosedMs} ms`);

        attacking = false;
        await traffic;
        const failed = rounds.filter((r) => r.run.failed > 0);
        assert.deepEqual(failed.map((r) => `${r.phase}: ${r.run.errors.slice(0, 3).join('; ')}`), [], 'every connection through the director succeeded');
        for (const p of ['malformed', 'huge', 'crowd', 'slow']) assert.ok(roundsIn(p) > 0, `traffic flowed during ${p}`);

        const m = parseExposition((await http(admin, 'GET', '/metrics')).text);
        const refused = (name: string) => Object.fromEntries(m.filter((s) => s.name === name).map((s) => [s.labels.reason, s.value]));
        const figures = {
          // Per phase: VmRSS when it started and its peak while it ran (MiB).
          rssMiB: { baseline: +(baseline / MB).toFixed(1), ...Object.fromEntries(Object.entries(peaks).map(([k, v]) => [k, { start: +(starts[k]! / MB).toFixed(1), peak: +(v / MB).toFixed(1) }])) },
          roundsByPhase: Object.fromEntries(['warm-up', 'malformed', 'huge', 'crowd', 'slow'].map((p) => [p, roundsIn(p)])),
          controlRefused: refused('tsvs_control_refused_total'),
          adminRefused: refused('tsvs_admin_refused_total'),
          hugeBytesSent: huge.result.sent,
        };
        t.diagnostic(`figures ${JSON.stringify(figures)}`);
        // What the attacks' data would have cost had it been buffered: the control socket read one
        // chunk of each 50 MB line before hanging up.
        for (const n of huge.result.sent) assert.ok(n < 50 * MB, `tsvsd hung up after ${n} bytes of a 50 MB line`);
        assert.equal(figures.controlRefused.malformed, 10_000);
        assert.equal(figures.controlRefused.line_too_long, 4);
        assert.equal(figures.controlRefused.too_many_clients, 300 - CONTROL_LIMITS.maxClients);
        assert.equal(figures.controlRefused.stalled, 60);
        assert.equal(figures.adminRefused.too_large, 4);
        assert.equal(figures.adminRefused.content_type, 200);
        assert.equal(figures.adminRefused.cross_origin, 100);
        assert.equal(figures.adminRefused.too_many_clients, 300 - ADMIN_LIMITS.maxConnections);
        // Bounded: none of the attacks (200 MB of lines, 200 MB of bodies, 600 clients) grows tsvsd by
        // more than a fraction of what it was sent.
        for (const [p, v] of Object.entries(peaks)) assert.ok(v - baseline < 96 * MB, `${p}: peak RSS ${(v / MB).toFixed(1)} MiB, baseline ${(baseline / MB).toFixed(1)} MiB`);
      },
      3,
      ['--admin', `unix:${admin}`],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
