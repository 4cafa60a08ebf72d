import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, openIndexRelease, screenshot, signIn as signInAs } from '../support/browser.ts';
import { startTestServer, type TestServer } from '../support/dev-server.ts';

/**
 * The release page as a live graph (Debian's Chromium): every planned batch from the start, each
 * node's state as the release runs, a failed middle batch with the batches before it put back and
 * the ones after never run, events as sentences, and approve buttons only for the gate's approvers.
 * With SLIPWAY_SCREENSHOTS=<folder> the run also saves the README's screenshots of the graph.
 */
const FLOW_HOSTS = ['flow-1', 'flow-2', 'flow-3', 'flow-4', 'flow-5', 'flow-6'];
const BRITTLE_HOSTS = ['brittle-1', 'brittle-2', 'brittle-3', 'brittle-4', 'brittle-5', 'brittle-6'];
const CANARY_HOSTS = ['bird-1', 'bird-2', 'bird-3'];
const LEAD = 'lead@example.com';
let server: TestServer;
let browser: Browser;
const hostDir = (host: string) => join(server.dataDir, 'fleet', host);

const open = (app: string, version: string) => openIndexRelease(server, app, version);

const signIn = (token: string) => signInAs(browser, server, token);

const shot = screenshot;

const lane = (page: Page, environment: string) => page.locator(`section.lane[data-environment="${environment}"]`);
const stateOf = (node: Locator) => node.getAttribute('data-state');
/** Waits (generously: the machine is shared) until the node says `state`. */
const reaches = (node: Locator, state: string) => expect.poll(() => stateOf(node), { timeout: 60_000 }).toBe(state);

beforeAll(async () => {
  server = await startTestServer();
  for (const host of [...FLOW_HOSTS, ...BRITTLE_HOSTS, ...CANARY_HOSTS, 'flow-s1']) await mkdir(hostDir(host), { recursive: true });
  await server.call('PUT', '/v1/apps/flow', {
    body: {
      name: 'flow',
      deployRoot: '/srv/flow',
      // A host with a `hold` file waits in its health check until the test writes `go`.
      hooks: { healthCheck: 'if [ -f "$DEPLOY_ROOT/hold" ]; then until [ -f "$DEPLOY_ROOT/go" ]; do sleep 0.05; done; fi; echo checked' },
      environments: [
        { name: 'staging', targets: { hosts: ['flow-s1'] } },
        {
          name: 'production',
          targets: { hosts: FLOW_HOSTS },
          strategy: { type: 'rolling', batchSize: 2 },
          bakeSeconds: 6,
          approval: { approvers: [LEAD] },
        },
      ],
    },
  });
  await server.call('PUT', '/v1/apps/brittle', {
    body: {
      name: 'brittle',
      deployRoot: '/srv/brittle',
      // brittle-3, in the second of three batches, never comes up.
      hooks: { healthCheck: 'if [ "${DEPLOY_ROOT##*/}" = brittle-3 ]; then echo "nothing answers on :8080" >&2; exit 24; fi' },
      environments: [{ name: 'production', targets: { hosts: BRITTLE_HOSTS }, strategy: { type: 'rolling', batchSize: 2 } }],
    },
  });
  await server.call('PUT', '/v1/apps/bird', {
    body: {
      name: 'bird',
      deployRoot: '/srv/bird',
      environments: [
        {
          name: 'production',
          targets: { hosts: CANARY_HOSTS },
          strategy: { type: 'canary', steps: [{ hosts: 1 }, { pause: { seconds: 600 } }, { hosts: 2 }, { pause: {} }, { hosts: '100%' }] },
        },
      ],
    },
  });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server.stop();
});

describe('the release page as a graph', () => {
  it('shows every planned batch before the first one runs, and moves each node as the release runs', async () => {
    for (const host of ['flow-3', 'flow-4']) await writeFile(join(hostDir(host), 'hold'), '');
    const id = await open('flow', '1.0.0');
    // The admin may approve in general, but this gate names only the lead.
    const page = await signIn(server.adminToken);
    await page.goto(`${server.url}/#/releases/${id}`);
    const production = lane(page, 'production');
    await reaches(production.locator('[data-node="approval"]'), 'waiting');

    // Waiting at the gate, nothing switched in production: all three batches are there, with their hosts.
    const batches = production.locator('[data-node^="batch-"]');
    expect(await batches.locator('.node-title').allTextContents()).toEqual(['Batch 1 of 3', 'Batch 2 of 3', 'Batch 3 of 3']);
    expect(await batches.evaluateAll((nodes) => nodes.map((node) => node.getAttribute('data-state')))).toEqual(['pending', 'pending', 'pending']);
    expect(await production.locator('[data-node="batch-2"] .host').allTextContents()).toEqual(['flow-3', 'flow-4']);
    expect(await production.locator('[data-node^="bake-"]').count()).toBe(3);
    expect(await stateOf(lane(page, 'staging').locator('[data-node="live"]'))).toBe('succeeded');
    expect(await lane(page, 'staging').locator('[data-node="batch-1"] .node-time').textContent()).toMatch(/^started .* · took \d/);

    // Not a named approver: no buttons, but who may decide; and the API refuses the admin too.
    const gate = page.locator('[data-gate="production"]');
    expect(await gate.locator('.who-decides').textContent()).toBe(`Only ${LEAD} may decide here.`);
    expect(await gate.getByRole('button').count()).toBe(0);
    const refused = await server.call('POST', `/v1/releases/${id}/approvals`, { body: { environment: 'production', decision: 'approve' } });
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toContain('is not an approver of production');
    // The approval link in the lead's mail never reaches the page.
    const outbox = JSON.stringify((await server.call('GET', '/v1/outbox')).body);
    const links = [...outbox.matchAll(/\/approvals\/([A-Za-z0-9_-]{16,})/g)].map((match) => match[1]!);
    expect(links.length).toBeGreaterThan(0);
    const html = await page.content();
    for (const link of links) expect(html).not.toContain(link);

    const lead = await server.tokenFor('approver', LEAD);
    expect((await server.call('POST', `/v1/releases/${id}/approvals`, { token: lead, body: { environment: 'production', decision: 'approve' } })).status).toBe(200);
    await reaches(production.locator('[data-node="approval"]'), 'succeeded');
    await reaches(production.locator('[data-node="batch-1"]'), 'succeeded');
    // The bake after batch 1 counts down while it runs.
    const bake = production.locator('[data-node="bake-1"]');
    await reaches(bake, 'running');
    expect(await bake.locator('.countdown').textContent()).toMatch(/left|ending/);
    await shot(page, 'release-graph-running');
    await reaches(production.locator('[data-node="batch-2"]'), 'running');
    expect(await stateOf(bake)).toBe('succeeded');
    expect(await stateOf(production.locator('[data-node="batch-3"]'))).toBe('pending');

    for (const host of ['flow-3', 'flow-4']) await writeFile(join(hostDir(host), 'go'), '');
    await page.locator('h1 .badge', { hasText: 'succeeded' }).waitFor({ timeout: 120_000 });
    await reaches(production.locator('[data-node="live"]'), 'succeeded');
    expect(await production.locator('.node').evaluateAll((nodes) => nodes.map((node) => node.getAttribute('data-state')))).toEqual(
      Array(10).fill('succeeded'),
    );
    expect(await page.locator('table.events td.sentence', { hasText: `${LEAD} approved production` }).count()).toBe(1);
    for (const host of ['flow-3', 'flow-4']) await rm(join(hostDir(host), 'hold'));
    await page.close();
  });

  it('shows a failed middle batch as failed and put back, the batch before it put back, and the one after never run', async () => {
    const id = await open('brittle', '1.0.0');
    const page = await signIn(server.adminToken);
    await page.goto(`${server.url}/#/releases/${id}`);
    await page.locator('h1 .badge', { hasText: 'failed' }).waitFor({ timeout: 120_000 });
    const production = lane(page, 'production');
    await reaches(production.locator('[data-node="batch-2"]'), 'failed');
    expect(await production.locator('[data-node="batch-2"] .node-state').textContent()).toContain('reverted');
    expect(await stateOf(production.locator('[data-node="batch-1"]'))).toBe('reverted');
    expect(await stateOf(production.locator('[data-node="batch-3"]'))).toBe('skipped');
    expect(await stateOf(production.locator('[data-node="live"]'))).toBe('skipped');
    expect(await production.locator('[data-node="batch-3"] .host').allTextContents()).toEqual(['brittle-5', 'brittle-6']);

    // Each host's steps in the order they ran: the revert after the switch it undid.
    expect(await page.locator('tr[data-host="brittle-3"] details[data-step]').evaluateAll((nodes) => nodes.map((node) => node.getAttribute('data-step')))).toEqual([
      'distribute',
      'switch',
      'revert',
    ]);

    // What the host printed is not in the release the page read: its switch step reads it from the
    // host's output route when opened.
    const read = await server.call('GET', `/v1/releases/${id}`);
    expect(JSON.stringify(read.body.environments)).not.toMatch(/"std(out|err)"/);
    const failedSwitch = read.body.environments[0].hosts.find((h: { host: string }) => h.host === 'brittle-3').steps.switch;
    expect(failedSwitch).toEqual({ exitCode: expect.any(Number), startedAt: expect.any(String), endedAt: expect.any(String) });
    expect(failedSwitch.exitCode).not.toBe(0);
    const outputReads: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === `/v1/releases/${id}/hosts/brittle-3/output`) outputReads.push(request.url());
    });
    const switchStep = page.locator('tr[data-host="brittle-3"] details[data-step="switch"]');
    await switchStep.locator('summary').click();
    await expect.poll(() => switchStep.locator('pre.stderr').textContent(), { timeout: 30_000 }).toContain('nothing answers on :8080');
    expect(outputReads.length).toBeGreaterThanOrEqual(1);
    // Only the switch's lines: the distribute before it printed its own.
    expect(await switchStep.locator('pre.stdout').textContent()).not.toContain('distributed');
    expect(await page.locator('tr[data-host="brittle-3"] details[data-step="distribute"] pre.stdout').textContent()).toContain('distributed');
    await switchStep.locator('summary').click();

    // The events read as sentences (a failed host's last word read from its output); the JSON is there, behind a toggle.
    const failedSentence = page.locator('table.events tr[data-event="switch.failed"] td.sentence');
    await expect.poll(() => failedSentence.textContent(), { timeout: 30_000 }).toMatch(
      /^Batch 2 of 3 in production failed: host brittle-3 failed at switch: exit \d+: nothing answers on :8080$/,
    );
    const sentences = await page.locator('table.events td.sentence').allTextContents();
    expect(sentences).toContain('Batch 1 of 3 in production switched 2 hosts');
    expect(sentences).toContain('Batch 1 of 3 in production put back on 2 hosts');
    expect(sentences.join('\n')).not.toContain('{');
    const json = page.locator('table.events tr[data-event="switch.failed"] pre');
    expect(await json.isVisible()).toBe(false);
    await page.locator('table.events tr[data-event="switch.failed"] summary').click();
    expect(await json.isVisible()).toBe(true);
    expect(JSON.parse((await json.textContent())!)).toMatchObject({ type: 'switch.failed', data: { batchIndex: 1, failedHosts: ['brittle-3'] } });
    await page.locator('table.events tr[data-event="switch.failed"] summary').click();
    await shot(page, 'release-graph-failed');
    await page.close();
  });

  it('shows a canary\'s pauses: a timed one counting down, one waiting for a promote, each gone on once promoted', async () => {
    const id = await open('bird', '1.0.0');
    const page = await signIn(server.adminToken);
    await page.goto(`${server.url}/#/releases/${id}`);
    const production = lane(page, 'production');
    const timed = production.locator('[data-node="pause-1"]');
    await reaches(timed, 'waiting');
    const titles = await production.locator('.node-title').allTextContents();
    expect(titles).toEqual(['Enter', 'Distribute', 'Batch 1 of 3', 'Pause 10 min', 'Batch 2 of 3', 'Pause', 'Batch 3 of 3', 'Live']);
    expect(await timed.locator('.countdown').textContent()).toMatch(/^(9 min( \d+ s)?|10 min) left$/);
    expect(await stateOf(production.locator('[data-node="batch-2"]'))).toBe('pending');

    // A promote ends the timed pause at once (it completes the TimedPause task's token): the batch after it follows.
    expect((await server.call('POST', `/v1/releases/${id}/promote`)).status).toBe(202);
    await reaches(timed, 'succeeded');
    expect(await timed.locator('.node-state').textContent()).toContain('promoted by admin');
    const person = production.locator('[data-node="pause-2"]');
    await reaches(person, 'waiting');
    expect(await person.locator('.node-state').textContent()).toContain('for a promote');
    expect(await stateOf(production.locator('[data-node="batch-2"]'))).toBe('succeeded');

    expect((await server.call('POST', `/v1/releases/${id}/promote`)).status).toBe(202);
    await page.locator('h1 .badge', { hasText: 'succeeded' }).waitFor({ timeout: 120_000 });
    await reaches(production.locator('[data-node="live"]'), 'succeeded');
    expect(await stateOf(person)).toBe('succeeded');
    const sentences = await page.locator('table.events td.sentence').allTextContents();
    expect(sentences).toContain('admin promoted production after batch 1');
    expect(sentences.some((s) => /^Paused in production after batch 1; goes on by itself at /.test(s))).toBe(true);
    await page.close();
  });
});
