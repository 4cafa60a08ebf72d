import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { StoredToken, TokenStore } from '@slipway/core';
import { conditionally, translateSdkError } from './errors.ts';
import { keys, withoutKeys } from './table.ts';

export function createDynamoTokenStore(client: DynamoDBDocumentClient, tableName: string): TokenStore {
  return {
    async putToken(hash, token, options = {}) {
      const write = () =>
        client.send(
          new PutCommand({
            TableName: tableName,
            Item: { ...keys.token(hash), ...token },
            ...(options.onlyIfAbsent ? { ConditionExpression: 'attribute_not_exists(pk)' } : {}),
          }),
        );
      // Only an only-if-absent write has a condition; a token already there is left as it is.
      await conditionally('the token table', write, () => undefined);
    },

    async getToken(hash) {
      try {
        const result = await client.send(new GetCommand({ TableName: tableName, Key: keys.token(hash) }));
        return result.Item ? withoutKeys<StoredToken>(result.Item) : undefined;
      } catch (error) {
        throw translateSdkError(error, 'the token table');
      }
    },
  };
}
