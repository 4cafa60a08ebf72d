import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import type { ArtifactRecord, ArtifactRecordStore } from '@slipway/core';
import type { TableAccess } from './dynamo-table-access.ts';
import { keys, withoutKeys } from './table.ts';

/** Artifact records: `ART#<app>#<sha256>` / `ARTIFACT`, listed by app through gsi1 `ARTS#<app>` / `<sha256>`. */
export function createDynamoArtifactRecords(table: TableAccess): ArtifactRecordStore {
  const { client, tableName, call, get, put, queryAll } = table;
  return {
    async putArtifactRecord(record: ArtifactRecord) {
      await put({ ...keys.artifact(record.app, record.sha256), gsi1pk: `ARTS#${record.app}`, gsi1sk: record.sha256, ...record });
    },

    async getArtifactRecord(app, sha256) {
      const item = await get(keys.artifact(app, sha256));
      return item ? withoutKeys<ArtifactRecord>(item) : undefined;
    },

    async listArtifactRecords(app) {
      const items = await queryAll({
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :arts',
        ExpressionAttributeValues: { ':arts': `ARTS#${app}` },
      });
      return items.map((item) => withoutKeys<ArtifactRecord>(item));
    },

    async deleteArtifactRecord(app, sha256) {
      await call('delete artifact', () => client.send(new DeleteCommand({ TableName: tableName, Key: keys.artifact(app, sha256) })));
    },
  };
}
