import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, openIndexRelease, signIn as signInAs } from '../support/browser.ts';
import { startTestServer, type TestServer } from '../support/dev-server.ts';

/**
 * The dashboard follows a running release over server-sent events instead of polling, and shows
 * each environment's hosts as a grid with drift in red (Debian's Chromium).
 */
const HOSTS = ['grid-1', 'grid-2'];
let server: TestServer;
let browser: Browser;
const hostDir = (host: string) => join(server.dataDir, 'fleet', host);

const open = (version: string) => openIndexRelease(server, 'grid', version);

const signIn = (token: string) => signInAs(browser, server, token);

beforeAll(async () => {
  server = await startTestServer();
  for (const host of HOSTS) await mkdir(hostDir(host), { recursive: true });
  await server.call('PUT', '/v1/apps/grid', {
    body: {
      name: 'grid',
      deployRoot: '/srv/grid',
      // The check waits for a file the test creates: the release stays in switching until then.
      hooks: {
        healthCheck: 'echo "waiting on ${DEPLOY_ROOT##*/}"; if [ -f "$DEPLOY_ROOT/hold" ]; then until [ -f "$DEPLOY_ROOT/go" ]; do sleep 0.05; done; fi; echo checked',
      },
      environments: [{ name: 'production', targets: { hosts: HOSTS }, strategy: { type: 'rolling', batchSize: 2 } }],
    },
  });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server.stop();
});

describe('the dashboard, live', () => {
  it('updates a running release from its event stream, with no polling of the release', async () => {
    for (const host of HOSTS) await writeFile(join(hostDir(host), 'hold'), '');
    const id = await open('1.0.0');
    const page = await signIn(server.adminToken);
    const calls = { release: 0, events: 0 };
    page.on('request', (request) => {
      const path = new URL(request.url()).pathname;
      if (path === `/v1/releases/${id}`) calls.release += 1;
      if (path === `/v1/releases/${id}/events` && request.headers().accept === 'text/event-stream') calls.events += 1;
    });
    await page.goto(`${server.url}/#/releases/${id}`);
    await page.locator('h1 .badge', { hasText: 'switching' }).waitFor({ timeout: 60_000 });
    expect(calls.events).toBe(1);
    const releaseReadsWhileRunning = calls.release;

    // The host row's live output shows the health check's line while the check still waits.
    const row = page.locator('tr[data-host="grid-1"]');
    await row.getByText('Live output').click();
    const live = row.locator('pre.live');
    await expect.poll(() => live.textContent(), { timeout: 60_000 }).toContain('switch | waiting on grid-1');
    expect(await live.textContent()).not.toContain('checked');

    for (const host of HOSTS) await writeFile(join(hostDir(host), 'go'), '');
    await page.locator('h1 .badge', { hasText: 'succeeded' }).waitFor({ timeout: 60_000 });
    await page.locator('tr[data-host="grid-2"] .badge', { hasText: 'healthy' }).waitFor({ timeout: 20_000 });
    // Kept open and filled across the re-renders the release's updates cause.
    await expect.poll(() => live.textContent(), { timeout: 20_000 }).toContain('switch | checked');
    // The first render reads the release; everything after came over the one stream.
    expect(releaseReadsWhileRunning).toBe(1);
    expect(calls.release).toBeLessThanOrEqual(2);
    expect(calls.events).toBe(1);
    for (const host of HOSTS) await rm(join(hostDir(host), 'hold'));
    await page.close();
  });

  it('shows the hosts of an environment as a grid, and a scan turns a host flipped by hand red', async () => {
    const page = await signIn(server.adminToken);
    const grid = page.locator('section[aria-label="grid"] .host-grid[data-environment="production"]');
    await grid.waitFor({ timeout: 20_000 });
    for (const host of HOSTS) await expect.poll(() => grid.locator(`tr[data-host="${host}"] td.cell`).first().textContent()).toBe('●');
    await expect.poll(() => grid.locator('tr.drift').count()).toBe(0);

    // By hand: grid-2 loses its current link.
    await rm(join(hostDir('grid-2'), 'current'));
    await grid.getByRole('button', { name: 'Scan hosts' }).click();
    const scanned = page.locator('section[aria-label="grid"] .host-grid[data-environment="production"]');
    await scanned.locator('tr.drift[data-host="grid-2"]').waitFor({ timeout: 30_000 });
    expect(await scanned.locator('tr[data-host="grid-2"] td.cell').first().textContent()).toBe('○');
    expect(await scanned.getByRole('status').textContent()).toBe('1 of 2 hosts drift');
    const background = await scanned.locator('tr.drift[data-host="grid-2"] td').first().evaluate((cell) => cell.ownerDocument.defaultView!.getComputedStyle(cell).backgroundColor);
    expect(background).toBe('rgb(249, 222, 222)');
    await page.close();
  });
});
