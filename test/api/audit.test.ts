import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { scenario } from '../support/scenario.ts';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.stop());

async function putApp(name: string, environments: unknown[], extra: Record<string, unknown> = {}) {
  for (const env of environments as { targets: { hosts: string[] } }[]) {
    for (const host of env.targets.hosts) await mkdir(join(server.dataDir, 'fleet', host), { recursive: true });
  }
  const stored = await server.call('PUT', `/v1/apps/${name}`, { body: { name, deployRoot: `/srv/${name}`, environments, ...extra } });
  if (stored.status !== 200) throw new Error(JSON.stringify(stored.body));
  return stored.body;
}

async function open(app: string, version: string, token: string): Promise<string> {
  const artifact = await scenario(() => server).tarball(app, { 'index.html': `${app} ${version}` });
  const opened = await server.call('POST', '/v1/releases', { token, body: { app, version, artifact } });
  if (opened.status !== 202) throw new Error(JSON.stringify(opened.body));
  return opened.body.id;
}

async function atGate(id: string) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const release = (await server.call('GET', `/v1/releases/${id}`)).body;
    if (release.status === 'awaiting_approval' && release.events.some((e: any) => e.type === 'approval.mailed')) return;
    if (Date.now() > deadline) throw new Error(`release ${id} never reached its gate; it is ${release.status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Decides through the mailed link, as the approver does: open the page, post its form. */
async function decideByMail(id: string, approver: string, decision: 'approve' | 'reject', reason: string) {
  const mail = (await server.call('GET', '/v1/outbox')).body.items.find((m: any) => m.to[0] === approver && m.text.includes(id));
  const link = /(http:\/\/127\.0\.0\.1:\d+\/approvals\/[A-Za-z0-9_-]{43})/.exec(mail.text)![1]!;
  const csrf = /name="csrf" value="([^"]+)"/.exec(await (await fetch(link)).text())![1]!;
  const response = await fetch(link, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ decision, reason, csrf }).toString(),
  });
  expect(response.status).toBe(200);
}

async function allEntries(): Promise<any[]> {
  const response = await server.call('GET', '/v1/audit?limit=100');
  expect(response.status).toBe(200);
  expect(response.body.nextCursor).toBeUndefined();
  return response.body.items;
}

describe('GET /v1/audit', () => {
  const ids: Record<string, string> = {};
  let deployerName: string;

  beforeAll(async () => {
    // Config: created, then changed in a hook and one environment's strategy.
    const environments = [
      { name: 'staging', targets: { hosts: ['au-s1'] } },
      { name: 'production', targets: { hosts: ['au-p1', 'au-p2'] }, strategy: { type: 'rolling', batchSize: 1 } },
    ];
    await putApp('audited', environments, { hooks: { postRelease: 'true' } });
    await putApp('audited', [environments[0], { ...environments[1], strategy: { type: 'rolling', batchSize: 2 } }], {
      hooks: { postRelease: 'systemctl reload audited' },
    });

    deployerName = 'auditor-deployer@example.com';
    const deployer = await server.tokenFor('deployer', deployerName);

    // An approval decided through the mailed link, then a release cancelled at its gate.
    await putApp('gated', [{ name: 'production', targets: { hosts: ['au-g1'] }, approval: { approvers: ['ann@example.com'] } }]);
    ids.approved = await open('gated', '1', deployer);
    await atGate(ids.approved);
    await decideByMail(ids.approved, 'ann@example.com', 'approve', 'looks right');
    expect((await server.waitForEnd(ids.approved)).status).toBe('succeeded');
    ids.cancelled = await open('gated', '2', deployer);
    await atGate(ids.cancelled);
    expect((await server.call('POST', `/v1/releases/${ids.cancelled}/cancel`, { token: deployer })).status).toBe(202);
    expect((await server.waitForEnd(ids.cancelled)).status).toBe('cancelled');

    // Two releases live one after the other, then a rollback to the first.
    await putApp('back', [{ name: 'production', targets: { hosts: ['au-b1'] } }]);
    for (const version of ['1', '2']) {
      ids[`back${version}`] = await open('back', version, deployer);
      expect((await server.waitForEnd(ids[`back${version}`]!)).status).toBe('succeeded');
    }
    const rolledBack = await server.call('POST', '/v1/apps/back/environments/production/rollback', { token: deployer, body: {} });
    expect(rolledBack.status).toBe(202);
    ids.rollback = rolledBack.body.id;
    expect((await server.waitForEnd(ids.rollback!)).status).toBe('succeeded');

    // A token made and revoked.
    const temp = await server.call('POST', '/v1/tokens', { body: { name: 'temp@example.com', role: 'viewer', expiresInSeconds: 600 } });
    expect(temp.status).toBe(201);
    expect((await server.call('DELETE', '/v1/tokens/temp@example.com')).status).toBe(204);
    ids.tempSecret = temp.body.token;
  });

  it('lists who changed what, newest first', async () => {
    const entries = await allEntries();
    expect(entries.map((e) => [e.action, e.actor, e.subject])).toEqual([
      ['token.revoked', 'admin', 'tokens/temp@example.com'],
      ['token.created', 'admin', 'tokens/temp@example.com'],
      ['release.rollback_opened', deployerName, 'apps/back/environments/production'],
      ['app.config_changed', 'admin', 'apps/back'],
      ['release.cancelled', deployerName, `releases/${ids.cancelled}`],
      ['approval.decided', 'ann@example.com', `releases/${ids.approved}`],
      ['app.config_changed', 'admin', 'apps/gated'],
      ['token.created', 'admin', `tokens/${deployerName}`],
      ['app.config_changed', 'admin', 'apps/audited'],
      ['app.config_changed', 'admin', 'apps/audited'],
      ['app.config_changed', 'bootstrap', 'apps/demo'],
    ]);
    for (const entry of entries) {
      expect(Object.keys(entry).sort()).toEqual(['action', 'actor', 'at', 'details', 'id', 'subject']);
    }
    expect(entries.map((e) => e.id)).toEqual(entries.map((e) => e.id).sort().reverse());
    expect(JSON.stringify(entries)).not.toContain(ids.tempSecret);

    const byAction = (action: string) => entries.filter((e) => e.action === action);
    const [changed, created] = entries.filter((e) => e.subject === 'apps/audited');
    expect(changed.details).toEqual({
      revision: 2,
      previousRevision: 1,
      changed: ['hooks.postRelease', 'environments[production].strategy'],
    });
    expect(created.details).toMatchObject({ revision: 1, created: true });
    expect(created.details.changed).toEqual(expect.arrayContaining(['deployRoot', 'hooks', 'environments[staging]', 'environments[production]']));
    expect(byAction('approval.decided')[0].details).toEqual({
      app: 'gated',
      version: '1',
      environment: 'production',
      decision: 'approve',
      reason: 'looks right',
      via: 'link',
    });
    expect(byAction('release.cancelled')[0].details).toEqual({ app: 'gated', version: '2', from: 'awaiting_approval' });
    expect(byAction('release.rollback_opened')[0].details).toEqual({
      release: ids.rollback,
      app: 'back',
      environment: 'production',
      from: { id: ids.back2, version: '2' },
      to: { id: ids.back1, version: '1' },
    });
    expect(byAction('token.created')[0].details).toEqual({ name: 'temp@example.com', role: 'viewer', expiresAt: expect.any(String) });
    expect(byAction('token.revoked')[0].details).toEqual({ name: 'temp@example.com', role: 'viewer' });
  });

  it('pages with limit and cursor, every entry once', async () => {
    const everything = (await allEntries()).map((e) => e.id);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await server.call('GET', `/v1/audit?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((e: any) => e.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(everything);
  });

  it('is for admins only, and checks its query', async () => {
    for (const role of ['viewer', 'deployer', 'approver'] as const) {
      const token = await server.tokenFor(role, `audit-reader-${role}@example.com`);
      const refused = await server.call('GET', '/v1/audit', { token });
      expect(refused.status).toBe(403);
      expect(refused.body.error.message).toMatch(/this needs role admin/);
    }
    for (const query of ['limit=0', 'limit=101', 'cursor=..%2Fetc', 'colour=red']) {
      expect((await server.call('GET', `/v1/audit?${query}`)).status).toBe(400);
    }
  });
});
