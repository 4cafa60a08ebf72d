import {
  AppConfig,
  ArtifactMismatchError,
  ArtifactMissingError,
  ConflictError,
  EnvironmentLockedError,
  IllegalTransitionError,
  NotFoundError,
  type Release,
  ValidationError,
} from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createTestSlipway } from '../../packages/core/src/testing/harness.ts';
import { shopConfigInput } from '../support/fixtures.ts';

/** The release service on fakes and a hand-moved clock: open, its checks, one release per environment, cancel. */

const shop = AppConfig.parse(shopConfigInput);
const queued = AppConfig.parse({ ...shopConfigInput, queue: true });
const deployer = { name: 'dev@example.com', role: 'deployer' as const };
const MINUTE = 60_000;

async function withShop(config = shop) {
  const t = createTestSlipway();
  await t.appWithArtifact(config);
  return t;
}

describe('opening a release', () => {
  it('records it pending with its environments, holds the first lock for 15 minutes and starts its workflow', async () => {
    const t = await withShop();
    const { id, status } = await t.open('shop', '1.2.0');
    expect(status).toBe('pending');
    const release = (await t.store.getRelease(id))!;
    expect(release).toMatchObject({ app: 'shop', version: '1.2.0', openedBy: 'dev@example.com', config: shop, artifact: { sha256: 'a'.repeat(64), size: 1024 } });
    expect((await t.store.getEnvironmentStates(id)).map((e) => [e.environment, e.order, e.status])).toEqual([
      ['production', 1, 'pending'],
      ['staging', 0, 'pending'],
    ]);
    expect(await t.store.getLock('shop', 'staging')).toEqual({
      app: 'shop',
      environment: 'staging',
      holder: id,
      acquiredAt: '2026-01-01T00:00:00.000Z',
      leaseUntil: '2026-01-01T00:15:00.000Z',
    });
    expect(t.workflow.started.get(id)).toMatchObject({ releaseId: id, app: 'shop' });
    expect((await t.store.listEvents(id)).map((e) => e.type)).toEqual(['release.opened', 'workflow.started']);
  });

  it('refuses a request that does not parse, naming the field', async () => {
    const t = await withShop();
    const refused = t.slipway.releases.open({ app: 'shop', version: '1.2.0' }, deployer);
    await expect(refused).rejects.toBeInstanceOf(ValidationError);
    await expect(refused).rejects.toMatchObject({ details: [expect.objectContaining({ field: expect.stringContaining('artifact') })] });
    expect((await t.store.listReleases({ limit: 10 })).items).toEqual([]);
  });

  it('refuses an unknown app, an artifact never uploaded, and one whose bytes do not match', async () => {
    const t = await withShop();
    await expect(t.open('nope', '1.0.0')).rejects.toBeInstanceOf(NotFoundError);
    await expect(t.open('shop', '1.0.0', 'b'.repeat(64))).rejects.toBeInstanceOf(ArtifactMissingError);
    t.objects.store(`artifacts/shop/${'c'.repeat(64)}.tar.gz`, 'd'.repeat(64), 10);
    await expect(t.open('shop', '1.0.0', 'c'.repeat(64))).rejects.toBeInstanceOf(ArtifactMismatchError);
    expect((await t.store.listReleases({ limit: 10 })).items).toEqual([]);
    expect(t.workflow.started.size).toBe(0);
  });

  it('opens exactly one release per environment: a second waits for the lock or its lease', async () => {
    const t = await withShop();
    const first = await t.open('shop', '1.0.0');
    const refused = t.open('shop', '1.0.1');
    await expect(refused).rejects.toBeInstanceOf(EnvironmentLockedError);
    await expect(refused).rejects.toMatchObject({ holder: first.id, leaseUntil: '2026-01-01T00:15:00.000Z' });
    t.clock.advance(15 * MINUTE);
    await expect(t.open('shop', '1.0.1')).rejects.toBeInstanceOf(EnvironmentLockedError);
    // A release whose workflow never renewed its lease (it crashed) stops blocking after 15 minutes.
    t.clock.advance(1);
    const second = await t.open('shop', '1.0.1');
    expect((await t.store.getLock('shop', 'staging'))?.holder).toBe(second.id);
  });

  it('of two opens at the same moment, exactly one starts', async () => {
    const t = await withShop();
    const opens = await Promise.allSettled([t.open('shop', '1.0.0'), t.open('shop', '1.0.1')]);
    expect(opens.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    expect((opens.find((o) => o.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(EnvironmentLockedError);
    expect(t.workflow.started.size).toBe(1);
  });

  it('for an app that queues, opens every release and leaves the lock to the workflow', async () => {
    const t = await withShop(queued);
    await t.open('shop', '1.0.0');
    await t.open('shop', '1.0.1');
    expect(t.workflow.started.size).toBe(2);
    expect(await t.store.getLock('shop', 'staging')).toBeUndefined();
  });

  it('starts the workflow of a release left pending without one, once it is old enough', async () => {
    const t = await withShop();
    const { id } = await t.open('shop', '1.0.0');
    await t.workflow.forget(id);
    expect(await t.slipway.releases.startOrphans()).toEqual([]);
    t.clock.advance(31_000);
    expect(await t.slipway.releases.startOrphans()).toEqual([id]);
    expect(await t.slipway.releases.startOrphans()).toEqual([]);
    expect((await t.store.listEvents(id)).at(-1)).toMatchObject({ type: 'workflow.started', data: { recovered: true } });
  });
});

describe('cancelling a release', () => {
  async function releaseIn(status: Release['status']) {
    const t = await withShop();
    const { id } = await t.open('shop', '1.0.0');
    const path: Record<string, Release['status'][]> = {
      pending: [],
      distributing: ['distributing'],
      awaiting_approval: ['distributing', 'awaiting_approval'],
      switching: ['distributing', 'switching'],
      succeeded: ['distributing', 'switching', 'succeeded'],
      failed: ['distributing', 'failed'],
    };
    let from: Release['status'] = 'pending';
    for (const to of path[status]!) {
      await t.store.updateReleaseStatus(id, from, to, t.clock.now().toISOString());
      from = to;
    }
    return { t, id };
  }

  it('while pending: cancelled, and its workflow stopped outright (nothing reached a host)', async () => {
    const { t, id } = await releaseIn('pending');
    t.clock.advance(MINUTE);
    expect(await t.slipway.releases.cancel(id, deployer)).toEqual({ id, status: 'cancelled' });
    expect(await t.store.getRelease(id)).toMatchObject({ status: 'cancelled', reason: 'cancelled by dev@example.com', updatedAt: '2026-01-01T00:01:00.000Z' });
    expect(t.workflow.stopped).toEqual([{ releaseId: id, cause: 'cancelled by dev@example.com', kind: 'release' }]);
    expect((await t.store.listEvents(id)).at(-1)).toMatchObject({ type: 'release.cancelled', actor: 'dev@example.com', data: { from: 'pending' } });
  });

  it.each(['distributing', 'switching'] as const)('while %s: cancelled, and the workflow left to put hosts back', async (status) => {
    const { t, id } = await releaseIn(status);
    expect(await t.slipway.releases.cancel(id, deployer)).toEqual({ id, status: 'cancelled' });
    expect(t.workflow.stopped).toEqual([]);
  });

  it('while awaiting approval: cancelled, and its open gate closes so the workflow moves on', async () => {
    const { t, id } = await releaseIn('distributing');
    await t.stages.prepare({ releaseId: id, app: 'shop' });
    await t.stages.awaitApproval({ taskToken: 'gate', releaseId: id, environment: 'production' });
    expect((await t.store.getRelease(id))?.status).toBe('awaiting_approval');
    await t.slipway.releases.cancel(id, deployer);
    expect(await t.approvalStore.getRequest(id, 'production')).toMatchObject({ status: 'cancelled' });
    expect(t.workflow.outcomeOf('gate')).toEqual({ token: 'gate', kind: 'failure', error: 'ReleaseEndedError', cause: 'cancelled by dev@example.com' });
  });

  it('refuses a release live everywhere, one that ended, one failing, and one that does not exist', async () => {
    const succeeded = await releaseIn('succeeded');
    await expect(succeeded.t.slipway.releases.cancel(succeeded.id, deployer)).rejects.toThrow(/roll an environment back instead/);
    const failed = await releaseIn('failed');
    await expect(failed.t.slipway.releases.cancel(failed.id, deployer)).rejects.toBeInstanceOf(IllegalTransitionError);
    const failing = await releaseIn('switching');
    const [production] = await failing.t.store.getEnvironmentStates(failing.id);
    await failing.t.store.putEnvironmentState({ ...production!, status: 'switching', failure: 'switch of batch 2 failed' });
    await expect(failing.t.slipway.releases.cancel(failing.id, deployer)).rejects.toThrow(ConflictError);
    await expect(failing.t.slipway.releases.cancel(failing.id, deployer)).rejects.toThrow(/putting its hosts back/);
    await expect(failing.t.slipway.releases.cancel('01nosuchrelease00000000000', deployer)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('looks again when the workflow moved the release between its read and its write', async () => {
    const { t, id } = await releaseIn('distributing');
    const update = t.store.updateReleaseStatus.bind(t.store);
    let raced = false;
    t.store.updateReleaseStatus = async (...args) => {
      if (!raced) {
        raced = true;
        await update(id, 'distributing', 'switching', 'meanwhile');
      }
      return update(...args);
    };
    expect(await t.slipway.releases.cancel(id, deployer)).toEqual({ id, status: 'cancelled' });
    expect((await t.store.listEvents(id)).at(-1)).toMatchObject({ type: 'release.cancelled', data: { from: 'switching' } });
  });
});

describe('rolling an environment back', () => {
  it('goes back to what was live before, on its own record holding the lock; refuses when nothing is live', async () => {
    const t = await withShop();
    await expect(t.slipway.releases.rollback('shop', 'staging', {}, deployer)).rejects.toThrow(/nothing is live on staging/);
    const old = await t.open('shop', '1.0.0');
    await t.store.releaseLock('shop', 'staging', old.id);
    await t.store.putEnvironmentLive({
      app: 'shop',
      environment: 'staging',
      liveRelease: { id: 'current', version: '1.1.0', since: 't' },
      previousRelease: { id: old.id, version: '1.0.0' },
      retained: [{ id: 'current', version: '1.1.0' }, { id: old.id, version: '1.0.0' }],
    });
    const { id } = await t.slipway.releases.rollback('shop', 'staging', {}, deployer);
    expect(await t.store.getRelease(id)).toMatchObject({ version: '1.0.0', rollback: { environment: 'staging', target: old.id, from: { id: 'current' } } });
    expect((await t.store.getLock('shop', 'staging'))?.holder).toBe(id);
    expect(t.workflow.started.get(id)?.kind).toBe('rollback');
  });
});
