import { createDynamoHostInventory, createTableAccess } from '@slipway/aws';
import type { HostInventoryStore, HostRecord } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createMemoryHostInventory } from '../../packages/core/src/testing/memory-release-store.ts';
import { implementations } from './implementations.ts';

const stores = implementations<HostInventoryStore>('hosts', createMemoryHostInventory, (client, table) =>
  createDynamoHostInventory(createTableAccess(client, table)),
);

const record = (environment: string, host: string, current: string | null, extra: Partial<HostRecord> = {}): HostRecord => ({
  app: 'shop',
  environment,
  host,
  current: current ? { releaseId: current, version: `v-${current}` } : null,
  retained: current ? [current] : [],
  checkedAt: '2026-01-01T00:00:00.000Z',
  source: 'scan',
  ...extra,
});

describe.each(stores)('host inventory contract: %s', (_name, make) => {
  it('keeps one record per host of an environment, written whole, listed in host order', async () => {
    const store = await make();
    expect(await store.listHostRecords('shop', 'production')).toEqual([]);
    await store.putHostRecords([record('production', 'web-2', 'r1'), record('production', 'web-1', null, { unreachable: 'SSM PingStatus ConnectionLost' })]);
    await store.putHostRecords([record('staging', 'web-1', 'r2')]);
    expect(await store.listHostRecords('shop', 'production')).toEqual([
      record('production', 'web-1', null, { unreachable: 'SSM PingStatus ConnectionLost' }),
      record('production', 'web-2', 'r1'),
    ]);
    // Written whole: the host answered this time, so it is no longer unreachable.
    await store.putHostRecords([record('production', 'web-1', 'r2', { source: 'switch' })]);
    expect((await store.listHostRecords('shop', 'production'))[0]).toEqual(record('production', 'web-1', 'r2', { source: 'switch' }));
    expect(await store.listHostRecords('shop', 'staging')).toEqual([record('staging', 'web-1', 'r2')]);
    expect(await store.listHostRecords('web', 'production')).toEqual([]);
  });

  it('takes many hosts at once', async () => {
    const store = await make();
    const hosts = Array.from({ length: 60 }, (_, i) => record('production', `web-${String(i).padStart(3, '0')}`, 'r1'));
    await store.putHostRecords(hosts);
    expect(await store.listHostRecords('shop', 'production')).toEqual(hosts);
  });
});
