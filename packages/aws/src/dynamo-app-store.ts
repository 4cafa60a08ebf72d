import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type AppConfig, type AppStore, ConflictError, type StoredApp } from '@slipway/core';
import type { Item, TableAccess } from './dynamo-table-access.ts';
import { keys, withoutKeys } from './table.ts';

/** App configs: `APP#<app>` / `CONFIG`, listed through gsi2 `APPS` / `<app>`. */
export function createDynamoAppStore(table: TableAccess): AppStore {
  const { client, get, queryAll, conditional } = table;
  return {
    async putApp(config: AppConfig, actor: string, now: string, expectedRevision?: number): Promise<StoredApp> {
      const guard =
        expectedRevision === undefined
          ? {}
          : expectedRevision === 0
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : {
                ConditionExpression: 'revision = :expected',
                ExpressionAttributeValues: { ':expected': expectedRevision },
              };
      return conditional(
        'put app',
        async (tableName) => {
          const result = await client.send(
            new UpdateCommand({
              TableName: tableName,
              Key: keys.app(config.name),
              UpdateExpression:
                'SET config = :config, updatedAt = :now, updatedBy = :actor, gsi2pk = :apps, gsi2sk = :name, ' +
                'revision = if_not_exists(revision, :zero) + :one',
              ...guard,
              ExpressionAttributeValues: {
                ':config': config,
                ':now': now,
                ':actor': actor,
                ':apps': 'APPS',
                ':name': config.name,
                ':zero': 0,
                ':one': 1,
                ...(guard.ExpressionAttributeValues ?? {}),
              },
              ReturnValues: 'ALL_NEW',
            }),
          );
          return withoutKeys<StoredApp>(result.Attributes as Item);
        },
        () => {
          throw new ConflictError(
            `app ${config.name} was changed by someone else (expected revision ${expectedRevision}); read it again`,
          );
        },
      );
    },

    async getApp(name) {
      const item = await get(keys.app(name));
      return item ? withoutKeys<StoredApp>(item) : undefined;
    },

    async listApps() {
      const items = await queryAll({
        IndexName: 'gsi2',
        KeyConditionExpression: 'gsi2pk = :apps',
        ExpressionAttributeValues: { ':apps': 'APPS' },
      });
      return items.map((item) => String(item.gsi2sk));
    },
  };
}
