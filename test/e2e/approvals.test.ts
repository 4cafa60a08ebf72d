import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createDocumentClient, createDynamoApprovalStore, createDynamoReleaseStore } from '@slipway/aws';
import { LOCAL_CREDENTIALS, LOCAL_REGION, LOCAL_TABLE } from '@slipway/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { scenario } from '../support/scenario.ts';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.stop());

async function release(id: string) {
  return (await server.call('GET', `/v1/releases/${id}`)).body;
}

async function waitFor(id: string, done: (r: any) => boolean, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const current = await release(id);
    if (done(current)) return current;
    if (Date.now() > deadline) throw new Error(`release ${id} never ${what}; it is ${current.status}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
const waitForEnd = (id: string) => server.waitForEnd(id);
/** At the gate with every approver mailed. */
const waitForGate = (id: string) =>
  waitFor(
    id,
    (r) =>
      r.status === 'awaiting_approval' &&
      r.approvals.length > 0 &&
      r.events.filter((e: any) => e.type === 'approval.mailed').length === r.approvals[0].approvers.length,
    'reached its gate',
  );

async function artifactFor(app: string, content: string) {
  return scenario(() => server).tarball(app, { 'index.html': content });
}

async function open(app: string, version: string, token?: string) {
  const artifact = await artifactFor(app, version);
  const opened = await server.call('POST', '/v1/releases', {
    body: { app, version, artifact, description: `release ${version}` },
    ...(token ? { token } : {}),
  });
  if (opened.status !== 202) throw new Error(JSON.stringify(opened.body));
  return opened.body.id as string;
}

/** The approval links mailed for a release, by approver. */
async function links(id: string): Promise<Record<string, string>> {
  const { items } = (await server.call('GET', '/v1/outbox')).body;
  const found: Record<string, string> = {};
  for (const mail of items) {
    if (!mail.text.includes(id)) continue;
    const link = /(http:\/\/127\.0\.0\.1:\d+\/approvals\/[A-Za-z0-9_-]{43})/.exec(mail.text)?.[1];
    if (link) found[mail.to[0]] = link;
  }
  return found;
}

async function page(link: string, method = 'GET') {
  const response = await fetch(link, { method });
  return { status: response.status, headers: response.headers, html: await response.text() };
}

async function decide(link: string, decision: string, options: { reason?: string; csrf?: string | null } = {}) {
  const csrf = options.csrf === undefined ? /name="csrf" value="([^"]+)"/.exec((await page(link)).html)?.[1] : options.csrf;
  const form = new URLSearchParams({ decision, reason: options.reason ?? '' });
  if (csrf !== null && csrf !== undefined) form.set('csrf', csrf);
  const response = await fetch(link, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  });
  return { status: response.status, html: await response.text() };
}

async function gatedApp(name: string, approval: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const hosts = [`${name}-1`, `${name}-2`];
  for (const host of hosts) await mkdir(join(server.dataDir, 'fleet', host), { recursive: true });
  const stored = await server.call('PUT', `/v1/apps/${name}`, {
    body: {
      name,
      deployRoot: `/srv/${name}`,
      environments: [{ name: 'production', targets: { hosts }, approval }],
      ...extra,
    },
  });
  if (stored.status !== 200) throw new Error(JSON.stringify(stored.body));
  return hosts;
}

describe('the demo app with its production approval', () => {
  let id: string;
  let link: string;

  it('switches staging, then waits at production with one mail per approver', async () => {
    const deployer = await server.tokenFor('deployer', 'dana@example.com');
    id = await open('demo', '1.0.0', deployer);
    const waiting = await waitForGate(id);
    expect(waiting.environments.map((e: any) => [e.environment, e.status])).toEqual([
      ['staging', 'succeeded'],
      ['production', 'awaiting_approval'],
    ]);
    for (const host of ['staging-1', 'staging-2']) expect(await readlink(join(server.dataDir, 'fleet', host, 'current'))).toBe(`releases/${id}`);
    for (const host of ['prod-1', 'prod-2', 'prod-3', 'prod-4']) {
      await expect(readlink(join(server.dataDir, 'fleet', host, 'current'))).rejects.toThrow();
    }
    const mailed = await links(id);
    expect(Object.keys(mailed)).toEqual(['approver@example.com']);
    link = mailed['approver@example.com']!;

    const { items } = (await server.call('GET', '/v1/outbox')).body;
    const mail = items.find((m: any) => m.text.includes(id));
    expect(mail.subject).toBe('[Slipway] Approve demo 1.0.0 for production?');
    expect(mail.text).toContain('dana@example.com asks to release demo 1.0.0 to production');
    expect(mail.text).toContain('Live now: nothing');
    expect(mail.text).toContain('release 1.0.0');
    const eml = await readFile(join(server.dataDir, 'outbox', `${mail.id}.eml`), 'utf8');
    expect(eml).toContain('Content-Type: multipart/alternative');
    expect(eml).toContain('Content-Type: text/html; charset=utf-8');
  });

  it('changes nothing on GET or HEAD of the link', async () => {
    const shown = await page(link);
    expect(shown.status).toBe(200);
    expect(shown.html).toContain('Release demo 1.0.0 to production?');
    expect(shown.html).toContain('value="approve"');
    expect(shown.html).not.toMatch(/<script/i);
    expect(shown.headers.get('referrer-policy')).toBe('no-referrer');
    expect(shown.headers.get('cache-control')).toBe('no-store');
    const head = await page(link, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers.get('referrer-policy')).toBe('no-referrer');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const still = await release(id);
    expect(still.status).toBe('awaiting_approval');
    expect(still.approvals[0]).toMatchObject({ environment: 'production', status: 'pending', decisions: [] });
    expect(still.events.filter((e: any) => e.type === 'approval.viewed').map((e: any) => e.data.method)).toEqual(['GET', 'HEAD']);
  });

  it('resumes on a POST approve and succeeds, naming the approver', async () => {
    const approved = await decide(link, 'approve', { reason: 'looks good' });
    expect(approved.status).toBe(200);
    expect(approved.html).toContain('You approved demo 1.0.0');
    const ended = await waitForEnd(id);
    expect(ended.status).toBe('succeeded');
    for (const host of ['prod-1', 'prod-2', 'prod-3', 'prod-4']) {
      expect(await readlink(join(server.dataDir, 'fleet', host, 'current'))).toBe(`releases/${id}`);
    }
    const decided = ended.events.find((e: any) => e.type === 'approval.decided');
    expect(decided).toMatchObject({ actor: 'approver@example.com', data: { decision: 'approve', reason: 'looks good', via: 'link' } });
    expect(ended.approvals[0]).toMatchObject({ status: 'approved', decisions: [{ approver: 'approver@example.com', decision: 'approve' }] });
    // The opener hears of it right after the release is marked succeeded.
    await waitFor(id, (r) => r.events.some((e: any) => e.type === 'notification.mailed' && e.data.to === 'dana@example.com'), 'told its opener');
  });

  it('refuses the used link with a clear page and changes nothing', async () => {
    const again = await decide(link, 'reject', { csrf: 'no form is shown for a used link' });
    expect(again.status).toBe(409);
    expect((await page(link)).html).toContain('Already decided');
    expect((await release(id)).status).toBe('succeeded');
  });

  it('never lets a task token into a log line, a mail, a page or an API answer', async () => {
    const documents = createDocumentClient({
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      endpoints: { dynamodb: server.endpoints.dynamodb },
    });
    const steps = await createDynamoReleaseStore(documents, LOCAL_TABLE).listSteps(id);
    documents.destroy();
    const tokens = steps.map((s) => s.taskToken).filter((t): t is string => !!t);
    expect(tokens.length).toBeGreaterThanOrEqual(5);
    const mails = await Promise.all(
      (await readdir(join(server.dataDir, 'outbox'))).map((name) => readFile(join(server.dataDir, 'outbox', name), 'utf8')),
    );
    const answers = [
      JSON.stringify(await release(id)),
      JSON.stringify((await server.call('GET', `/v1/releases/${id}/history`)).body),
      JSON.stringify((await server.call('GET', '/v1/outbox')).body),
      (await page(link)).html,
    ];
    for (const token of tokens) {
      for (const line of server.logs) expect(line).not.toContain(token);
      for (const mail of mails) {
        expect(mail).not.toContain(token);
        expect(Buffer.from(mail.split('base64\r\n\r\n')[1] ?? '', 'base64').toString()).not.toContain(token);
      }
      for (const answer of answers) expect(answer).not.toContain(token);
    }
  });
});

describe('decisions', () => {
  it('rejects: no host switched, release rejected with the reason, lock freed, opener told', async () => {
    const hosts = await gatedApp('nay', { approvers: ['ann@example.com'] });
    const rita = await server.tokenFor('deployer', 'rita@example.com');
    const id = await open('nay', '1', rita);
    await waitForGate(id);
    const link = (await links(id))['ann@example.com']!;
    const rejected = await decide(link, 'reject', { reason: 'not on a Friday' });
    expect(rejected.status).toBe(200);
    const ended = await waitForEnd(id);
    expect(ended.status).toBe('rejected');
    expect(ended.reason).toBe('rejected by ann@example.com: not on a Friday');
    for (const host of hosts) await expect(readlink(join(server.dataDir, 'fleet', host, 'current'))).rejects.toThrow();
    expect((await server.call('GET', '/v1/apps/nay')).body.environments[0].lock).toBeNull();
    expect(ended.events.some((e: any) => e.type === 'release.rejected')).toBe(true);
    await waitFor(id, (r) => r.events.some((e: any) => e.type === 'notification.mailed'), 'told its opener');
    const told = (await server.call('GET', '/v1/outbox')).body.items.find((m: any) => m.to[0] === 'rita@example.com');
    expect(told.subject).toBe('[Slipway] nay 1 rejected');
    expect(told.text).toContain('Reason: rejected by ann@example.com: not on a Friday');
  });

  it('waits for N of M approvals and resumes once', async () => {
    await gatedApp('quorum', { approvers: ['a@example.com', 'b@example.com', 'c@example.com'], required: 2 });
    const id = await open('quorum', '1');
    await waitForGate(id);
    const mailed = await links(id);
    expect(Object.keys(mailed).sort()).toEqual(['a@example.com', 'b@example.com', 'c@example.com']);
    expect((await decide(mailed['a@example.com']!, 'approve')).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await release(id)).status).toBe('awaiting_approval');
    const [b, c] = await Promise.all([decide(mailed['b@example.com']!, 'approve'), decide(mailed['c@example.com']!, 'approve')]);
    // Both decisions are recorded; only one of them settles the gate and resumes the workflow.
    expect([b.status, c.status]).toEqual([200, 200]);
    const ended = await waitForEnd(id);
    expect(ended.status).toBe('succeeded');
    expect(ended.events.filter((e: any) => e.type === 'approval.approved')).toHaveLength(1);
    const history = (await server.call('GET', `/v1/releases/${id}/history`)).body.events;
    expect(history.filter((e: any) => e.type === 'StateExited' && e.state === 'AwaitApproval')).toHaveLength(1);
  });

  it('refuses self-approval on the link and through the API; another approver decides', async () => {
    await gatedApp('selfish', { approvers: ['sam@example.com', 'ann@example.com'] });
    const sam = await server.tokenFor('deployer', 'sam@example.com');
    const id = await open('selfish', '1', sam);
    await waitForGate(id);
    const link = (await links(id))['sam@example.com']!;
    const shown = await page(link);
    expect(shown.html).toContain('You opened this release, so you cannot approve it yourself');
    expect(shown.html).not.toContain('value="approve"');
    const csrf = /name="csrf" value="([^"]+)"/.exec(shown.html)![1]!;
    const refused = await decide(link, 'approve', { csrf });
    expect(refused.status).toBe(403);
    // A name is one token: sam's deployer token goes before sam gets an approver's.
    expect((await server.call('DELETE', '/v1/tokens/sam@example.com')).status).toBe(204);
    const samApprover = await server.tokenFor('approver', 'sam@example.com');
    const viaApi = await server.call('POST', `/v1/releases/${id}/approvals`, { token: samApprover, body: { decision: 'approve' } });
    expect(viaApi.status).toBe(403);
    expect((await release(id)).approvals[0].decisions).toEqual([]);

    const annApprover = await server.tokenFor('approver', 'ann@example.com');
    const annApproves = await server.call('POST', `/v1/releases/${id}/approvals`, {
      token: annApprover,
      body: { environment: 'production', decision: 'approve', reason: 'checked the diff' },
    });
    expect(annApproves.status).toBe(200);
    expect(annApproves.body).toEqual({ environment: 'production', decision: 'approve', gate: 'approved' });
    const ended = await waitForEnd(id);
    expect(ended.status).toBe('succeeded');
    expect(ended.approvals[0].decisions).toMatchObject([{ approver: 'ann@example.com', via: 'api', reason: 'checked the diff' }]);
  });

  it('records one decision when the same link is posted twice at once', async () => {
    await gatedApp('twice', { approvers: ['tia@example.com'] });
    const id = await open('twice', '1');
    await waitForGate(id);
    const link = (await links(id))['tia@example.com']!;
    const csrf = /name="csrf" value="([^"]+)"/.exec((await page(link)).html)![1]!;
    const answers = await Promise.all([decide(link, 'approve', { csrf }), decide(link, 'approve', { csrf })]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
    const ended = await waitForEnd(id);
    expect(ended.status).toBe('succeeded');
    expect(ended.approvals[0].decisions).toHaveLength(1);
    expect(ended.events.filter((e: any) => e.type === 'approval.decided')).toHaveLength(1);
  });

  it('times out: failed with reason "approval timed out", links closed, nothing switched', async () => {
    const hosts = await gatedApp('slow', { approvers: ['zed@example.com'], timeoutHours: 0.0005 });
    const id = await open('slow', '1');
    await waitForGate(id);
    const link = (await links(id))['zed@example.com']!;
    const ended = await waitForEnd(id);
    expect(ended.status).toBe('failed');
    expect(ended.reason).toBe('approval timed out');
    expect(ended.approvals[0].status).toBe('timed_out');
    for (const host of hosts) await expect(readlink(join(server.dataDir, 'fleet', host, 'current'))).rejects.toThrow();
    const late = await decide(link, 'approve');
    expect(late.status).toBe(409);
    expect(late.html).toContain('No longer waiting');
  });
});

describe('bad links and bad forms', () => {
  let id: string;
  let link: string;

  beforeAll(async () => {
    await gatedApp('guarded', { approvers: ['gus@example.com'] });
    id = await open('guarded', '1');
    await waitForGate(id);
    link = (await links(id))['gus@example.com']!;
  });

  it.each([
    ['a forged id', (l: string) => l.replace(/[A-Za-z0-9_-]{43}$/, 'A'.repeat(43))],
    ['a tampered id', (l: string) => `${l.slice(0, -1)}${l.endsWith('A') ? 'B' : 'A'}`],
    ['a malformed id', (l: string) => `${l.slice(0, -5)}<x>`],
  ])('answers %s with a clear page', async (_what, change) => {
    const shown = await page(change(link));
    expect(shown.status).toBe(404);
    expect(shown.html).toContain('Link not valid');
    expect((await decide(change(link), 'approve', { csrf: 'whatever' })).status).toBe(404);
  });

  it('refuses a missing or wrong CSRF token, an unknown decision and a long reason, deciding nothing', async () => {
    expect((await decide(link, 'approve', { csrf: null })).status).toBe(400);
    expect((await decide(link, 'approve', { csrf: 'not-the-token' })).status).toBe(403);
    expect((await decide(link, 'maybe')).status).toBe(400);
    expect((await decide(link, 'approve', { reason: 'x'.repeat(2001) })).status).toBe(400);
    const still = await release(id);
    expect(still.status).toBe('awaiting_approval');
    expect(still.approvals[0].decisions).toEqual([]);
    expect((await page(link)).status).toBe(200);
  });

  it('shows an expired link as expired', async () => {
    const documents = createDocumentClient({
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      endpoints: { dynamodb: server.endpoints.dynamodb },
    });
    const approvals = createDynamoApprovalStore(documents, LOCAL_TABLE);
    const { createHash } = await import('node:crypto');
    const expiredId = 'E'.repeat(43);
    await approvals.putLink(createHash('sha256').update(expiredId).digest('hex'), {
      releaseId: id,
      environment: 'production',
      approver: 'gus@example.com',
      expiresAt: '2020-01-01T00:00:00.000Z',
    });
    documents.destroy();
    const expired = link.replace(/[A-Za-z0-9_-]{43}$/, expiredId);
    expect((await page(expired)).status).toBe(410);
    const decided = await decide(expired, 'approve');
    expect(decided.status).toBe(410);
    expect(decided.html).toContain('expired');
    expect((await release(id)).status).toBe('awaiting_approval');
  });

  it('refuses API decisions from people who are not approvers or hold the wrong role', async () => {
    const stranger = await server.tokenFor('approver', 'stranger@example.com');
    expect((await server.call('POST', `/v1/releases/${id}/approvals`, { token: stranger, body: { decision: 'approve' } })).status).toBe(403);
    const deployer = await server.tokenFor('deployer', 'gus@example.com');
    expect((await server.call('POST', `/v1/releases/${id}/approvals`, { token: deployer, body: { decision: 'approve' } })).status).toBe(403);
    expect((await server.call('DELETE', '/v1/tokens/gus@example.com')).status).toBe(204);
    const gus = await server.tokenFor('approver', 'gus@example.com');
    const bad = await server.call('POST', `/v1/releases/${id}/approvals`, { token: gus, body: { decision: 'yes' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].field).toBe('decision');
    expect((await release(id)).approvals[0].decisions).toEqual([]);
  });
});

describe('webhook', () => {
  it('posts the outcome as JSON once', async () => {
    const received: any[] = [];
    const hook = createServer(async (request, response) => {
      let text = '';
      for await (const chunk of request) text += chunk;
      received.push(JSON.parse(text));
      response.writeHead(204).end();
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/slipway`;
    try {
      const hosts = ['hooked-1'];
      await mkdir(join(server.dataDir, 'fleet', hosts[0]!), { recursive: true });
      await server.call('PUT', '/v1/apps/hooked', {
        body: { name: 'hooked', deployRoot: '/srv/hooked', webhookUrl: url, environments: [{ name: 'live', targets: { hosts } }] },
      });
      const id = await open('hooked', '1');
      expect((await waitForEnd(id)).status).toBe('succeeded');
      const deadline = Date.now() + 5000;
      while (received.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(received).toEqual([
        {
          event: 'release.succeeded',
          release: { id, app: 'hooked', version: '1', status: 'succeeded', reason: null, openedBy: 'admin' },
          link: `${server.url}/v1/releases/${id}`,
        },
      ]);
    } finally {
      hook.close();
    }
  });

  it('refuses a plain-http webhook to another machine', async () => {
    const refused = await server.call('PUT', '/v1/apps/leaky', {
      body: { name: 'leaky', deployRoot: '/srv/leaky', webhookUrl: 'http://example.com/hook', environments: [{ name: 'live', targets: { hosts: ['x'] } }] },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.details[0].field).toBe('webhookUrl');
  });
});
