import { mkdir, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { main } from '@slipway/cli';
import { createDocumentClient, createDynamoReleaseStore } from '@slipway/aws';
import { LOCAL_CREDENTIALS, LOCAL_REGION, LOCAL_TABLE } from '@slipway/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { scenario } from '../support/scenario.ts';

let server: TestServer;
const HOSTS = ['rb-1', 'rb-2', 'rb-3', 'rb-4'];
const ids: Record<string, string> = {};

beforeAll(async () => {
  server = await startTestServer();
  for (const host of HOSTS) await mkdir(join(server.dataDir, 'fleet', host), { recursive: true });
  const stored = await server.call('PUT', '/v1/apps/back', {
    body: {
      name: 'back',
      deployRoot: '/srv/back',
      keepReleases: 3,
      hooks: { postDeploy: 'echo built > built.txt', healthCheck: 'test -f "$RELEASE_DIR/index.html"' },
      environments: [{ name: 'production', targets: { hosts: HOSTS }, strategy: { type: 'rolling', batchSize: 2 } }],
    },
  });
  if (stored.status !== 200) throw new Error(JSON.stringify(stored.body));
  for (const version of ['1', '2']) ids[version] = await release(version);
});
afterAll(async () => server.stop());

const waitForEnd = (id: string) => server.waitForEnd(id);

async function release(version: string): Promise<string> {
  const artifact = await scenario(() => server).tarball('back', { 'index.html': `v${version}` });
  const opened = await server.call('POST', '/v1/releases', { body: { app: 'back', version, artifact } });
  expect((await waitForEnd(opened.body.id)).status).toBe('succeeded');
  return opened.body.id;
}

const current = (host: string) => readlink(join(server.dataDir, 'fleet', host, 'current'));
const rollback = (body: unknown, token?: string) =>
  server.call('POST', '/v1/apps/back/environments/production/rollback', { body, ...(token ? { token } : {}) });

describe('rollback', () => {
  it('switches every host back to the release live before, with its own record, and downloads nothing', async () => {
    const commandsBefore = (await readdir(join(server.dataDir, 'commands'))).length;
    const answer = await rollback({});
    expect(answer.status).toBe(202);
    const ended = await waitForEnd(answer.body.id);
    expect(ended.status, ended.reason).toBe('succeeded');
    expect(ended).toMatchObject({
      version: '1',
      openedBy: 'admin',
      description: 'rollback of production from 2 to 1 by admin',
      rollback: { environment: 'production', target: ids['1'], from: { id: ids['2'], version: '2' } },
    });
    for (const host of HOSTS) expect(await current(host)).toBe(`releases/${ids['1']}`);
    expect(ended.events.find((e: any) => e.type === 'rollback.opened')).toMatchObject({
      actor: 'admin',
      data: { environment: 'production', from: { id: ids['2'] }, to: { id: ids['1'] } },
    });
    const app = (await server.call('GET', '/v1/apps/back')).body;
    expect(app.environments[0]).toMatchObject({ live: { id: ids['1'], version: '1' }, lock: null });

    const history = (await server.call('GET', `/v1/releases/${answer.body.id}/history`)).body;
    const entered = history.events.filter((e: any) => e.type === 'StateEntered').map((e: any) => e.state);
    expect(entered).not.toContain('Distribute');
    expect(entered).not.toContain('Prune');
    expect(entered.filter((s: string) => s === 'SwitchBatch')).toHaveLength(2);
    // Two switch commands, nothing else: no download, no postDeploy.
    const commands = await readdir(join(server.dataDir, 'commands'));
    const kinds = await Promise.all(
      commands.map(async (c) => JSON.parse(await readFile(join(server.dataDir, 'commands', c, 'command.json'), 'utf8')).kind),
    );
    expect(commands.length - commandsBefore).toBe(2);
    expect(kinds.slice(-2)).toEqual(['switch', 'switch']);
  });

  it('rolls forward again to a chosen retained release, from the CLI', async () => {
    const out: string[] = [];
    const code = await main(
      ['rollback', 'back', 'production', '--to', ids['2']!, '--wait', '--interval', '0.1'],
      { SLIPWAY_URL: server.url, SLIPWAY_TOKEN: server.adminToken },
      { out: (line) => out.push(line), err: (line) => out.push(line) },
    );
    expect(code, out.join('\n')).toBe(0);
    expect(out.join('\n')).toMatch(/production: succeeded \[####\] 4\/4 healthy/);
    for (const host of HOSTS) expect(await current(host)).toBe(`releases/${ids['2']}`);
  });

  it('refuses a target that is not retained, the live release, a locked environment and a viewer; nothing moves', async () => {
    const count = async () => (await server.call('GET', '/v1/releases?app=back&limit=100')).body.items.length;
    const before = await count();

    const pruned = await rollback({ toRelease: '01aaaaaaaaaaaaaaaaaaaaaaaa' });
    expect(pruned.status).toBe(422);
    expect(pruned.body.error.message).toMatch(/is not retained on production \(pruned, or never live there\); retained: /);
    const live = await rollback({ toRelease: ids['2'] });
    expect(live.status).toBe(422);
    expect(live.body.error.message).toBe(`release ${ids['2']} is already live on production`);
    expect((await rollback({ toRelease: 'NOT VALID' })).status).toBe(400);
    expect((await server.call('POST', '/v1/apps/back/environments/staging/rollback', { body: {} })).status).toBe(404);

    const viewer = await server.tokenFor('viewer');
    expect((await rollback({}, viewer)).status).toBe(403);

    const documents = createDocumentClient({
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      endpoints: { dynamodb: server.endpoints.dynamodb },
    });
    const store = createDynamoReleaseStore(documents, LOCAL_TABLE);
    const at = new Date().toISOString();
    const leaseUntil = new Date(Date.now() + 60_000).toISOString();
    await store.acquireLock({ app: 'back', environment: 'production', holder: 'someone', acquiredAt: at, leaseUntil }, at);
    const locked = await rollback({});
    expect(locked.status).toBe(409);
    expect(locked.body.error.details.holder).toBe('someone');
    await store.releaseLock('back', 'production', 'someone');
    documents.destroy();

    expect(await count()).toBe(before);
    for (const host of HOSTS) expect(await current(host)).toBe(`releases/${ids['2']}`);
  });

  it('puts the switched hosts back when the target is gone from one host', async () => {
    // release 1 disappears from rb-3 behind Slipway's back: its switch fails, the first batch is reverted.
    await rm(join(server.dataDir, 'fleet', 'rb-3', 'releases', ids['1']!), { recursive: true });
    const answer = await rollback({ toRelease: ids['1'] });
    const ended = await waitForEnd(answer.body.id);
    expect(ended.status).toBe('failed');
    expect(ended.reason).toMatch(/switch of batch 2 in production failed on rb-3 exited 20/);
    for (const host of HOSTS) expect(await current(host)).toBe(`releases/${ids['2']}`);
    expect((await server.call('GET', '/v1/apps/back')).body.environments[0]).toMatchObject({ live: { id: ids['2'] }, lock: null });
  });
});

describe('rollback approvals', () => {
  it('waits at the gate only when the environment asks for approval on rollbacks', async () => {
    for (const host of ['ga-1', 'ga-2']) await mkdir(join(server.dataDir, 'fleet', host), { recursive: true });
    const approver = await server.tokenFor('approver', 'ops@example.com');
    const configure = (forRollback: boolean) =>
      server.call('PUT', '/v1/apps/careful', {
        body: {
          name: 'careful',
          deployRoot: '/srv/careful',
          environments: [{ name: 'live', targets: { hosts: ['ga-1', 'ga-2'] }, approval: { approvers: ['ops@example.com'], forRollback } }],
        },
      });
    const approveWhenAsked = async (id: string) => {
      const deadline = Date.now() + 20_000;
      // The gate exists a moment after the status says so: wait for the gate itself.
      const waiting = async () => {
        const { body } = await server.call('GET', `/v1/releases/${id}`);
        return body.status === 'awaiting_approval' && body.approvals.some((a: any) => a.status === 'pending');
      };
      while (!(await waiting())) {
        if (Date.now() > deadline) throw new Error(`${id} never waited for approval`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const decided = await server.call('POST', `/v1/releases/${id}/approvals`, { token: approver, body: { decision: 'approve' } });
      expect(decided.status).toBe(200);
    };
    await configure(false);
    const versions: string[] = [];
    for (const version of ['1', '2']) {
      const artifact = await scenario(() => server).tarball('careful', { 'index.html': version });
      const opened = await server.call('POST', '/v1/releases', { body: { app: 'careful', version, artifact } });
      await approveWhenAsked(opened.body.id);
      expect((await waitForEnd(opened.body.id)).status).toBe('succeeded');
      versions.push(opened.body.id);
    }

    // Without forRollback, a rollback needs no approval even though releases do.
    const quick = await server.call('POST', '/v1/apps/careful/environments/live/rollback', { body: {} });
    const quickEnd = await waitForEnd(quick.body.id);
    expect(quickEnd.status).toBe('succeeded');
    expect(quickEnd.approvals).toEqual([]);

    await configure(true);
    const gated = await server.call('POST', '/v1/apps/careful/environments/live/rollback', { body: { toRelease: versions[1] } });
    await approveWhenAsked(gated.body.id);
    const gatedEnd = await waitForEnd(gated.body.id);
    expect(gatedEnd.status).toBe('succeeded');
    expect(gatedEnd.approvals[0]).toMatchObject({ status: 'approved', decisions: [{ approver: 'ops@example.com' }] });
    for (const host of ['ga-1', 'ga-2']) expect(await current(host)).toBe(`releases/${versions[1]}`);
  });
});
