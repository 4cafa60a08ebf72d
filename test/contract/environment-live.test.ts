import { createDynamoEnvironmentLive, createTableAccess } from '@slipway/aws';
import type { EnvironmentLive, EnvironmentLiveStore } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createMemoryEnvironmentLive } from '../../packages/core/src/testing/memory-release-store.ts';
import { implementations } from './implementations.ts';

const stores = implementations<EnvironmentLiveStore>('live', createMemoryEnvironmentLive, (client, table) =>
  createDynamoEnvironmentLive(createTableAccess(client, table)),
);

const live = (environment: string, id: string, retained: string[]): EnvironmentLive => ({
  app: 'shop',
  environment,
  liveRelease: { id, version: id, since: 't' },
  retained: retained.map((r) => ({ id: r, version: r })),
});

describe.each(stores)('environment live contract: %s', (_name, make) => {
  it('round-trips what is live per environment, written whole each time', async () => {
    const store = await make();
    expect(await store.getEnvironmentLive('shop', 'staging')).toBeUndefined();
    await store.putEnvironmentLive(live('staging', 'r2', ['r2', 'r1']));
    await store.putEnvironmentLive(live('production', 'r1', ['r1']));
    expect(await store.getEnvironmentLive('shop', 'staging')).toEqual(live('staging', 'r2', ['r2', 'r1']));
    const next = { ...live('staging', 'r3', ['r3', 'r2']), previousRelease: { id: 'r2', version: 'r2' } };
    await store.putEnvironmentLive(next);
    expect(await store.getEnvironmentLive('shop', 'staging')).toEqual(next);
    expect(await store.getEnvironmentLive('shop', 'production')).toEqual(live('production', 'r1', ['r1']));
    expect(await store.getEnvironmentLive('web', 'staging')).toBeUndefined();
  });
});
