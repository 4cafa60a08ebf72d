import { createDynamoAppStore, createTableAccess } from '@slipway/aws';
import { AppConfig, type AppStore, ConflictError } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createMemoryAppStore } from '../../packages/core/src/testing/memory-release-store.ts';
import { shopConfig } from '../support/fixtures.ts';
import { implementations } from './implementations.ts';

const stores = implementations<AppStore>('apps', createMemoryAppStore, (client, table) => createDynamoAppStore(createTableAccess(client, table)));

describe.each(stores)('app store contract: %s', (_name, make) => {
  it('stores config with a revision that counts writes and refuses a stale write', async () => {
    const store = await make();
    const first = await store.putApp(shopConfig, 'admin', '2026-01-01T00:00:00Z');
    expect(first).toEqual({ config: shopConfig, revision: 1, updatedAt: '2026-01-01T00:00:00Z', updatedBy: 'admin' });
    const second = await store.putApp({ ...shopConfig, keepReleases: 7 }, 'bob', '2026-01-02T00:00:00Z', 1);
    expect(second).toMatchObject({ revision: 2, updatedBy: 'bob' });
    await expect(store.putApp(shopConfig, 'carol', '2026-01-03T00:00:00Z', 1)).rejects.toThrow(ConflictError);
    const stored = await store.getApp('shop');
    expect(stored?.config.keepReleases).toBe(7);
    expect(AppConfig.parse(stored?.config)).toEqual(stored?.config);
    expect(await store.getApp('nope')).toBeUndefined();
  });

  it('creates with expected revision 0 only when nothing is there', async () => {
    const store = await make();
    const fresh = { ...shopConfig, name: 'fresh' };
    await store.putApp(fresh, 'admin', '2026-01-01T00:00:00Z', 0);
    await expect(store.putApp(fresh, 'admin', '2026-01-01T00:00:00Z', 0)).rejects.toThrow(ConflictError);
    expect((await store.getApp('fresh'))?.revision).toBe(1);
  });

  it('writes without an expected revision whatever is there', async () => {
    const store = await make();
    await store.putApp(shopConfig, 'admin', 't1');
    expect(await store.putApp(shopConfig, 'admin', 't2')).toMatchObject({ revision: 2, updatedAt: 't2' });
  });

  it('lets exactly one of two writers with the same expected revision win', async () => {
    const store = await make();
    await store.putApp(shopConfig, 'admin', 't1');
    const writes = await Promise.allSettled([
      store.putApp({ ...shopConfig, keepReleases: 2 }, 'bob', 't2', 1),
      store.putApp({ ...shopConfig, keepReleases: 3 }, 'carol', 't2', 1),
    ]);
    expect(writes.filter((w) => w.status === 'fulfilled')).toHaveLength(1);
    expect(writes.find((w) => w.status === 'rejected')?.reason).toBeInstanceOf(ConflictError);
    expect((await store.getApp('shop'))?.revision).toBe(2);
  });

  it('lists every app by name', async () => {
    const store = await make();
    for (const name of ['web', 'api', 'shop']) await store.putApp({ ...shopConfig, name }, 'admin', 't');
    await store.putApp({ ...shopConfig, name: 'api' }, 'admin', 't2');
    expect(await store.listApps()).toEqual(['api', 'shop', 'web']);
  });
});
