import { type DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { AuditEntry, AuditStore } from '@slipway/core';
import { putIfAbsent, translateSdkError } from './errors.ts';
import { withoutKeys } from './table.ts';

/**
 * The audit log in the single table: pk `AUDIT`, sk the entry's id (a ULID, so newest first is a
 * query with ScanIndexForward=false). One partition: audit entries are a few per change a person
 * makes, far below a partition's write limit. The cursor is the last id of the page before.
 */
export const auditKey = (id: string) => ({ pk: 'AUDIT', sk: id });

export function createDynamoAuditStore(client: DynamoDBDocumentClient, tableName: string): AuditStore {
  const what = 'the audit log';
  return {
    async append(entry) {
      await putIfAbsent(client, tableName, { ...auditKey(entry.id), ...entry }, what);
    },

    async list({ limit, cursor }) {
      let result;
      try {
        // One more than asked: whether it comes back says if there is a next page.
        result = await client.send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: cursor ? 'pk = :pk AND sk < :cursor' : 'pk = :pk',
            ExpressionAttributeValues: { ':pk': 'AUDIT', ...(cursor ? { ':cursor': cursor } : {}) },
            ScanIndexForward: false,
            ConsistentRead: true,
            Limit: limit + 1,
          }),
        );
      } catch (error) {
        throw translateSdkError(error, what);
      }
      const items = (result.Items ?? []).map((item) => withoutKeys<AuditEntry>(item));
      const page = items.slice(0, limit);
      return items.length > limit ? { items: page, nextCursor: page.at(-1)!.id } : { items: page };
    },
  };
}
