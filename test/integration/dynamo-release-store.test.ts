import { createDynamoReleaseStore, createDynamoTokenStore } from '@slipway/aws';
import {
  AppConfig,
  ConflictError,
  EnvironmentLockedError,
  type EnvironmentState,
  type Release,
  type ReleaseStore,
  ValidationError,
} from '@slipway/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shopConfig } from '../support/fixtures.ts';
import { localDynamo } from '../support/stand-ins.ts';

let dynamo: Awaited<ReturnType<typeof localDynamo>>;
let store: ReleaseStore;

beforeAll(async () => {
  dynamo = await localDynamo();
  store = createDynamoReleaseStore(dynamo.client, dynamo.tableName);
});
afterAll(async () => dynamo.close());

let sequence = 0;
function release(app: string, overrides: Partial<Release> = {}): Release {
  sequence += 1;
  const id = `01t${String(sequence).padStart(10, '0')}aaaaaaaaaaaaa`;
  return {
    id,
    app,
    version: `1.0.${sequence}`,
    artifact: { key: `artifacts/${app}/x.tar.gz`, sha256: 'a'.repeat(64), size: 10 },
    description: '',
    status: 'pending',
    openedBy: 'alice@example.com',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    config: { ...shopConfig, name: app },
    ...overrides,
  };
}

function envStates(r: Release): EnvironmentState[] {
  return r.config.environments.map((env, order) => ({
    releaseId: r.id,
    app: r.app,
    environment: env.name,
    order,
    status: 'pending',
  }));
}

async function open(app: string) {
  const r = release(app);
  await store.createRelease(r, envStates(r));
  return r;
}

describe('apps', () => {
  it('stores config with a revision that counts writes and refuses a stale write', async () => {
    const first = await store.putApp(shopConfig, 'admin', '2026-01-01T00:00:00Z');
    expect(first.revision).toBe(1);
    const second = await store.putApp({ ...shopConfig, keepReleases: 7 }, 'bob', '2026-01-02T00:00:00Z', 1);
    expect(second).toMatchObject({ revision: 2, updatedBy: 'bob' });
    await expect(store.putApp(shopConfig, 'carol', '2026-01-03T00:00:00Z', 1)).rejects.toThrow(ConflictError);
    const stored = await store.getApp('shop');
    expect(stored?.config.keepReleases).toBe(7);
    expect(AppConfig.parse(stored?.config)).toEqual(stored?.config);
    expect(await store.listApps()).toContain('shop');
    expect(await store.getApp('nope')).toBeUndefined();
  });

  it('creates only when asked to expect revision 0 and nothing is there', async () => {
    const fresh = { ...shopConfig, name: 'fresh' };
    await store.putApp(fresh, 'admin', '2026-01-01T00:00:00Z', 0);
    await expect(store.putApp(fresh, 'admin', '2026-01-01T00:00:00Z', 0)).rejects.toThrow(ConflictError);
  });
});

describe('releases', () => {
  it('creates a release once and reads it back whole', async () => {
    const r = await open('alpha');
    expect(await store.getRelease(r.id)).toEqual(r);
    await expect(store.createRelease(r, envStates(r))).rejects.toThrow(ConflictError);
    const envs = await store.getEnvironmentStates(r.id);
    expect(envs.map((e) => e.environment).sort()).toEqual(['production', 'staging']);
  });

  it('moves status only from the expected status', async () => {
    const r = await open('alpha');
    const moved = await store.updateReleaseStatus(r.id, 'pending', 'distributing', '2026-01-01T00:01:00Z');
    expect(moved).toMatchObject({ status: 'distributing', updatedAt: '2026-01-01T00:01:00Z' });
    const stale = store.updateReleaseStatus(r.id, 'pending', 'cancelled', '2026-01-01T00:02:00Z');
    await expect(stale).rejects.toThrow(/is distributing, not pending/);
    const failed = await store.updateReleaseStatus(r.id, 'distributing', 'failed', 'now', 'host h1 failed');
    expect(failed.reason).toBe('host h1 failed');
    await expect(store.updateReleaseStatus('01nosuchrelease', 'pending', 'failed', 'now')).rejects.toThrow(
      /does not exist/,
    );
  });

  it('lists newest first, pages with a cursor, and filters by app and environment', async () => {
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await open('beta'));
    await open('gamma');
    const newestFirst = made.map((r) => r.id).reverse();

    const page1 = await store.listReleases({ app: 'beta', limit: 2 });
    expect(page1.items.map((r) => r.id)).toEqual(newestFirst.slice(0, 2));
    const page2 = await store.listReleases({ app: 'beta', limit: 2, cursor: page1.nextCursor });
    expect(page2.items.map((r) => r.id)).toEqual(newestFirst.slice(2, 4));
    const page3 = await store.listReleases({ app: 'beta', limit: 2, cursor: page2.nextCursor });
    expect(page3.items.map((r) => r.id)).toEqual(newestFirst.slice(4));

    const byEnv = await store.listReleases({ app: 'beta', environment: 'production', limit: 3 });
    expect(byEnv.items.map((r) => r.id)).toEqual(newestFirst.slice(0, 3));
    expect(byEnv.items[0]?.config).toBeDefined();
    expect((await store.listReleases({ app: 'beta', environment: 'qa', limit: 3 })).items).toEqual([]);

    const all = await store.listReleases({ limit: 100 });
    expect(all.items[0]?.app).toBe('gamma');
    expect(all.items.map((r) => r.id)).toEqual([...all.items.map((r) => r.id)].sort().reverse());
  });

  it('refuses a cursor from another listing or one that was tampered with', async () => {
    await open('delta');
    await open('delta');
    const page = await store.listReleases({ app: 'delta', limit: 1 });
    expect(page.nextCursor).toBeDefined();
    await expect(store.listReleases({ app: 'beta', limit: 1, cursor: page.nextCursor })).rejects.toThrow(
      ValidationError,
    );
    const forged = Buffer.from(JSON.stringify({ pk: 'TOKEN#x', sk: 'TOKEN' })).toString('base64url');
    await expect(store.listReleases({ limit: 1, cursor: forged })).rejects.toThrow(/cursor/);
    await expect(store.listReleases({ limit: 1, cursor: '!!!' })).rejects.toThrow(/cursor/);
  });

  it('keeps host states and an ordered event log per release', async () => {
    const r = await open('epsilon');
    await store.ensureHostStates(r.id, 'staging', ['h1', 'h2'], 't0');
    await store.setHostStatus(r.id, 'staging', 'h1', 'distributed', 't1');
    await store.putHostStep(r.id, 'staging', 'h1', 'distribute', {
      exitCode: 0,
      stdout: 'ok',
      stderr: '',
      startedAt: 't0',
      endedAt: 't1',
    });
    // Creating again leaves what is there alone.
    await store.ensureHostStates(r.id, 'staging', ['h1'], 't2');
    const hosts = await store.getHostStates(r.id);
    expect(hosts.map((h) => [h.host, h.status, h.updatedAt])).toEqual([
      ['h1', 'distributed', 't1'],
      ['h2', 'pending', 't0'],
    ]);
    expect(hosts[0]?.steps.distribute?.stdout).toBe('ok');

    for (const [id, type] of [
      ['e2', 'second'],
      ['e1', 'first'],
      ['e3', 'third'],
    ]) {
      await store.appendEvent({ releaseId: r.id, id: id!, at: 'now', type: type!, actor: 'alice' });
    }
    await store.appendEvent({ releaseId: r.id, id: 'e1', at: 'later', type: 'duplicate', actor: 'alice' });
    expect((await store.listEvents(r.id)).map((e) => e.type)).toEqual(['first', 'second', 'third']);
  });
});

describe('environment locks', () => {
  const lock = (holder: string, leaseUntil: string) => ({
    app: 'shop',
    environment: 'production',
    holder,
    acquiredAt: '2026-01-01T00:00:00.000Z',
    leaseUntil,
  });

  it('lets one holder in, renews for the same holder, refuses others until the lease runs out', async () => {
    await store.acquireLock(lock('rel-a', '2026-01-01T01:00:00.000Z'), '2026-01-01T00:00:00.000Z');
    await store.acquireLock(lock('rel-a', '2026-01-01T02:00:00.000Z'), '2026-01-01T00:30:00.000Z');
    const refused = store.acquireLock(lock('rel-b', '2026-01-01T03:00:00.000Z'), '2026-01-01T01:00:00.000Z');
    await expect(refused).rejects.toThrow(EnvironmentLockedError);
    await expect(refused).rejects.toMatchObject({ holder: 'rel-a', leaseUntil: '2026-01-01T02:00:00.000Z' });

    // The lease ran out: a crashed holder cannot block the environment forever.
    await store.acquireLock(lock('rel-b', '2026-01-01T04:00:00.000Z'), '2026-01-01T02:00:00.001Z');
    expect((await store.getLock('shop', 'production'))?.holder).toBe('rel-b');

    await store.releaseLock('shop', 'production', 'rel-a');
    expect((await store.getLock('shop', 'production'))?.holder).toBe('rel-b');
    await store.releaseLock('shop', 'production', 'rel-b');
    expect(await store.getLock('shop', 'production')).toBeUndefined();
  });

  it('admits exactly one of many concurrent takers', async () => {
    const now = '2026-02-01T00:00:00.000Z';
    const attempts = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        store.acquireLock({ ...lock(`rel-${i}`, '2026-02-01T01:00:00.000Z'), environment: 'race' }, now),
      ),
    );
    expect(attempts.filter((a) => a.status === 'fulfilled')).toHaveLength(1);
    const winner = await store.getLock('shop', 'race');
    for (const attempt of attempts) {
      if (attempt.status === 'rejected') expect(attempt.reason).toMatchObject({ holder: winner?.holder });
    }
  });
});

describe('environment live records and artifacts', () => {
  it('round-trips what is live and the artifact records', async () => {
    await store.putEnvironmentLive({
      app: 'shop',
      environment: 'staging',
      liveRelease: { id: 'r2', version: '2', since: 't' },
      retained: [
        { id: 'r2', version: '2' },
        { id: 'r1', version: '1' },
      ],
    });
    expect((await store.getEnvironmentLive('shop', 'staging'))?.retained).toHaveLength(2);
    await store.putArtifactRecord({
      app: 'shop',
      sha256: 'b'.repeat(64),
      key: 'k',
      size: 3,
      requestedBy: 'alice',
      requestedAt: 't',
    });
    expect(await store.getArtifactRecord('shop', 'b'.repeat(64))).toMatchObject({
      size: 3,
      requestedBy: 'alice',
    });
    expect(await store.getArtifactRecord('shop', 'c'.repeat(64))).toBeUndefined();
  });
});

describe('token store', () => {
  it('stores by hash and can refuse to overwrite', async () => {
    const tokens = createDynamoTokenStore(dynamo.client, dynamo.tableName);
    await tokens.putToken('h1', { name: 'alice', role: 'deployer', createdAt: 't', createdBy: 'admin' });
    await tokens.putToken(
      'h1',
      { name: 'mallory', role: 'admin', createdAt: 't', createdBy: 'x' },
      { onlyIfAbsent: true },
    );
    expect(await tokens.getToken('h1')).toMatchObject({ name: 'alice', role: 'deployer' });
    expect(await tokens.getToken('h2')).toBeUndefined();
  });
});
