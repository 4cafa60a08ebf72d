import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { IdempotencyRecord, IdempotencyStore } from '@slipway/core';
import type { TableAccess } from './dynamo-table-access.ts';
import { withoutKeys } from './table.ts';
import { epochSeconds, TTL_DAYS } from './ttl.ts';

const idempotencyKey = (key: string) => ({ pk: `IDEMPOTENCY#${key}`, sk: 'IDEMPOTENCY' });

/**
 * Idempotency keys (`IDEMPOTENCY#<digest>` / `IDEMPOTENCY`): one conditional write claims a key, as
 * Powertools' DynamoDB persistence layer does, so two racing requests with one key run once.
 */
export function createDynamoIdempotencyStore(table: TableAccess): IdempotencyStore {
  const { client, tableName, call, get, conditional } = table;
  return {
    async claimIdempotencyKey(claim, now) {
      const record: IdempotencyRecord = { ...claim, status: 'in_progress' };
      return conditional(
        'claim idempotency key',
        async () => {
          await client.send(
            new PutCommand({
              TableName: tableName,
              Item: { ...idempotencyKey(claim.key), ...record, ttl: epochSeconds(claim.expiresAt, TTL_DAYS.idempotencyAfterExpiry) },
              ConditionExpression:
                'attribute_not_exists(pk) OR expiresAt < :now OR (#status = :inProgress AND inProgressUntil < :now)',
              ExpressionAttributeNames: { '#status': 'status' },
              ExpressionAttributeValues: { ':now': now, ':inProgress': 'in_progress' },
            }),
          );
          return { claimed: true as const };
        },
        async () => {
          const held = await get(idempotencyKey(claim.key));
          // Deleted between the failed condition and this read: the caller's retry claims it.
          if (!held) return { claimed: false as const, record: { ...record, inProgressUntil: now } };
          const { ttl: _ttl, ...rest } = withoutKeys<IdempotencyRecord & { ttl?: number }>(held);
          return { claimed: false as const, record: rest };
        },
      );
    },

    async completeIdempotencyKey(key, response, expiresAt) {
      await conditional(
        'complete idempotency key',
        () =>
          client.send(
            new UpdateCommand({
              TableName: tableName,
              Key: idempotencyKey(key),
              UpdateExpression: 'SET #status = :completed, #response = :response, expiresAt = :expiresAt, #ttl = :ttl',
              ConditionExpression: 'attribute_exists(pk)',
              ExpressionAttributeNames: { '#status': 'status', '#response': 'response', '#ttl': 'ttl' },
              ExpressionAttributeValues: {
                ':completed': 'completed',
                ':response': response,
                ':expiresAt': expiresAt,
                ':ttl': epochSeconds(expiresAt, TTL_DAYS.idempotencyAfterExpiry),
              },
            }),
          ),
        // A claim released meanwhile has nothing to complete.
        () => undefined,
      );
    },

    async releaseIdempotencyKey(key) {
      await call('release idempotency key', () => client.send(new DeleteCommand({ TableName: tableName, Key: idempotencyKey(key) })));
    },
  };
}
