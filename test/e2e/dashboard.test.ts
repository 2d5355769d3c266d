// Dashboard end to end: headless Chromium (playwright-core) inside the lab's director namespace loads tsvsd's page, sees traffic, health events and drains a real server.
//
// The admin API listens on 127.0.0.1:9200 inside the director namespace (private to the lab), and
// Chromium runs in that namespace too: playwright-core starts it through a two-line wrapper that
// does `ip netns exec NS /usr/bin/chromium "$@"` (the debugging pipe's descriptors survive the exec).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNetns, waitFor } from '../../src/lab/netns.ts';
import { withDirectorLab, VIP, type DirectorLab, listedWeights } from './director-harness.ts';

// Functions handed to page.waitForFunction run in the browser; this project's tsconfig has no DOM types.
declare const document: any;

const CHROMIUM = '/usr/bin/chromium';
const RIPS = ['198.18.2.11', '198.18.2.12', '198.18.2.13'];
const WEIGHTS = [2, 1, 1];
const ADMIN = '127.0.0.1:9200';
/** Markup a health check's output carries (a check script echoing what a real server said). */
const HOSTILE = '<img src=x onerror=alert(1)><b id=injected>bold</b>';

const skip = !canUseNetns() ? 'needs root' : !existsSync(CHROMIUM) ? `needs Debian's chromium at ${CHROMIUM} (apt-get install -y chromium)` : false;

/** Weight of each real server of TCP VIP:80 in `tsvsadm -L -n`. */
const weights = (d: DirectorLab) => listedWeights(d, 80);

test('dashboard: Chromium loads the page, numbers move under traffic, health events show, drain/undrain change the weight', { skip, timeout: 240_000 }, async () => {
  const { chromium } = await import('playwright-core');
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-dash-'));
  const config = join(dir, 'tsvs.yaml');
  writeFileSync(
    config,
    `services:
  - protocol: tcp
    address: ${VIP}
    port: 80
    scheduler: rr
    realservers:
${RIPS.map((ip, i) => `      - { address: ${ip}, port: 80, method: nat, weight: ${WEIGHTS[i]}, inhibit_on_failure: true, check: { type: http, path: /, interval: 1, timeout: 1, fall: 2, rise: 1 } }`).join('\n')}
  - protocol: tcp
    address: ${VIP}
    port: 81
    realservers:
      - { address: ${RIPS[0]}, port: 81, method: nat, inhibit_on_failure: true, check: { type: misc, command: ${JSON.stringify(`printf '%s' '${HOSTILE}'; exit 1`)}, interval: 1, timeout: 2, fall: 1 } }
`,
  );
  try {
    await withDirectorLab(
      'nat',
      async (d) => {
        const wrapper = join(dir, 'chromium-in-director.sh');
        writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${d.lab.ns('director')} ${CHROMIUM} "$@"\n`);
        chmodSync(wrapper, 0o755);
        // playwright-core gives Chromium a fresh temporary --user-data-dir of its own.
        const browser = await chromium.launch({
          executablePath: wrapper,
          headless: true,
          timeout: 60_000,
          args: [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
          ],
        });
        try {
          const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
          const errors: string[] = [];
          page.on('pageerror', (e) => errors.push(e.message));
          await page.goto(`http://${ADMIN}/`, { timeout: 30_000 });
          const card = page.locator(`[data-service="tcp ${VIP}:80"]`);
          await card.waitFor({ timeout: 15_000 });
          const row = (ip: string) => card.locator(`tr[data-dest="${ip}:80"]`);
          for (const [i, ip] of RIPS.entries()) {
            await row(ip).waitFor({ timeout: 10_000 });
            assert.equal(await row(ip).locator('td.weight').textContent(), String(WEIGHTS[i]));
          }
          // Health: all three checked up (the badges come from /api/v1/health).
          await page.waitForFunction((v) => document.querySelectorAll(`[data-service="tcp ${v}:80"] tr[data-dest] .badge.up`).length === 3, VIP, { timeout: 20_000 });

          // Everything shown is text: a health message full of markup appears as those characters in the
          // events list and the badge's tooltip, and no element of it exists in the page.
          const dialogs: string[] = [];
          page.on('dialog', (dl) => {
            dialogs.push(dl.message());
            void dl.dismiss();
          });
          const detail = `exit 1: ${HOSTILE}`;
          await page.waitForFunction((t) => [...document.querySelectorAll('#events li .detail')].some((e) => e.textContent === t), detail, { timeout: 20_000 });
          const hostileRow = page.locator(`[data-service="tcp ${VIP}:81"] tr[data-dest="${RIPS[0]}:81"]`);
          await hostileRow.locator('.badge.down').waitFor({ timeout: 10_000 });
          assert.equal(await hostileRow.locator('.badge').getAttribute('title'), detail);
          assert.equal(await page.locator('img').count(), 0, 'no <img> made from the message');
          assert.equal(await page.locator('#injected, #events b').count(), 0, 'no <b> made from the message');
          assert.match((await page.locator('#events').textContent()) ?? '', /<img src=x onerror=alert\(1\)><b id=injected>bold<\/b>/);
          assert.deepEqual(dialogs, [], 'no script ran');

          // Numbers move under traffic: the conns column and the sparklines follow a bounded HTTP run.
          const connsOf = async (ip: string) => Number(((await row(ip).locator('td').nth(6).textContent()) ?? '').replace(/,/g, ''));
          const before = await connsOf(RIPS[0]!);
          const run = d.client('http', 80, 400, 2);
          await page.waitForFunction(
            ([ip, b]) => {
              const cell = document.querySelector(`[data-service] tr[data-dest="${ip}:80"]`)?.children[6];
              return Number((cell?.textContent ?? '').replace(/,/g, '')) > (b as number);
            },
            [RIPS[0]!, before] as const,
            { timeout: 30_000 },
          );
          await page.waitForFunction((v) => Number(document.querySelector(`[data-service="tcp ${v}:80"] .svc-rates svg`)?.getAttribute('data-last') ?? '0') > 0, VIP, { timeout: 30_000 });
          const http = await run;
          assert.equal(http.failed, 0, http.errors.join('; '));
          const shot = process.env.TSVS_DASHBOARD_SCREENSHOT;
          if (shot) await page.screenshot({ path: shot, fullPage: true });

          // A health event: rs3's server dies, the page lists the transition (and the badge turns down).
          const rs3 = d.lab.state.procs.find((p) => p.role === 'rs3' && p.what === 'programs');
          assert.ok(rs3, 'programs of rs3');
          await d.lab.sh('rs3', `kill ${rs3.pid} 2>/dev/null; true`);
          d.lab.state.procs.splice(d.lab.state.procs.indexOf(rs3), 1);
          await page.waitForFunction((ip) => [...document.querySelectorAll('#events li[data-state="down"]')].some((li) => li.textContent!.includes(`${ip}:80`)), RIPS[2]!, { timeout: 20_000 });
          await row(RIPS[2]!).locator('.badge.down').waitFor({ timeout: 10_000 });

          // Drain rs1 (weight 2) from the page: weight 0 in the director, then undrain puts 2 back.
          await row(RIPS[0]!).locator('button[data-action="drain"]').click();
          await row(RIPS[0]!).locator('button[data-action="undrain"]').waitFor({ timeout: 10_000 });
          assert.equal(await row(RIPS[0]!).locator('td.weight').textContent(), '0');
          assert.equal((await weights(d))[RIPS[0]!], 0, 'tsvsadm -L -n shows rs1 drained');
          if (process.env.TSVS_DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.TSVS_DASHBOARD_SCREENSHOT.replace(/\.png$/, '-drained.png'), fullPage: true });
          await row(RIPS[0]!).locator('button[data-action="undrain"]').click();
          await row(RIPS[0]!).locator('button[data-action="drain"]').waitFor({ timeout: 10_000 });
          await waitFor('rs1 back at weight 2', async () => (await weights(d))[RIPS[0]!] === 2, 10_000, 100);
          assert.equal(await row(RIPS[0]!).locator('td.weight').textContent(), '2');
          assert.deepEqual(errors, [], 'no script errors on the page');
        } finally {
          await browser.close();
        }
      },
      3,
      ['--config', config, '--admin', ADMIN, '--dashboard'],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
