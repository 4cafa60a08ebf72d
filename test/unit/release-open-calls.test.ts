import { AppConfig } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createTestSlipway } from '../../packages/core/src/testing/harness.ts';
import { shopConfigInput } from '../support/fixtures.ts';

/**
 * What an open and a read cost in store calls (each one a round trip on DynamoDB), and that an open
 * failing at any one of them leaves no half release: either nothing, or the release whole.
 */

const shop = AppConfig.parse(shopConfigInput);

/** The store as the services see it: every method call is logged, and the one numbered `failAt` throws. */
function watched() {
  const calls: string[] = [];
  let failAt: number | undefined;
  const wrap = <Store extends object>(store: Store): Store =>
    new Proxy(store, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.push(String(name));
          if (calls.length === failAt) return Promise.reject(new Error(`store call ${failAt} (${String(name)}) failed`));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  /** From now on: calls counted afresh, and the `n`th fails. */
  const arm = (n?: number) => {
    calls.length = 0;
    failAt = n;
  };
  return { calls, wrap, arm };
}

async function shopWith(failAt?: number) {
  const seen = watched();
  const t = createTestSlipway({ storeSeenBy: seen.wrap });
  await t.appWithArtifact(shop);
  // The first open verifies (hashes) the artifact once; the opens measured here find it verified.
  await t.slipway.artifacts.verify('shop', 'a'.repeat(64));
  seen.arm(failAt);
  return { t, calls: seen.calls };
}

describe('store calls of an open and a read', () => {
  it('opens with one read of the app, the artifact and the other locks each, the lock, one write of the release whole and the start event', async () => {
    const { t, calls } = await shopWith();
    const { id } = await t.open('shop', '1.0.0');
    expect([...calls].sort()).toEqual(['acquireLock', 'appendEvent', 'getApp', 'getArtifactRecord', 'getLocks', 'openRelease'].sort());
    expect((await t.store.listEvents(id)).map((e) => e.type)).toEqual(['release.opened', 'workflow.started']);
  });

  it('reads a release with one read of its partition, its approval gates and decisions included', async () => {
    const seen = watched();
    const asked = watched();
    const t = createTestSlipway({ storeSeenBy: seen.wrap, approvalStoreSeenBy: asked.wrap });
    await t.appWithArtifact(shop);
    const calls = seen.calls;
    const { id } = await t.open('shop', '1.0.0');
    await t.approvalStore.createRequest({
      releaseId: id,
      environment: 'production',
      approvers: ['lead@example.com'],
      required: 1,
      allowSelfApproval: false,
      status: 'pending',
      requestedAt: '2026-01-01T00:00:00.000Z',
      expiresAt: '2026-01-02T00:00:00.000Z',
    });
    await t.approvalStore.recordDecision({ releaseId: id, environment: 'production', approver: 'lead@example.com', decision: 'approve', reason: 'ok', at: '2026-01-01T00:01:00.000Z', via: 'link' });
    // The services never ask the approval store: the gates come with the release's partition (on DynamoDB, in its one Query).
    seen.arm();
    asked.arm();
    const view = await t.slipway.releases.view(id);
    expect(calls).toEqual(['readWholeRelease']);
    expect(asked.calls).toEqual([]);
    expect(view.approvals.map((gate) => [gate.environment, gate.status, gate.decisions.map((d) => `${d.approver} ${d.decision}`)])).toEqual([
      ['production', 'pending', ['lead@example.com approve']],
    ]);
    expect(view.environments.map((e) => e.environment)).toEqual(['staging', 'production']);
    expect(view.events.map((e) => e.type)).toEqual(['release.opened', 'workflow.started']);
    calls.length = 0;
    expect((await t.slipway.releases.history(id)).status).toBe('RUNNING');
    expect(calls, 'the history needs only the record, for which state machine runs it').toEqual(['getRelease']);
  });

  it('reads where a release waits in line with one read of the releases ahead of it, however many', async () => {
    const seen = watched();
    const t = createTestSlipway({ storeSeenBy: seen.wrap });
    await t.appWithArtifact(AppConfig.parse({ ...shopConfigInput, queue: true }));
    const line = [];
    for (const version of ['1', '2', '3', '4']) {
      const { id } = await t.open('shop', version);
      await t.store.joinQueue({ app: 'shop', environment: 'staging', releaseId: id, taskToken: `token-${id}`, since: '2026-01-01T00:00:00.000Z' });
      line.push(id);
    }
    await t.store.updateReleaseStatus(line[0]!, 'pending', 'cancelled', '2026-01-01T00:01:00.000Z');
    seen.arm();
    const view = await t.slipway.releases.view(line[3]!);
    expect(view).toMatchObject({ queuePosition: 3, queuedFor: 'staging' });
    expect(seen.calls.filter((call) => call.startsWith('getRelease'))).toEqual(['getReleases']);
  });
});

describe('an open failing at any store call', () => {
  it('leaves no release, or the release whole with its environments and its opened event', async () => {
    const { t: reference, calls } = await shopWith();
    await reference.open('shop', '1.0.0');
    const total = calls.length;
    expect(total).toBeGreaterThan(0);
    for (let failAt = 1; failAt <= total + 1; failAt++) {
      const { t } = await shopWith(failAt);
      const outcome = await t.open('shop', '1.0.0').then(
        () => 'opened',
        (error: Error) => error.message,
      );
      const { items } = await t.store.listReleases({ limit: 10 });
      if (outcome === 'opened') expect(items, `failing call ${failAt}`).toHaveLength(1);
      for (const release of items) {
        // Whatever exists is whole: no release without its environments or the event that says who opened it.
        expect((await t.store.getEnvironmentStates(release.id)).length, `failing call ${failAt}`).toBe(2);
        expect((await t.store.listEvents(release.id)).map((e) => e.type), `failing call ${failAt}`).toContain('release.opened');
      }
    }
  });
});
