import { AppConfig } from '@slipway/core';
import { ReleaseView } from '../../packages/core/src/api/schemas.ts';
import { describe, expect, it } from 'vitest';
import { createTestSlipway } from '../../packages/core/src/testing/harness.ts';

/**
 * What GET /v1/releases/{id} tells a page that draws the release as a graph: every planned batch
 * from the start (before any batch runs), and each bake's end for its countdown.
 */
const hosts = Array.from({ length: 5 }, (_, i) => `web-${i + 1}`);

describe('the release view', () => {
  it('carries the planned batches once Prepare has run, before any batch switches, and each bake as it starts', async () => {
    const t = createTestSlipway();
    await t.appWithArtifact(
      AppConfig.parse({
        name: 'shop',
        deployRoot: '/srv/shop',
        environments: [{ name: 'production', targets: { hosts }, bakeSeconds: 60, strategy: { type: 'rolling', batchSize: 2 } }],
      }),
    );
    const { id } = await t.open('shop', '1.0.0');
    expect((await t.slipway.releases.view(id)).plan).toBeUndefined();

    await t.stages.prepare({ releaseId: id, app: 'shop' });
    const planned = await t.slipway.releases.view(id);
    expect(planned.plan).toEqual([{ name: 'production', approval: false, bakeSeconds: 60, batches: [['web-1', 'web-2'], ['web-3', 'web-4'], ['web-5']] }]);
    expect(planned.bakes).toBeUndefined();
    expect(ReleaseView.safeParse(planned).error?.issues ?? []).toEqual([]);

    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'production' });
    await t.stages.distribute({ taskToken: 'distribute', releaseId: id, environment: 'production' });
    await t.finish('distribute');
    await t.stages.switchBatch({ taskToken: 'switch-0', releaseId: id, environment: 'production', batchIndex: 0 });
    await t.finish('switch');
    const startedAt = t.clock.now();
    expect(await t.stages.watch({ releaseId: id, environment: 'production', batchIndex: 0 })).toMatchObject({ next: 'wait' });
    const baking = await t.slipway.releases.view(id);
    expect(baking.bakes).toEqual([
      { environment: 'production', batch: 1, startedAt: startedAt.toISOString(), until: new Date(startedAt.getTime() + 60_000).toISOString() },
    ]);
    expect(ReleaseView.safeParse(baking).error?.issues ?? []).toEqual([]);
  });
});
