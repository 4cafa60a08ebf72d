import {
  BatchGetCommand,
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { ValidationError } from '@slipway/core';
import { conditionally, putIfAbsent, translateSdkError } from './errors.ts';

export type Item = Record<string, unknown>;

/** A batch request DynamoDB left unprocessed is sent again after a growing pause, at most a second. */
const backoff = (attempt: number) => new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 1000)));

/**
 * The reads and writes every store of the release table shares: one client, one table, SDK failures
 * translated into domain errors naming `the release table (<what>)`. Every read is strongly
 * consistent where DynamoDB allows it (not on a GSI): a stage reads, then writes what follows.
 */
export function createTableAccess(client: DynamoDBDocumentClient, tableName: string) {
  async function call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw translateSdkError(error, `the release table (${what})`);
    }
  }

  async function queryAll(input: Omit<QueryCommandInput, 'TableName'>): Promise<Item[]> {
    const items: Item[] = [];
    let start: Item | undefined;
    do {
      const page = await call('query', () =>
        client.send(new QueryCommand({ TableName: tableName, ...input, ExclusiveStartKey: start })),
      );
      items.push(...((page.Items ?? []) as Item[]));
      start = page.LastEvaluatedKey as Item | undefined;
    } while (start);
    return items;
  }

  /** One page of a query: at most `Limit` items, and where the next page starts. */
  async function queryPage(what: string, input: Omit<QueryCommandInput, 'TableName'>) {
    const page = await call(what, () => client.send(new QueryCommand({ TableName: tableName, ...input })));
    return { items: (page.Items ?? []) as Item[], lastKey: page.LastEvaluatedKey as Item | undefined };
  }

  async function queryPrefix(pk: string, prefix: string): Promise<Item[]> {
    // Strongly consistent: a stage reads an environment's status, then writes the next one.
    return queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': pk, ':prefix': prefix },
      ConsistentRead: true,
    });
  }

  async function get(key: Item): Promise<Item | undefined> {
    const result = await call('get', () =>
      client.send(new GetCommand({ TableName: tableName, Key: key, ConsistentRead: true })),
    );
    return result.Item as Item | undefined;
  }

  async function put(item: Item): Promise<void> {
    await call('put', () => client.send(new PutCommand({ TableName: tableName, Item: item })));
  }

  /** Writes the item unless one with its key exists; says whether it wrote. */
  const putOnce = (item: Item, what: string) => putIfAbsent(client, tableName, item, `the release table (${what})`);

  /** Runs a conditional write; `otherwise` decides what a failed condition means. */
  const conditional = <T, U>(what: string, run: (tableName: string) => Promise<T>, otherwise: () => U | Promise<U>) =>
    conditionally(`the release table (${what})`, () => run(tableName), otherwise);

  /** The items under `keyList`, in no particular order; keys with no item are left out. */
  async function batchGet(keyList: Item[]): Promise<Item[]> {
    const found: Item[] = [];
    for (let i = 0; i < keyList.length; i += 100) {
      let pending = keyList.slice(i, i + 100);
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > 0) await backoff(attempt);
        const result = await call('batch get', () =>
          client.send(new BatchGetCommand({ RequestItems: { [tableName]: { Keys: pending, ConsistentRead: true } } })),
        );
        found.push(...((result.Responses?.[tableName] ?? []) as Item[]));
        pending = (result.UnprocessedKeys?.[tableName]?.Keys ?? []) as Item[];
      }
    }
    return found;
  }

  async function batchWrite(requests: Record<string, unknown>[], what: string): Promise<void> {
    for (let i = 0; i < requests.length; i += 25) {
      let pending = requests.slice(i, i + 25);
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > 0) await backoff(attempt);
        const result = await call(what, () => client.send(new BatchWriteCommand({ RequestItems: { [tableName]: pending } })));
        pending = (result.UnprocessedItems?.[tableName] ?? []) as typeof pending;
      }
    }
  }

  const batchPut = (items: Item[]) => batchWrite(items.map((Item) => ({ PutRequest: { Item } })), 'batch write');
  const batchDelete = (keyList: Item[]) => batchWrite(keyList.map((Key) => ({ DeleteRequest: { Key } })), 'batch delete');

  return { client, tableName, call, queryAll, queryPage, queryPrefix, get, put, putOnce, conditional, batchGet, batchPut, batchDelete };
}
export type TableAccess = ReturnType<typeof createTableAccess>;

const CURSOR_KEYS = new Set(['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk']);

export function encodeCursor(lastKey: Item | undefined): string | undefined {
  return lastKey ? Buffer.from(JSON.stringify(lastKey), 'utf8').toString('base64url') : undefined;
}

/** A cursor is only ever a key of the same listing; anything else is refused, not passed to DynamoDB. */
export function decodeCursor(cursor: string, partitionAttribute: string, partitionValue: string): Item {
  const invalid = () =>
    new ValidationError('cursor is not one this listing gave out; start again without it', [
      { field: 'cursor', message: 'is not valid for this listing' },
    ]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid();
  const entries = Object.entries(parsed);
  const wellFormed = entries.every(([key, value]) => CURSOR_KEYS.has(key) && typeof value === 'string');
  if (!wellFormed || (parsed as Item)[partitionAttribute] !== partitionValue) throw invalid();
  return parsed as Item;
}
