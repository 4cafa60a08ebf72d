import { createDynamoTokenStore } from '@slipway/aws';
import { ConflictError, type StoredToken, type TokenStore } from '@slipway/core';
import { ensureTable } from '@slipway/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryTokenStore } from '../../packages/core/src/testing/memory-stores.ts';
import { localDynamo } from '../support/stand-ins.ts';

let dynamo: Awaited<ReturnType<typeof localDynamo>>;
beforeAll(async () => {
  dynamo = await localDynamo();
});
afterAll(async () => dynamo.close());

let tables = 0;
const implementations: [string, () => Promise<TokenStore>][] = [
  ['in-memory fake', async () => createMemoryTokenStore()],
  [
    'DynamoDB',
    async () => {
      tables += 1;
      const name = `token-contract-${tables}`;
      await ensureTable(dynamo.client, name);
      return createDynamoTokenStore(dynamo.client, name);
    },
  ],
];

const T0 = '2026-01-01T00:00:00.000Z';
const token = (name: string, overrides: Partial<StoredToken> = {}): StoredToken => ({
  name,
  role: 'deployer',
  createdAt: T0,
  createdBy: 'admin',
  ...overrides,
});
const hash = (n: number) => n.toString(16).padStart(64, '0');

describe.each(implementations)('token store contract: %s', (_name, make) => {
  it('stores a token under its hash and lists it by name', async () => {
    const store = await make();
    await store.createToken(hash(1), token('bob', { expiresAt: '2026-02-01T00:00:00.000Z' }));
    await store.createToken(hash(2), token('alice', { role: 'viewer' }));
    expect(await store.getToken(hash(1))).toEqual(token('bob', { expiresAt: '2026-02-01T00:00:00.000Z' }));
    expect(await store.getToken(hash(3))).toBeUndefined();
    expect((await store.listTokens()).map((t) => [t.name, t.role])).toEqual([
      ['alice', 'viewer'],
      ['bob', 'deployer'],
    ]);
  });

  it('refuses a second live token with the same name, and takes the same creation again as a no-op', async () => {
    const store = await make();
    await store.createToken(hash(1), token('bob'));
    await expect(store.createToken(hash(2), token('bob', { role: 'admin' }))).rejects.toBeInstanceOf(ConflictError);
    await store.createToken(hash(1), token('bob'));
    expect(await store.getToken(hash(2))).toBeUndefined();
    expect(await store.listTokens()).toEqual([token('bob')]);
  });

  it('revokes by name: the record stays, marked, the name is free, the list forgets it', async () => {
    const store = await make();
    await store.createToken(hash(1), token('bob'));
    expect(await store.revokeToken('bob', '2026-01-02T00:00:00.000Z')).toMatchObject({ name: 'bob', revokedAt: '2026-01-02T00:00:00.000Z' });
    expect(await store.getToken(hash(1))).toMatchObject({ revokedAt: '2026-01-02T00:00:00.000Z' });
    expect(await store.listTokens()).toEqual([]);
    expect(await store.revokeToken('bob', '2026-01-03T00:00:00.000Z')).toBeUndefined();
    expect(await store.revokeToken('nobody', '2026-01-03T00:00:00.000Z')).toBeUndefined();
    await store.createToken(hash(2), token('bob', { role: 'viewer' }));
    expect(await store.listTokens()).toEqual([token('bob', { role: 'viewer' })]);
    // A revoked secret is never stored again, under any name.
    await expect(store.createToken(hash(1), token('carol'))).rejects.toBeInstanceOf(ConflictError);
    expect(await store.getToken(hash(1))).toMatchObject({ name: 'bob', revokedAt: '2026-01-02T00:00:00.000Z' });
  });

  it('with replace, revokes the holder of the name and passes the name on', async () => {
    const store = await make();
    await store.createToken(hash(1), token('admin', { role: 'admin', createdBy: 'bootstrap' }));
    await store.createToken(hash(2), token('admin', { role: 'admin', createdBy: 'bootstrap', createdAt: '2026-01-05T00:00:00.000Z' }), { replace: true });
    expect(await store.getToken(hash(1))).toMatchObject({ revokedAt: '2026-01-05T00:00:00.000Z' });
    expect(await store.listTokens()).toEqual([token('admin', { role: 'admin', createdBy: 'bootstrap', createdAt: '2026-01-05T00:00:00.000Z' })]);
  });

  it('touches lastUsedAt only when it is older than the bound, and never on a revoked token', async () => {
    const store = await make();
    await store.createToken(hash(1), token('bob'));
    await store.touchToken(hash(1), '2026-01-01T00:00:10.000Z', '2026-01-01T00:00:00.000Z');
    expect((await store.getToken(hash(1)))?.lastUsedAt).toBe('2026-01-01T00:00:10.000Z');
    await store.touchToken(hash(1), '2026-01-01T00:00:30.000Z', '2026-01-01T00:00:05.000Z');
    expect((await store.getToken(hash(1)))?.lastUsedAt).toBe('2026-01-01T00:00:10.000Z');
    await store.touchToken(hash(1), '2026-01-01T00:01:30.000Z', '2026-01-01T00:00:30.000Z');
    expect((await store.listTokens())[0]?.lastUsedAt).toBe('2026-01-01T00:01:30.000Z');
    await store.revokeToken('bob', '2026-01-01T00:02:00.000Z');
    await store.touchToken(hash(1), '2026-01-01T00:09:00.000Z', '2026-01-01T00:08:00.000Z');
    await store.touchToken(hash(9), '2026-01-01T00:09:00.000Z', '2026-01-01T00:08:00.000Z');
    expect((await store.getToken(hash(1)))?.lastUsedAt).toBe('2026-01-01T00:01:30.000Z');
    expect(await store.getToken(hash(9))).toBeUndefined();
  });
});
