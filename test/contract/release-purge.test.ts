import { createDynamoReleaseStore } from '@slipway/aws';
import type { ReleaseStore } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createMemoryReleaseStore } from '../../packages/core/src/testing/memory-release-store.ts';
import { aRelease, at, environmentsOf, implementations } from './implementations.ts';

/** Deleting a release reaches into every port, so this suite runs on the whole composed store. */
const stores = implementations<ReleaseStore>('purge', createMemoryReleaseStore, createDynamoReleaseStore);

describe.each(stores)('release purge contract: %s', (_name, make) => {
  async function recorded(store: ReleaseStore) {
    const release = aRelease();
    await store.createRelease(release, environmentsOf(release));
    await store.appendEvent({ releaseId: release.id, id: 'e1', at: at(0), type: 'release.opened', actor: 'alice' });
    await store.savePlan({ releaseId: release.id, app: 'shop', environments: [{ name: 'staging', approval: false, bakeSeconds: 0, batches: [['h1']] }] });
    await store.ensureHostStates(release.id, 'staging', ['h1'], at(0));
    await store.recordHostOutcomes(release.id, 'staging', 'distribute', [{ host: 'h1', output: { exitCode: 0, stdout: '', stderr: '', startedAt: at(0), endedAt: at(1) } }], at(1));
    await store.startStep({
      releaseId: release.id,
      key: 'distribute#staging',
      kind: 'distribute',
      environment: 'staging',
      hosts: ['h1'],
      commandId: `cmd-${release.id}`,
      taskToken: 't',
      state: 'running',
      createdAt: at(0),
      updatedAt: at(0),
    });
    return release;
  }

  it('deletes a release and everything recorded under it, and nothing of another release', async () => {
    const store = await make();
    const [gone, kept] = [await recorded(store), await recorded(store)];
    await store.deleteRelease(gone.id);
    expect(await store.getRelease(gone.id)).toBeUndefined();
    expect(await store.getEnvironmentStates(gone.id)).toEqual([]);
    expect(await store.listEvents(gone.id)).toEqual([]);
    expect(await store.getPlan(gone.id)).toBeUndefined();
    expect(await store.getHostStates(gone.id)).toEqual([]);
    expect(await store.listSteps(gone.id)).toEqual([]);
    expect(await store.getStepByCommand(`cmd-${gone.id}`)).toBeUndefined();
    expect((await store.listRunningCommandSteps(10)).map((s) => s.releaseId)).toEqual([kept.id]);
    expect((await store.listReleases({ limit: 10 })).items.map((r) => r.id)).toEqual([kept.id]);

    expect(await store.getRelease(kept.id)).toEqual(kept);
    expect(await store.listEvents(kept.id)).toHaveLength(1);
    expect(await store.getStepByCommand(`cmd-${kept.id}`)).toBeDefined();
  });

  it('deleting a release that is not there changes nothing', async () => {
    const store = await make();
    const kept = await recorded(store);
    await store.deleteRelease('01nosuchrelease0000000000');
    expect(await store.getRelease(kept.id)).toEqual(kept);
  });
});
