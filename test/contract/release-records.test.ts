import { createDynamoReleaseRecords, createTableAccess } from '@slipway/aws';
import { ConflictError, type ReleaseRecordStore, ValidationError } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createMemoryReleaseRecords } from '../../packages/core/src/testing/memory-release-store.ts';
import { aRelease, environmentsOf, implementations } from './implementations.ts';

const stores = implementations<ReleaseRecordStore>('releases', createMemoryReleaseRecords, (client, table) =>
  createDynamoReleaseRecords(createTableAccess(client, table)),
);

describe.each(stores)('release records contract: %s', (_name, make) => {
  async function opened(store: ReleaseRecordStore, app = 'shop') {
    const release = aRelease(app);
    await store.createRelease(release, environmentsOf(release));
    return release;
  }

  it('creates a release once and reads it back whole, with its environments in name order', async () => {
    const store = await make();
    const release = await opened(store);
    expect(await store.getRelease(release.id)).toEqual(release);
    await expect(store.createRelease(release, environmentsOf(release))).rejects.toThrow(ConflictError);
    expect((await store.getEnvironmentStates(release.id)).map((e) => e.environment)).toEqual(['production', 'staging']);
    expect(await store.getRelease('01nosuchrelease0000000000')).toBeUndefined();
    expect(await store.getEnvironmentStates('01nosuchrelease0000000000')).toEqual([]);
  });

  it('reads several releases at once, in the order asked, leaving out ids with no release', async () => {
    const store = await make();
    const made = [];
    for (let i = 0; i < 102; i++) made.push(await opened(store));
    const [a, b] = made;
    expect(await store.getReleases([b!.id, '01nosuchrelease0000000000', a!.id, b!.id])).toEqual([b, a, b]);
    expect(await store.getReleases([])).toEqual([]);
    // More than one batch of DynamoDB's 100 keys.
    expect((await store.getReleases(made.map((r) => r.id).reverse())).map((r) => r.id)).toEqual(made.map((r) => r.id).reverse());
  });

  it('lets exactly one of two creations of the same id win', async () => {
    const store = await make();
    const release = aRelease();
    const creations = await Promise.allSettled([
      store.createRelease(release, environmentsOf(release)),
      store.createRelease({ ...release, version: '9.9.9' }, environmentsOf(release)),
    ]);
    expect(creations.filter((c) => c.status === 'fulfilled')).toHaveLength(1);
    expect(creations.find((c) => c.status === 'rejected')?.reason).toBeInstanceOf(ConflictError);
  });

  it('moves the status only from the expected status, keeping the reason it was given', async () => {
    const store = await make();
    const release = await opened(store);
    const moved = await store.updateReleaseStatus(release.id, 'pending', 'distributing', '2026-01-01T00:01:00Z');
    expect(moved).toMatchObject({ status: 'distributing', updatedAt: '2026-01-01T00:01:00Z' });
    expect(moved.reason).toBeUndefined();
    const stale = store.updateReleaseStatus(release.id, 'pending', 'cancelled', '2026-01-01T00:02:00Z');
    await expect(stale).rejects.toThrow(/is distributing, not pending/);
    await expect(stale).rejects.toMatchObject({ details: { expected: 'pending', actual: 'distributing' } });
    const failed = await store.updateReleaseStatus(release.id, 'distributing', 'failed', 'now', 'host h1 failed');
    expect(failed).toMatchObject({ status: 'failed', reason: 'host h1 failed', config: release.config });
    expect(await store.getRelease(release.id)).toEqual(failed);
    await expect(store.updateReleaseStatus('01nosuchrelease0000000000', 'pending', 'failed', 'now')).rejects.toThrow(/does not exist/);
  });

  it('lets exactly one of two racing status moves from the same status win', async () => {
    const store = await make();
    const release = await opened(store);
    const moves = await Promise.allSettled([
      store.updateReleaseStatus(release.id, 'pending', 'cancelled', 't1', 'cancelled by bob'),
      store.updateReleaseStatus(release.id, 'pending', 'distributing', 't1'),
    ]);
    expect(moves.filter((m) => m.status === 'fulfilled')).toHaveLength(1);
    const winner = moves.find((m) => m.status === 'fulfilled')!.value;
    expect((await store.getRelease(release.id))?.status).toBe(winner.status);
  });

  it('lists newest first, pages with a cursor, and filters by app and environment', async () => {
    const store = await make();
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await opened(store, 'beta'));
    await opened(store, 'gamma');
    const newestFirst = made.map((r) => r.id).reverse();

    const page1 = await store.listReleases({ app: 'beta', limit: 2 });
    expect(page1.items.map((r) => r.id)).toEqual(newestFirst.slice(0, 2));
    const page2 = await store.listReleases({ app: 'beta', limit: 2, cursor: page1.nextCursor });
    expect(page2.items.map((r) => r.id)).toEqual(newestFirst.slice(2, 4));
    const page3 = await store.listReleases({ app: 'beta', limit: 2, cursor: page2.nextCursor });
    expect(page3.items.map((r) => r.id)).toEqual(newestFirst.slice(4));
    expect(page3.nextCursor).toBeUndefined();

    const byEnvironment = await store.listReleases({ app: 'beta', environment: 'production', limit: 3 });
    expect(byEnvironment.items.map((r) => r.id)).toEqual(newestFirst.slice(0, 3));
    expect(byEnvironment.items[0]?.config).toEqual(made.at(-1)?.config);
    expect((await store.listReleases({ app: 'beta', environment: 'qa', limit: 3 })).items).toEqual([]);

    const all = await store.listReleases({ limit: 100 });
    expect(all.items.map((r) => r.app)).toEqual(['gamma', 'beta', 'beta', 'beta', 'beta', 'beta']);
  });

  it('lists oldest first when asked, for retention', async () => {
    const store = await make();
    const made = [await opened(store), await opened(store), await opened(store)];
    const page1 = await store.listReleases({ oldestFirst: true, limit: 2 });
    expect(page1.items.map((r) => r.id)).toEqual(made.slice(0, 2).map((r) => r.id));
    const page2 = await store.listReleases({ oldestFirst: true, limit: 2, cursor: page1.nextCursor });
    expect(page2.items.map((r) => r.id)).toEqual([made[2]!.id]);
  });

  it('refuses a cursor from another listing or one that was tampered with', async () => {
    const store = await make();
    await opened(store, 'delta');
    await opened(store, 'delta');
    const page = await store.listReleases({ app: 'delta', limit: 1 });
    expect(page.nextCursor).toBeDefined();
    await expect(store.listReleases({ app: 'beta', limit: 1, cursor: page.nextCursor })).rejects.toThrow(ValidationError);
    const forged = Buffer.from(JSON.stringify({ pk: 'TOKEN#x', sk: 'TOKEN' })).toString('base64url');
    await expect(store.listReleases({ limit: 1, cursor: forged })).rejects.toThrow(/cursor/);
    await expect(store.listReleases({ limit: 1, cursor: '!!!' })).rejects.toThrow(/cursor/);
  });

  it('writes an environment state whole, and a listing by environment follows it', async () => {
    const store = await make();
    const release = await opened(store);
    const [production] = await store.getEnvironmentStates(release.id);
    await store.putEnvironmentState({ ...production!, status: 'distributing', startedAt: 't1' });
    await store.putEnvironmentState({ ...production!, status: 'failed', endedAt: 't2', failure: 'switch failed' });
    const states = await store.getEnvironmentStates(release.id);
    expect(states[0]).toEqual({ ...production, status: 'failed', endedAt: 't2', failure: 'switch failed' });
    expect(states[1]?.status).toBe('pending');
    expect((await store.listReleases({ app: 'shop', environment: 'production', limit: 5 })).items.map((r) => r.id)).toEqual([release.id]);
  });

  it('writes over an expected status only while the status is still that one', async () => {
    const store = await make();
    const release = await opened(store);
    const [production] = await store.getEnvironmentStates(release.id);
    await store.putEnvironmentState({ ...production!, status: 'distributing' }, 'pending');
    const stale = store.putEnvironmentState({ ...production!, status: 'switching' }, 'pending');
    await expect(stale).rejects.toBeInstanceOf(ConflictError);
    await expect(stale).rejects.toMatchObject({ details: { expected: 'pending', actual: 'distributing' } });
    expect((await store.getEnvironmentStates(release.id))[0]?.status).toBe('distributing');
    await expect(store.putEnvironmentState({ ...production!, environment: 'qa' }, 'pending')).rejects.toThrow(/has no environment qa/);
    expect((await store.getEnvironmentStates(release.id)).map((e) => e.environment)).toEqual(['production', 'staging']);
  });

  it('of two writers over the same status, exactly one lands: the stale one cannot move it back', async () => {
    const store = await make();
    const release = await opened(store);
    const [production] = await store.getEnvironmentStates(release.id);
    await store.putEnvironmentState({ ...production!, status: 'distributing' }, 'pending');
    const writes = await Promise.allSettled([
      store.putEnvironmentState({ ...production!, status: 'failed', endedAt: 't9' }, 'distributing'),
      store.putEnvironmentState({ ...production!, status: 'switching' }, 'distributing'),
    ]);
    expect(writes.map((w) => w.status).sort()).toEqual(['fulfilled', 'rejected']);
    const winner = writes[0]!.status === 'fulfilled' ? 'failed' : 'switching';
    expect((await store.getEnvironmentStates(release.id))[0]?.status).toBe(winner);
  });

  it('hands back copies: changing what it answered changes nothing stored', async () => {
    const store = await make();
    const release = await opened(store);
    const read = (await store.getRelease(release.id))!;
    read.status = 'failed';
    read.config.environments.pop();
    expect(await store.getRelease(release.id)).toEqual(release);
  });
});
