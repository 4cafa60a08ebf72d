import { GetCommand } from '@aws-sdk/lib-dynamodb';
import {
  createDynamoApprovalStore,
  createDynamoAuditStore,
  createDynamoIdempotencyStore,
  createDynamoTokenStore,
  createTableAccess,
  keys,
} from '@slipway/aws';
import { createAuditLog, createAuthService, createLogger, createUlidGenerator, hashToken } from '@slipway/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { epochSeconds, TTL_DAYS } from '../../packages/aws/src/ttl.ts';
import { manualClock } from '../support/fixtures.ts';
import { localDynamo } from '../support/stand-ins.ts';

/**
 * Items that expire by themselves carry `ttl` in epoch seconds (the table's TTL attribute). The local
 * DynamoDB ignores it, so these tests read the raw items and check the number each rule gives;
 * items that must never expire have none.
 */
let dynamo: Awaited<ReturnType<typeof localDynamo>>;
beforeAll(async () => {
  dynamo = await localDynamo();
});
afterAll(async () => dynamo.close());

const freshTable = () => dynamo.freshTable('ttl');

async function raw(table: string, key: Record<string, string>) {
  const { Item } = await dynamo.client.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }));
  if (!Item) throw new Error(`no item ${JSON.stringify(key)}`);
  return Item;
}

const T0 = '2026-01-01T00:00:00.000Z';
/** 2026-01-01T00:00:00Z in epoch seconds, worked out by hand, not by the helper under test. */
const T0_SECONDS = 1_767_225_600;
const DAY = 86_400;

function authService(table: string) {
  const clock = manualClock(T0);
  const logger = createLogger({ service: 'test', write: () => undefined });
  const tokens = createDynamoTokenStore(dynamo.client, table);
  const audit = createAuditLog({ store: createDynamoAuditStore(dynamo.client, table), clock, ids: createUlidGenerator(clock), logger });
  return { tokens, clock, auth: createAuthService({ tokens, clock, audit, logger }) };
}

describe('epochSeconds', () => {
  it('gives whole epoch seconds, some days later', () => {
    expect(epochSeconds(T0)).toBe(T0_SECONDS);
    expect(epochSeconds(T0, 7)).toBe(T0_SECONDS + 7 * DAY);
    expect(epochSeconds('2026-01-01T00:00:00.999Z', 1)).toBe(T0_SECONDS + DAY);
    expect(epochSeconds('2026-01-01T02:00:00+02:00')).toBe(T0_SECONDS);
    expect(() => epochSeconds('someday', 1)).toThrow(RangeError);
  });

  it('says how long each kind of item outlives its use', () => {
    expect(TTL_DAYS).toEqual({
      tokenAfterExpiry: 7,
      approvalLinkAfterExpiry: 30,
      notificationClaim: 400,
      commandParts: 30,
      idempotencyAfterExpiry: 1,
    });
  });
});

describe('TTL on idempotency keys', () => {
  it('gives a claimed key expiresAt + 1 day, moved with the expiry its answer is stored with', async () => {
    const table = await freshTable();
    const store = createDynamoIdempotencyStore(createTableAccess(dynamo.client, table));
    const claim = { key: 'k1', requestHash: 'h', inProgressUntil: '2026-01-01T00:01:00.000Z', expiresAt: '2026-01-02T00:00:00.000Z' };
    await store.claimIdempotencyKey(claim, T0);
    const key = { pk: 'IDEMPOTENCY#k1', sk: 'IDEMPOTENCY' };
    expect((await raw(table, key)).ttl).toBe(T0_SECONDS + 2 * DAY);
    await store.completeIdempotencyKey('k1', { status: 202, body: { id: 'r1' } }, '2026-01-03T00:00:00.000Z');
    expect((await raw(table, key)).ttl).toBe(T0_SECONDS + 3 * DAY);
    expect((await store.claimIdempotencyKey({ key: 'k1', requestHash: 'h', inProgressUntil: T0, expiresAt: T0 }, T0)).claimed).toBe(false);
  });
});

describe('TTL on API tokens', () => {
  it('gives an expiring token and its name claim expiresAt + 7 days, kept through use and revocation', async () => {
    const table = await freshTable();
    const { auth, clock, tokens } = authService(table);
    await auth.ensureAdminToken('slw_bootstrap-secret-for-ttl-0000');
    const created = await auth.createToken({ name: 'ci', role: 'deployer', expiresInSeconds: 3600 }, { name: 'admin', role: 'admin' });
    expect(created.expiresAt).toBe('2026-01-01T01:00:00.000Z');
    const expected = T0_SECONDS + 3600 + 7 * DAY;

    const hash = hashToken(created.token);
    expect((await raw(table, keys.token(hash))).ttl).toBe(expected);
    expect(await raw(table, { pk: 'TOKENS', sk: 'NAME#ci' })).toMatchObject({ hash, ttl: expected });

    // Storage detail: the domain objects never show it.
    expect(await tokens.getToken(hash)).not.toHaveProperty('ttl');
    for (const listed of await tokens.listTokens()) expect(listed).not.toHaveProperty('ttl');

    clock.advance(120_000);
    await auth.authenticate(`Bearer ${created.token}`);
    await auth.revokeToken('ci', { name: 'admin', role: 'admin' });
    const tombstone = await raw(table, keys.token(hash));
    expect(tombstone).toMatchObject({ lastUsedAt: '2026-01-01T00:02:00.000Z', revokedAt: '2026-01-01T00:02:00.000Z', ttl: expected });
  });

  it('never gives a ttl to a token without expiry, nor to the bootstrap admin token, revoked or not', async () => {
    const table = await freshTable();
    const { auth, clock, tokens } = authService(table);
    const first = 'slw_first-bootstrap-secret-for-ttl';
    const second = 'slw_second-bootstrap-secret-for-t';
    expect(await auth.ensureAdminToken(first)).toBe('created');
    const forever = await auth.createToken({ name: 'ops', role: 'admin' }, { name: 'admin', role: 'admin' });

    for (const hash of [hashToken(first), hashToken(forever.token)]) expect(await raw(table, keys.token(hash))).not.toHaveProperty('ttl');
    for (const name of ['admin', 'ops']) expect(await raw(table, { pk: 'TOKENS', sk: `NAME#${name}` })).not.toHaveProperty('ttl');

    // A new bootstrap secret revokes the old one; revoking by name does the same to the new one.
    clock.advance(1000);
    expect(await auth.ensureAdminToken(second)).toBe('created');
    await auth.revokeToken('admin', { name: 'ops', role: 'admin' });
    for (const secret of [first, second]) {
      const tombstone = await raw(table, keys.token(hashToken(secret)));
      expect(tombstone.revokedAt).toBeDefined();
      // Were this tombstone to expire, the still-configured secret would come back as an admin token.
      expect(tombstone).not.toHaveProperty('ttl');
      expect(await auth.ensureAdminToken(secret)).toBe('revoked');
    }
    expect(await tokens.getToken(hashToken(forever.token))).toMatchObject({ name: 'ops' });
    expect(await raw(table, keys.token(hashToken(forever.token)))).not.toHaveProperty('ttl');
  });
});

describe('TTL on approval items', () => {
  it('gives a link expiresAt + 30 days, kept when it is used, and a notification claim claimedAt + 400 days', async () => {
    const table = await freshTable();
    const approvals = createDynamoApprovalStore(dynamo.client, table);
    const link = { releaseId: 'rel-1', environment: 'production', approver: 'lead@example.com', expiresAt: '2026-01-04T00:00:00.000Z' };
    await approvals.putLink('a'.repeat(64), link);
    expect((await raw(table, keys.approvalLink('a'.repeat(64)))).ttl).toBe(T0_SECONDS + 3 * DAY + 30 * DAY);
    expect(await approvals.getLink('a'.repeat(64))).toEqual(link);

    expect(await approvals.useLink('a'.repeat(64), '2026-01-02T00:00:00.000Z')).toBe(true);
    expect(await raw(table, keys.approvalLink('a'.repeat(64)))).toMatchObject({ usedAt: '2026-01-02T00:00:00.000Z', ttl: T0_SECONDS + 33 * DAY });
    expect(await approvals.getLink('a'.repeat(64))).toEqual({ ...link, usedAt: '2026-01-02T00:00:00.000Z' });

    expect(await approvals.claimNotification('outcome-mail#rel-1', '2026-01-01T12:00:00.000Z')).toBe(true);
    expect(await raw(table, keys.notification('outcome-mail#rel-1'))).toEqual({
      ...keys.notification('outcome-mail#rel-1'),
      claimedAt: '2026-01-01T12:00:00.000Z',
      ttl: T0_SECONDS + 12 * 3600 + 400 * DAY,
    });
    // Claimed once: a second claim still loses while the item is there.
    expect(await approvals.claimNotification('outcome-mail#rel-1', '2026-01-02T00:00:00.000Z')).toBe(false);
  });
});
