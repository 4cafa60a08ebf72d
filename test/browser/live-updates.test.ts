import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, openIndexRelease, signIn as signInAs } from '../support/browser.ts';
import { startTestServer, type TestServer } from '../support/dev-server.ts';

/**
 * The release page redraws on every live update (the SSE feed, the fallback poll): whatever an
 * operator is doing on it must survive that (Debian's Chromium). A typed reason, the focus, a click
 * pressed before an update and released after it, an open section and where it was scrolled.
 * Each test makes the release change while the operator is mid-way and waits until the page shows it.
 */
const ANNA = 'anna@example.com';
const BOB = 'bob@example.com';
const CARL = 'carl@example.com';
let server: TestServer;
let browser: Browser;

/** An app of its own per test (its production lock is then free): two hosts, 2 of 3 approvers. */
async function gatedApp(name: string, { queue = false } = {}) {
  const hosts = [`${name}-1`, `${name}-2`];
  for (const host of hosts) await mkdir(join(server.dataDir, 'fleet', host), { recursive: true });
  const saved = await server.call('PUT', `/v1/apps/${name}`, {
    body: {
      name,
      deployRoot: `/srv/${name}`,
      queue,
      // Enough output that a step's and the live output's boxes scroll.
      hooks: { postDeploy: 'i=1; while [ $i -le 200 ]; do echo "unpacked line $i"; i=$((i+1)); done' },
      environments: [{ name: 'production', targets: { hosts }, approval: { approvers: [ANNA, BOB, CARL], required: 2 } }],
    },
  });
  if (saved.status !== 200 && saved.status !== 201) throw new Error(JSON.stringify(saved.body));
}

const open = (app: string, version: string) => openIndexRelease(server, app, version);

const signIn = (token: string) => signInAs(browser, server, token);

/** Opens the release page once its gate waits and the feed follows it. */
async function releasePage(token: string, id: string): Promise<Page> {
  const page = await signIn(token);
  const feeds: string[] = [];
  page.on('request', (request) => {
    if (new URL(request.url()).pathname === `/v1/releases/${id}/events`) feeds.push(request.url());
  });
  await page.goto(`${server.url}/#/releases/${id}`);
  await page.locator('[data-gate="production"] .badge', { hasText: 'pending' }).waitFor({ timeout: 60_000 });
  await expect.poll(() => feeds.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(1);
  return page;
}

/**
 * Makes the release change without deciding anything: Anna's approval link is opened (a link
 * checker would do the same), which records an `approval.viewed` event; resolves once the page shows it.
 */
async function liveUpdate(page: Page, app: string) {
  const seen = page.locator('table.events tr[data-event="approval.viewed"]');
  const before = await seen.count();
  const mails = (await server.call('GET', '/v1/outbox')).body.items as { to: string[]; subject: string; text: string }[];
  const mail = mails.find((m) => m.to.includes(ANNA) && `${m.subject}\n${m.text}`.includes(app));
  const link = /\/approvals\/[A-Za-z0-9_-]{16,}/.exec(mail?.text ?? '')?.[0];
  if (!link) throw new Error(`no approval mail to ${ANNA} for ${app}`);
  expect((await server.call('GET', link, { token: null })).status).toBe(200);
  await expect.poll(() => seen.count(), { timeout: 30_000 }).toBe(before + 1);
}

async function gate(id: string) {
  return (await server.call('GET', `/v1/releases/${id}`)).body.approvals.find((g: { environment: string }) => g.environment === 'production');
}

const isOpen = async (details: Locator) => (await details.getAttribute('open')) !== null;

/** Presses the mouse on `button` and keeps it pressed: the click happens at `mouse.up()`. */
async function pressOn(page: Page, button: Locator) {
  await button.scrollIntoViewIfNeeded();
  const box = (await button.boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
}

/** Ends a test's release that still waits (so its app's lock is free), and its page. */
async function cancelAndClose(page: Page, id: string) {
  await server.call('POST', `/v1/releases/${id}/cancel`);
  await server.waitForEnd(id);
  await page.close();
}

beforeAll(async () => {
  server = await startTestServer();
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server.stop();
});

describe('the release page under live updates', () => {
  it('keeps a typed approval reason, its focus, and the Approve button where it was when another approver decides', async () => {
    await gatedApp('typed');
    const id = await open('typed', '1.0.0');
    const page = await releasePage(await server.tokenFor('approver', CARL), id);
    const card = page.locator('[data-gate="production"]');
    const reason = card.getByLabel('Reason (optional)');
    await reason.pressSequentially('ship it');
    const approve = card.getByRole('button', { name: 'Approve' });
    const boxBefore = await approve.boundingBox();

    // Anna approves (1 of 2): the gate's card gains her decision while Carl's reason is half-way.
    const anna = await server.tokenFor('approver', ANNA);
    expect((await server.call('POST', `/v1/releases/${id}/approvals`, { token: anna, body: { environment: 'production', decision: 'approve' } })).status).toBe(200);
    await card.locator('li', { hasText: `${ANNA} approved` }).waitFor({ timeout: 30_000 });
    await liveUpdate(page, 'typed');

    expect(await reason.inputValue()).toBe('ship it');
    expect(await reason.evaluate((input) => input === input.ownerDocument.activeElement)).toBe(true);
    expect(await approve.boundingBox()).toEqual(boxBefore);
    await approve.click();
    await expect.poll(async () => (await gate(id)).status, { timeout: 30_000 }).toBe('approved');
    expect((await gate(id)).decisions.find((d: { approver: string }) => d.approver === CARL)).toMatchObject({ decision: 'approve', reason: 'ship it' });
    expect((await server.waitForEnd(id)).status).toBe('succeeded');
    await page.close();
  });

  it('rejects, with the reason, when the click is pressed before a live update and released after it', async () => {
    await gatedApp('press');
    const id = await open('press', '1.0.0');
    const page = await releasePage(await server.tokenFor('approver', BOB), id);
    const card = page.locator('[data-gate="production"]');
    await card.getByLabel('Reason (optional)').fill('not on a Friday');
    await pressOn(page, card.getByRole('button', { name: 'Reject' }));
    await liveUpdate(page, 'press');
    await page.mouse.up();

    await expect.poll(async () => (await gate(id)).status, { timeout: 30_000 }).toBe('rejected');
    expect((await gate(id)).decisions).toMatchObject([{ approver: BOB, decision: 'reject', reason: 'not on a Friday' }]);
    expect((await server.waitForEnd(id)).status).toBe('rejected');
    await page.close();
  });

  it('asks to cancel, and cancels, when the click on "Cancel release" straddles a live update', async () => {
    await gatedApp('halt');
    const id = await open('halt', '1.0.0');
    const page = await releasePage(server.adminToken, id);
    const asked: string[] = [];
    page.on('dialog', (dialog) => {
      asked.push(dialog.message());
      void dialog.accept();
    });
    await pressOn(page, page.getByRole('button', { name: 'Cancel release' }));
    await liveUpdate(page, 'halt');
    await page.mouse.up();

    await expect.poll(() => asked.length, { timeout: 10_000 }).toBe(1);
    expect(asked[0]).toMatch(/^Cancel this release\?/);
    const release = await server.waitForEnd(id);
    expect(release.status).toBe('cancelled');
    expect(release.reason).toBe('cancelled by admin');
    await page.close();
  });

  it('keeps "Cancel release" where it was when the release leaves the line and goes on', async () => {
    await gatedApp('line', { queue: true });
    const ahead = await open('line', '1.0.0');
    await expect.poll(async () => (await gate(ahead))?.status, { timeout: 60_000 }).toBe('pending');
    const queued = await open('line', '1.1.0');
    const page = await signIn(server.adminToken);
    await page.goto(`${server.url}/#/releases/${queued}`);
    await page.locator('.queue-position').waitFor({ timeout: 30_000 });
    const cancel = page.getByRole('button', { name: 'Cancel release' });
    const boxBefore = await cancel.boundingBox();

    // The release ahead is cancelled: this one leaves the line and goes on to its own gate.
    expect((await server.call('POST', `/v1/releases/${ahead}/cancel`)).status).toBe(202);
    await page.locator('[data-gate="production"] .badge', { hasText: 'pending' }).waitFor({ timeout: 60_000 });
    expect(await page.locator('.queue-position').count()).toBe(0);
    expect(await cancel.boundingBox()).toEqual(boxBefore);
    await cancelAndClose(page, queued);
  });

  it('keeps open sections open, scrolled where the reader left them, and the focus on the one in use', async () => {
    await gatedApp('read');
    const id = await open('read', '1.0.0');
    const page = await releasePage(server.adminToken, id);
    const host = page.locator('tr[data-host="read-1"]');

    // A step's output (read from the host's output route once opened), scrolled half-way.
    const step = host.locator('details[data-step="distribute"]');
    await step.locator('summary').click();
    const stepOutput = step.locator('pre').first();
    await expect.poll(() => stepOutput.textContent(), { timeout: 30_000 }).toContain('unpacked line 200');
    await stepOutput.evaluate((pre) => (pre.scrollTop = 500));
    // The host's live output, scrolled up from its end to read an earlier line.
    const live = host.locator('details', { has: page.locator('summary', { hasText: 'Live output' }) });
    await live.locator('summary').click();
    const liveOutput = live.locator('pre');
    await expect.poll(() => liveOutput.textContent(), { timeout: 30_000 }).toContain('unpacked line 200');
    await liveOutput.evaluate((pre) => (pre.scrollTop = 300));
    // An event's JSON, opened from the keyboard: the focus is on its toggle.
    const json = page.locator('table.events tr[data-event="approval.requested"] details');
    await json.locator('summary').focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => isOpen(json)).toBe(true);
    await page.evaluate('window.scrollTo(0, 400)');

    await liveUpdate(page, 'read');
    await liveUpdate(page, 'read');

    expect(await isOpen(step)).toBe(true);
    expect(await stepOutput.evaluate((pre) => pre.scrollTop)).toBe(500);
    expect(await isOpen(live)).toBe(true);
    expect(await liveOutput.evaluate((pre) => pre.scrollTop)).toBe(300);
    expect(await isOpen(json)).toBe(true);
    expect(await json.locator('summary').evaluate((summary) => summary === summary.ownerDocument.activeElement)).toBe(true);
    expect(await page.evaluate('window.scrollY')).toBe(400);
    await cancelAndClose(page, id);
  });

  it('keeps a section opened while the page was still reading the release', async () => {
    await gatedApp('slow');
    const id = await open('slow', '1.0.0');
    const page = await releasePage(server.adminToken, id);
    // The next read of the release (opening the workflow history asks for one) is held until the test lets it go.
    let letGo = () => {};
    const held = new Promise<void>((resolve) => (letGo = resolve));
    let reads = 0;
    await page.route(`**/v1/releases/${id}`, async (route) => {
      reads += 1;
      await held;
      await route.continue();
    });
    await page.getByText('Workflow history').click();
    await expect.poll(() => reads, { timeout: 10_000 }).toBe(1);
    const json = page.locator('table.events tr[data-event="approval.requested"] details');
    await json.locator('summary').click();
    letGo();
    await page.getByText(/Workflow history \(RUNNING, \d+ events\)/).waitFor({ timeout: 20_000 });

    expect(await isOpen(json)).toBe(true);
    await page.unroute(`**/v1/releases/${id}`);
    await cancelAndClose(page, id);
  });

  it('keeps the Apps page and a half-filled rollback confirmation when a release page left behind loads late', async () => {
    await mkdir(join(server.dataDir, 'fleet', 'back-1'), { recursive: true });
    await server.call('PUT', '/v1/apps/back', { body: { name: 'back', deployRoot: '/srv/back', environments: [{ name: 'production', targets: { hosts: ['back-1'] } }] } });
    const first = await open('back', '1.0.0');
    expect((await server.waitForEnd(first)).status).toBe('succeeded');
    const second = await open('back', '1.1.0');
    expect((await server.waitForEnd(second)).status).toBe('succeeded');
    const page = await signIn(server.adminToken);
    // The operator opens the release (its read is slow: a cold Lambda, say), then goes back to Apps before it shows.
    let letGo = () => {};
    const held = new Promise<void>((resolve) => (letGo = resolve));
    let reads = 0;
    await page.route(`**/v1/releases/${second}`, async (route) => {
      reads += 1;
      await held;
      await route.continue();
    });
    await page.goto(`${server.url}/#/releases/${second}`);
    await expect.poll(() => reads, { timeout: 10_000 }).toBe(1);
    await page.getByRole('navigation').getByRole('link', { name: 'Apps' }).click();
    const row = page.locator('section[aria-label="back"] tr[data-environment="production"]');
    await row.getByRole('button', { name: 'Roll back…' }).click();
    const dialog = page.locator('dialog[open]');
    await dialog.locator('#rollback-target').selectOption(first);
    const answered = page.waitForEvent('requestfinished', (request) => new URL(request.url()).pathname === `/v1/releases/${second}`);
    letGo();
    await answered;
    // The page has read the late answer (its JSON, then a frame): what it does with it is done.
    await page.evaluate('new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)))');

    expect(await page.getByRole('heading', { name: 'Apps' }).count()).toBe(1);
    expect(await page.title()).toBe('Slipway');
    expect(await dialog.locator('#rollback-target').inputValue()).toBe(first);
    await dialog.getByRole('button', { name: 'Roll back now' }).click();
    await page.getByRole('heading', { name: /^Rollback of back production to 1\.0\.0 succeeded$/ }).waitFor({ timeout: 60_000 });
    await page.unroute(`**/v1/releases/${second}`);
    await page.close();
  });
});
