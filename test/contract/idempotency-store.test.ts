import { createDynamoIdempotencyStore, createTableAccess } from '@slipway/aws';
import type { IdempotencyStore } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createMemoryIdempotencyStore } from '../../packages/core/src/testing/memory-release-store.ts';
import { at, implementations } from './implementations.ts';

const stores = implementations<IdempotencyStore>('idempotency', createMemoryIdempotencyStore, (client, table) =>
  createDynamoIdempotencyStore(createTableAccess(client, table)),
);

const claim = (key: string, requestHash = 'body-a', inProgressUntil = at(60), expiresAt = at(86_400)) => ({
  key,
  requestHash,
  inProgressUntil,
  expiresAt,
});

describe.each(stores)('idempotency store contract: %s', (_name, make) => {
  it('claims a key once; a second claim is answered the record in progress', async () => {
    const store = await make();
    expect(await store.claimIdempotencyKey(claim('k1'), at(0))).toEqual({ claimed: true });
    expect(await store.claimIdempotencyKey(claim('k1', 'body-b'), at(1))).toEqual({
      claimed: false,
      record: { key: 'k1', requestHash: 'body-a', status: 'in_progress', inProgressUntil: at(60), expiresAt: at(86_400) },
    });
    expect(await store.claimIdempotencyKey(claim('k2'), at(1))).toEqual({ claimed: true });
  });

  it('answers the completed record with its response to every later claim until it expires', async () => {
    const store = await make();
    await store.claimIdempotencyKey(claim('k1'), at(0));
    const response = { status: 202, body: { id: 'r1', status: 'pending' }, location: '/v1/releases/r1' };
    await store.completeIdempotencyKey('k1', response, at(86_400));
    // Long after the claim's in-progress window, a completed record still holds.
    const again = await store.claimIdempotencyKey(claim('k1'), at(3600));
    expect(again).toEqual({
      claimed: false,
      record: { key: 'k1', requestHash: 'body-a', status: 'completed', inProgressUntil: at(60), expiresAt: at(86_400), response },
    });
    // Expired: the key is free again.
    expect(await store.claimIdempotencyKey(claim('k1', 'body-b', at(86_500), at(200_000)), at(86_401))).toEqual({ claimed: true });
  });

  it('lets a claim abandoned in progress be taken over after its window, not before', async () => {
    const store = await make();
    await store.claimIdempotencyKey(claim('k1'), at(0));
    expect((await store.claimIdempotencyKey(claim('k1'), at(60))).claimed).toBe(false);
    expect(await store.claimIdempotencyKey(claim('k1', 'body-a', at(120)), at(61))).toEqual({ claimed: true });
  });

  it('forgets a released claim, so a retry claims it; completing a released claim changes nothing', async () => {
    const store = await make();
    await store.claimIdempotencyKey(claim('k1'), at(0));
    await store.releaseIdempotencyKey('k1');
    await store.completeIdempotencyKey('k1', { status: 202, body: {} }, at(86_400));
    expect(await store.claimIdempotencyKey(claim('k1'), at(1))).toEqual({ claimed: true });
    await store.releaseIdempotencyKey('never-claimed');
  });
});
