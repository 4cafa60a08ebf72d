import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { CLAIM_GRACE_MS, createDynamoAuditStore, createDynamoTokenStore, keys } from '@slipway/aws';
import { ConflictError, createAuditLog, createAuthService, createLogger, createUlidGenerator, hashToken, type StoredToken } from '@slipway/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../support/fixtures.ts';
import { localDynamo } from '../support/stand-ins.ts';

/**
 * What the contract suite cannot show: name uniqueness under racing writers, and what a crash
 * between the two writes of a creation or a revocation leaves behind, in the local DynamoDB.
 */
let dynamo: Awaited<ReturnType<typeof localDynamo>>;
beforeAll(async () => {
  dynamo = await localDynamo();
});
afterAll(async () => dynamo.close());

const freshTable = () => dynamo.freshTable('tokens');

const T0 = '2026-01-01T00:00:00.000Z';
const at = (ms: number) => new Date(Date.parse(T0) + ms).toISOString();
const token = (name: string, overrides: Partial<StoredToken> = {}): StoredToken => ({
  name,
  role: 'deployer',
  createdAt: T0,
  createdBy: 'admin',
  ...overrides,
});
const hash = (n: number) => n.toString(16).padStart(64, '0');

async function putItem(table: string, item: Record<string, unknown>) {
  await dynamo.client.send(new PutCommand({ TableName: table, Item: item }));
}

describe('DynamoDB token store', () => {
  it('lets exactly one of many racing creations have a name', async () => {
    const table = await freshTable();
    const store = createDynamoTokenStore(dynamo.client, table);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => store.createToken(hash(i + 1), token('race', { createdBy: `admin-${i}` }))),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes.filter((o) => o.status === 'rejected')) expect(o.reason).toBeInstanceOf(ConflictError);
    const listed = await store.listTokens();
    expect(listed).toHaveLength(1);
    const winner = outcomes.findIndex((o) => o.status === 'fulfilled');
    expect(listed[0]).toMatchObject({ name: 'race', createdBy: `admin-${winner}` });
    // The losers stored nothing: their secrets never work.
    for (let i = 0; i < 8; i++) if (i !== winner) expect(await store.getToken(hash(i + 1))).toBeUndefined();
  });

  it('after a crash between the name claim and the token: the name waits out the grace, then a new token takes it', async () => {
    const table = await freshTable();
    const store = createDynamoTokenStore(dynamo.client, table);
    await putItem(table, { pk: 'TOKENS', sk: 'NAME#crashed', name: 'crashed', hash: hash(1), claimedAt: T0 });
    expect(await store.listTokens()).toEqual([]);
    await expect(store.createToken(hash(2), token('crashed', { createdAt: at(CLAIM_GRACE_MS - 1000) }))).rejects.toBeInstanceOf(ConflictError);
    await store.createToken(hash(3), token('crashed', { createdAt: at(CLAIM_GRACE_MS) }));
    expect(await store.listTokens()).toEqual([token('crashed', { createdAt: at(CLAIM_GRACE_MS) })]);
    expect(await store.getToken(hash(2))).toBeUndefined();
  });

  it('after a crash between revoking a token and freeing its name: refused, unlisted, and the name is free', async () => {
    const table = await freshTable();
    const store = createDynamoTokenStore(dynamo.client, table);
    await putItem(table, { ...keys.token(hash(1)), ...token('half', { revokedAt: at(1000) }) });
    await putItem(table, { pk: 'TOKENS', sk: 'NAME#half', name: 'half', hash: hash(1), claimedAt: T0 });
    expect(await store.listTokens()).toEqual([]);
    await store.createToken(hash(2), token('half', { createdAt: at(2000) }));
    expect((await store.listTokens()).map((t) => t.createdAt)).toEqual([at(2000)]);
    expect(await store.getToken(hash(1))).toMatchObject({ revokedAt: at(1000) });

    await putItem(table, { ...keys.token(hash(3)), ...token('again', { revokedAt: at(1000) }) });
    await putItem(table, { pk: 'TOKENS', sk: 'NAME#again', name: 'again', hash: hash(3), claimedAt: T0 });
    // Revoking such a name finds no live token behind it, and clears the claim.
    expect(await store.revokeToken('again', at(5000))).toBeUndefined();
    await store.createToken(hash(4), token('again', { createdAt: at(6000) }));
    expect((await store.listTokens()).map((t) => t.name)).toEqual(['again', 'half']);
  });

  it('a creation slower than the grace, whose name was taken over meanwhile, gives up and stores no working token', async () => {
    const table = await freshTable();
    const plain = createDynamoTokenStore(dynamo.client, table);
    let interfered = false;
    // Right before the slow creation writes its token item, another creation (a minute later) takes the name.
    const slowClient = {
      async send(command: { input: { Item?: Record<string, unknown> } }) {
        if (!interfered && command instanceof PutCommand && command.input.Item?.pk === `TOKEN#${hash(1)}`) {
          interfered = true;
          await plain.createToken(hash(2), token('slow', { createdAt: at(CLAIM_GRACE_MS + 1) }));
        }
        return dynamo.client.send(command as never);
      },
    } as unknown as DynamoDBDocumentClient;
    const slow = createDynamoTokenStore(slowClient, table);
    await expect(slow.createToken(hash(1), token('slow'))).rejects.toBeInstanceOf(ConflictError);
    expect(interfered).toBe(true);
    expect(await plain.getToken(hash(1))).toMatchObject({ revokedAt: T0 });
    expect(await plain.listTokens()).toEqual([token('slow', { createdAt: at(CLAIM_GRACE_MS + 1) })]);
  });

  it('the bootstrap token: stored once, a new secret replaces it, a revoked one stays revoked, an unclaimed one gets its name', async () => {
    const table = await freshTable();
    const store = createDynamoTokenStore(dynamo.client, table);
    const clock = manualClock(T0);
    const logger = createLogger({ service: 'test', write: () => undefined });
    const audit = createAuditLog({ store: createDynamoAuditStore(dynamo.client, table), clock, ids: createUlidGenerator(clock), logger });
    const auth = createAuthService({ tokens: store, clock, audit, logger });
    const first = 'slw_first-bootstrap-secret-0000';
    const second = 'slw_second-bootstrap-secret-000';

    expect(await auth.ensureAdminToken(first)).toBe('created');
    expect(await auth.ensureAdminToken(first)).toBe('present');
    expect(await auth.authenticate(`Bearer ${first}`)).toEqual({ name: 'admin', role: 'admin' });

    clock.advance(1000);
    expect(await auth.ensureAdminToken(second)).toBe('created');
    await expect(auth.authenticate(`Bearer ${first}`)).rejects.toThrow('unknown or expired token');
    expect(await auth.authenticate(`Bearer ${second}`)).toEqual({ name: 'admin', role: 'admin' });
    expect((await auth.listTokens()).items.map((t) => t.name)).toEqual(['admin']);

    // An admin revokes the bootstrap token (another admin exists); the configured secret stays dead.
    const other = await auth.createToken({ name: 'ops', role: 'admin' }, { name: 'admin', role: 'admin' });
    await auth.revokeToken('admin', { name: 'ops', role: 'admin' });
    expect(await auth.ensureAdminToken(second)).toBe('revoked');
    await expect(auth.authenticate(`Bearer ${second}`)).rejects.toThrow('unknown or expired token');
    expect((await auth.listTokens()).items.map((t) => t.name)).toEqual(['ops']);
    expect(await auth.authenticate(`Bearer ${other.token}`)).toEqual({ name: 'ops', role: 'admin' });

    // A token item from before names were claimed: the next start claims its name.
    const legacy = 'slw_legacy-bootstrap-secret-000';
    const table2 = await freshTable();
    const store2 = createDynamoTokenStore(dynamo.client, table2);
    await store2.putToken(hashToken(legacy), token('admin', { role: 'admin', createdBy: 'bootstrap' }));
    const auth2 = createAuthService({ tokens: store2, clock, audit, logger });
    expect((await auth2.listTokens()).items).toEqual([]);
    expect(await auth2.ensureAdminToken(legacy)).toBe('present');
    expect((await auth2.listTokens()).items.map((t) => t.name)).toEqual(['admin']);
  });
});
