import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type EnvironmentLock, EnvironmentLockedError, type LockStore, type QueueWaiter } from '@slipway/core';
import type { TableAccess } from './dynamo-table-access.ts';
import { keys, withoutKeys } from './table.ts';

/**
 * A release waiting in line for an environment's lock: `QUEUE#<app>#<env>` / `WAIT#<releaseId>`, so
 * a query lists the line in release-id order (ULIDs: the order releases were opened). gsi2
 * `QUEUED` / `<app>#<env>#<releaseId>` lists every waiter, environment by environment, for the sweep.
 */
const queueKey = (app: string, environment: string, releaseId: string) => ({ pk: `QUEUE#${app}#${environment}`, sk: `WAIT#${releaseId}` });
const QUEUED_INDEX_KEY = 'QUEUED';

/** Environment locks (`LOCK#<app>#<env>` / `LOCK`, one conditional write each) and the lines waiting for them. */
export function createDynamoLockStore(table: TableAccess): LockStore {
  const { client, tableName, call, get, batchGet, putOnce, queryAll, queryPage, conditional } = table;
  return {
    async acquireLock(lock: EnvironmentLock, now: string) {
      await conditional(
        'acquire lock',
        () =>
          client.send(
            new PutCommand({
              TableName: tableName,
              Item: { ...keys.lock(lock.app, lock.environment), ...lock },
              ConditionExpression: 'attribute_not_exists(pk) OR holder = :holder OR leaseUntil < :now',
              ExpressionAttributeValues: { ':holder': lock.holder, ':now': now },
            }),
          ),
        async () => {
          const current = await get(keys.lock(lock.app, lock.environment));
          throw new EnvironmentLockedError(
            lock.app,
            lock.environment,
            String(current?.holder ?? 'unknown'),
            String(current?.leaseUntil ?? now),
          );
        },
      );
    },

    async releaseLock(app, environment, holder) {
      // Freeing a lock one does not hold changes nothing.
      await conditional(
        'release lock',
        () =>
          client.send(
            new DeleteCommand({
              TableName: tableName,
              Key: keys.lock(app, environment),
              ConditionExpression: 'holder = :holder',
              ExpressionAttributeValues: { ':holder': holder },
            }),
          ),
        () => undefined,
      );
    },

    async getLock(app, environment) {
      const item = await get(keys.lock(app, environment));
      return item ? withoutKeys<EnvironmentLock>(item) : undefined;
    },

    async getLocks(app, environments) {
      const found = new Map<string, EnvironmentLock>();
      for (const item of await batchGet(environments.map((environment) => keys.lock(app, environment)))) {
        const lock = withoutKeys<EnvironmentLock>(item);
        found.set(lock.environment, lock);
      }
      return environments.flatMap((environment) => (found.has(environment) ? [found.get(environment)!] : []));
    },

    async joinQueue(waiter: QueueWaiter) {
      const key = queueKey(waiter.app, waiter.environment, waiter.releaseId);
      const created = await putOnce(
        { ...key, gsi2pk: QUEUED_INDEX_KEY, gsi2sk: `${waiter.app}#${waiter.environment}#${waiter.releaseId}`, ...waiter },
        'join queue',
      );
      if (!created) {
        // In line already (a retried or resumed task): keep its place and its `since`, take the new token.
        await call('queue token', () =>
          client.send(
            new UpdateCommand({
              TableName: tableName,
              Key: key,
              UpdateExpression: 'SET taskToken = :token',
              ExpressionAttributeValues: { ':token': waiter.taskToken },
            }),
          ),
        );
      }
      return { created };
    },

    async listQueue(app, environment, limit) {
      const input = {
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': `QUEUE#${app}#${environment}`, ':prefix': 'WAIT#' },
        ConsistentRead: true,
      };
      const items = limit === undefined ? await queryAll(input) : (await queryPage('queue', { ...input, Limit: limit })).items;
      return items.map((item) => withoutKeys<QueueWaiter>(item));
    },

    async leaveQueue(app, environment, releaseId) {
      await call('leave queue', () => client.send(new DeleteCommand({ TableName: tableName, Key: queueKey(app, environment, releaseId) })));
    },

    async listQueuedEnvironments(limit) {
      const { items } = await queryPage('queued environments', {
        IndexName: 'gsi2',
        KeyConditionExpression: 'gsi2pk = :queued',
        ExpressionAttributeValues: { ':queued': QUEUED_INDEX_KEY },
        Limit: limit,
      });
      const seen = new Map<string, { app: string; environment: string }>();
      for (const item of items) {
        const { app, environment } = withoutKeys<QueueWaiter>(item);
        seen.set(`${app}#${environment}`, { app, environment });
      }
      return [...seen.values()];
    },
  };
}
