import { createDynamoArtifactRecords, createTableAccess } from '@slipway/aws';
import type { ArtifactRecord, ArtifactRecordStore } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createMemoryArtifactRecords } from '../../packages/core/src/testing/memory-release-store.ts';
import { implementations } from './implementations.ts';

const stores = implementations<ArtifactRecordStore>('artifacts', createMemoryArtifactRecords, (client, table) =>
  createDynamoArtifactRecords(createTableAccess(client, table)),
);

const record = (app: string, char: string, overrides: Partial<ArtifactRecord> = {}): ArtifactRecord => ({
  app,
  sha256: char.repeat(64),
  key: `artifacts/${app}/${char.repeat(64)}.tar.gz`,
  size: 3,
  requestedBy: 'alice',
  requestedAt: 't',
  ...overrides,
});

describe.each(stores)('artifact records contract: %s', (_name, make) => {
  it('round-trips records, replacing one with the same app and sha256', async () => {
    const store = await make();
    await store.putArtifactRecord(record('shop', 'b'));
    expect(await store.getArtifactRecord('shop', 'b'.repeat(64))).toEqual(record('shop', 'b'));
    const verified = record('shop', 'b', { verified: { etag: '"e1"', at: 't2' } });
    await store.putArtifactRecord(verified);
    expect(await store.getArtifactRecord('shop', 'b'.repeat(64))).toEqual(verified);
    expect(await store.getArtifactRecord('shop', 'c'.repeat(64))).toBeUndefined();
    expect(await store.getArtifactRecord('web', 'b'.repeat(64))).toBeUndefined();
  });

  it('lists an app\'s records by sha256 and deletes them one by one', async () => {
    const store = await make();
    for (const char of ['e', 'c', 'd']) await store.putArtifactRecord(record('shop', char));
    await store.putArtifactRecord(record('web', 'c'));
    expect((await store.listArtifactRecords('shop')).map((r) => r.sha256[0])).toEqual(['c', 'd', 'e']);
    await store.deleteArtifactRecord('shop', 'd'.repeat(64));
    await store.deleteArtifactRecord('shop', 'f'.repeat(64));
    expect((await store.listArtifactRecords('shop')).map((r) => r.sha256[0])).toEqual(['c', 'e']);
    expect(await store.listArtifactRecords('web')).toEqual([record('web', 'c')]);
    expect(await store.listArtifactRecords('none')).toEqual([]);
  });
});
