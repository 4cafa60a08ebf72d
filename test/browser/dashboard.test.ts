import { mkdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, openIndexRelease, screenshot, signIn as signInAs } from '../support/browser.ts';
import { startTestServer, type TestServer } from '../support/dev-server.ts';

/**
 * The dashboard in a real browser (Debian's Chromium, installed by `npm test`'s pretest). With
 * SLIPWAY_SCREENSHOTS=<folder> the run also saves the screenshots the README shows.
 */
const HOSTS = ['web-1', 'web-2', 'web-3', 'web-4'];
let server: TestServer;
let browser: Browser;
const ids: Record<string, string> = {};

const waitForEnd = (id: string) => server.waitForEnd(id);

const open = (app: string, version: string, token?: string) =>
  openIndexRelease(server, app, version, { description: `Release ${version} of ${app}`, ...(token ? { token } : {}) });

const signIn = (token: string) => signInAs(browser, server, token);

const shot = screenshot;

beforeAll(async () => {
  server = await startTestServer();
  for (const host of [...HOSTS, 'gate-1', 'gate-2']) await mkdir(join(server.dataDir, 'fleet', host), { recursive: true });
  await server.call('PUT', '/v1/apps/web', {
    body: {
      name: 'web',
      deployRoot: '/srv/web',
      keepReleases: 3,
      hooks: { healthCheck: 'test -f "$RELEASE_DIR/index.html"' },
      environments: [{ name: 'production', targets: { hosts: HOSTS }, strategy: { type: 'rolling', batchSize: 2 } }],
    },
  });
  await server.call('PUT', '/v1/apps/gated', {
    body: {
      name: 'gated',
      deployRoot: '/srv/gated',
      environments: [{ name: 'production', targets: { hosts: ['gate-1', 'gate-2'] }, approval: { approvers: ['approver@example.com'] } }],
    },
  });
  for (const version of ['1.0.0', '1.1.0']) {
    ids[version] = await open('web', version);
    expect((await waitForEnd(ids[version]!)).status).toBe('succeeded');
  }
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server.stop();
});

describe('the dashboard', () => {
  it('asks for a token, refuses a wrong one, and keeps the token out of the URL', async () => {
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.getByLabel('API token').fill('slw_not-a-token-anyone-has');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toBe('That token is not known.');
    await page.getByLabel('API token').fill(server.adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Apps' }).waitFor();
    expect(page.url()).not.toContain(server.adminToken);
    expect(await page.evaluate('sessionStorage.getItem("slipway.token")')).toBe(server.adminToken);
    const headers = (await page.request.get(server.url)).headers();
    expect(headers['content-security-policy']).toContain('script-src \'self\'');
    await page.close();
  });

  it('shows each environment with its live release, retained releases and lock', async () => {
    const page = await signIn(server.adminToken);
    const row = page.locator('section[aria-label="web"] tr[data-environment="production"]');
    await expect.poll(() => row.textContent()).toContain('1.1.0');
    expect(await row.textContent()).toContain('free');
    expect(await row.locator('td').nth(3).textContent()).toBe('1.1.0, 1.0.0');
    await shot(page, 'apps');
    await page.close();
  });

  it('rolls back from a confirmation that names every host, and follows the rollback live', async () => {
    const page = await signIn(server.adminToken);
    await page.locator('section[aria-label="web"] tr[data-environment="production"]').getByRole('button', { name: 'Roll back…' }).click();
    const dialog = page.locator('dialog[open]');
    await dialog.waitFor();
    expect(await dialog.locator('#rollback-moves li').allTextContents()).toEqual(HOSTS.map((host) => `${host}: 1.1.0 → 1.0.0`));
    await shot(page, 'rollback-confirm');
    await dialog.getByRole('button', { name: 'Roll back now' }).click();
    await page.waitForURL(/#\/releases\/[0-9a-z]+$/);
    // Titled as the rollback it is, on the page and in the browser's tab.
    await page.getByRole('heading', { name: /^Rollback of web production to 1\.0\.0 succeeded$/ }).waitFor({ timeout: 30_000 });
    expect(await page.title()).toBe('Rollback of web production to 1.0.0 (succeeded) · Slipway');
    for (const host of HOSTS) expect(await readlink(join(server.dataDir, 'fleet', host, 'current'))).toBe(`releases/${ids['1.0.0']}`);
    expect(await page.locator('tr[data-host]').count()).toBe(4);
    // A rollback downloads nothing: its graph goes from entering straight to the batches.
    expect(await page.locator('section.lane[data-environment="production"] .node-title').allTextContents()).toEqual(['Enter', 'Batch 1 of 2', 'Batch 2 of 2', 'Live']);
    await shot(page, 'rollback-release');
    await page.close();
  });

  it('shows every file a release changes, linked from its page (where the approval mail points)', async () => {
    const page = await signIn(server.adminToken);
    await page.goto(`${server.url}/#/releases/${ids['1.1.0']}`);
    await page.getByRole('heading', { name: /web 1\.1\.0/ }).waitFor();
    await page.getByRole('link', { name: 'What changes' }).click();
    await page.getByRole('heading', { name: '1.1.0 in production: what changes' }).waitFor();
    expect(await page.locator('section[aria-label="Changed"] li').allTextContents()).toEqual(['index.html']);
    expect(await page.locator('section[aria-label="Added"] li').count()).toBe(0);
    expect(await page.getByText(/From 1\.0\.0 to 1\.1\.0: 0 added, 0 removed, 1 changed/).count()).toBe(1);
    await page.close();
  });

  it('lists releases newest first and filters by app', async () => {
    const page = await signIn(server.adminToken);
    await page.goto(`${server.url}/#/releases?app=web`);
    const rows = page.locator('tbody tr');
    await expect.poll(() => rows.count()).toBe(3);
    expect(await rows.first().locator('td').first().locator('a').textContent()).toBe('Rollback of web production to 1.0.0');
    expect(await rows.nth(1).locator('td').first().locator('a').textContent()).toBe('web 1.1.0');
    expect(await rows.nth(2).textContent()).toContain('1.0.0');
    await shot(page, 'releases');
    await page.close();
  });

  it('lets an approver approve a waiting release and shows who decided', async () => {
    const id = await open('gated', '2.0.0');
    const approver = await server.tokenFor('approver', 'approver@example.com');
    const page = await signIn(approver);
    await page.goto(`${server.url}/#/releases/${id}`);
    await page.getByRole('heading', { name: /gated 2\.0\.0 awaiting approval/ }).waitFor({ timeout: 20_000 });
    const gate = page.locator('[data-gate="production"]');
    await gate.getByRole('button', { name: 'Approve' }).waitFor({ timeout: 20_000 });
    await shot(page, 'approval');
    await gate.getByLabel('Reason (optional)').fill('ship it');
    await gate.getByRole('button', { name: 'Approve' }).click();
    await page.getByRole('heading', { name: /gated 2\.0\.0 succeeded/ }).waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-gate="production"] li').textContent()).toMatch(/approver@example.com approved at .* via api: ship it/);
    await page.close();
  });

  it('cancels a waiting release from its page, and nothing is switched', async () => {
    const id = await open('gated', '3.0.0');
    const page = await signIn(server.adminToken);
    await page.goto(`${server.url}/#/releases/${id}`);
    await page.locator('[data-gate="production"] .who-decides').waitFor({ timeout: 20_000 });
    page.once('dialog', (dialog) => dialog.accept());
    await page.getByRole('button', { name: 'Cancel release' }).click();
    await page.getByRole('heading', { name: /gated 3\.0\.0 cancelled/ }).waitFor({ timeout: 30_000 });
    const release = await waitForEnd(id);
    expect(release.status).toBe('cancelled');
    expect(release.reason).toBe('cancelled by admin');
    await expect.poll(async () => (await server.call('GET', '/v1/apps/gated')).body.environments[0].lock).toBeNull();
    for (const host of ['gate-1', 'gate-2']) {
      expect(await readlink(join(server.dataDir, 'fleet', host, 'current'))).not.toContain(id);
    }
    await page.close();
  });

  it('shows a viewer no action buttons (and the API would refuse them anyway)', async () => {
    const viewer = await server.tokenFor('viewer', 'val@example.com');
    const page = await signIn(viewer);
    await page.locator('section[aria-label="web"] tr[data-environment="production"]').waitFor();
    expect(await page.getByRole('button', { name: 'Roll back…' }).count()).toBe(0);
    const waiting = await open('gated', '4.0.0');
    await page.goto(`${server.url}/#/releases/${waiting}`);
    await page.locator('[data-gate="production"]').waitFor({ timeout: 20_000 });
    expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Cancel release' }).count()).toBe(0);
    expect((await server.call('POST', `/v1/releases/${waiting}/cancel`, { token: viewer })).status).toBe(403);
    await server.call('POST', `/v1/releases/${waiting}/cancel`);
    // Until its workflow has ended, the cancelled release still holds the lock the next test needs.
    await waitForEnd(waiting);
    await page.close();
  });

  it('reads the workflow history (Step Functions on AWS) only while its section is open, at most every 10 s', async () => {
    const waiting = await open('gated', '5.0.0');
    const page = await signIn(server.adminToken);
    const calls = { release: 0, events: 0, history: 0 };
    page.on('request', (request) => {
      const path = new URL(request.url()).pathname;
      if (path === `/v1/releases/${waiting}`) calls.release += 1;
      if (path === `/v1/releases/${waiting}/events`) calls.events += 1;
      if (path === `/v1/releases/${waiting}/history`) calls.history += 1;
    });
    await page.goto(`${server.url}/#/releases/${waiting}`);
    await page.locator('[data-gate="production"]').waitFor({ timeout: 20_000 });
    // The page follows the release over server-sent events; with the section closed it reads no history.
    await expect.poll(() => calls.events, { timeout: 20_000 }).toBeGreaterThanOrEqual(1);
    expect(calls.history).toBe(0);

    await page.getByText('Workflow history').click();
    const openedAt = Date.now();
    await page.getByText(/Workflow history \(RUNNING, \d+ events\)/).waitFor({ timeout: 20_000 });
    expect(calls.history).toBeGreaterThanOrEqual(1);
    expect(calls.history).toBeLessThanOrEqual(1 + Math.floor((Date.now() - openedAt) / 10_000));
    await server.call('POST', `/v1/releases/${waiting}/cancel`);
    await page.close();
  });
});
