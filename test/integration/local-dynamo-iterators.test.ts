import { PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { AbstractIterator, AbstractKeyIterator, AbstractValueIterator } from 'abstract-level';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDocumentClient } from '@slipway/aws';
import { ensureTable, LOCAL_CREDENTIALS, LOCAL_REGION } from '@slipway/local';
import { type StandInServer, startDynamoServer } from '../../packages/local/src/stand-in-servers.mjs';

/**
 * The local DynamoDB reads LevelDB with an iterator per Query and Scan; one left open keeps its
 * snapshot and its memory for as long as the server runs. Every iterator a read opens is closed.
 * The server runs on a thread of its own in Slipway; here it runs on the test's thread, started by
 * the same code, so that the test sees its iterators.
 */

type Tracked = { next(...args: unknown[]): unknown; close(...args: unknown[]): unknown };
const read = new Set<object>();
const closed = new Set<object>();
const restore: (() => void)[] = [];

/** Notes each iterator that reads and each that closes (the library's own methods still run). */
function track(prototype: Tracked, method: 'next' | 'close', into: Set<object>) {
  const original = prototype[method];
  prototype[method] = function (this: object, ...args: unknown[]) {
    into.add(this);
    return original.apply(this, args);
  };
  restore.push(() => {
    prototype[method] = original;
  });
}

describe('the local DynamoDB', () => {
  let server: StandInServer;
  let dynamo: { client: ReturnType<typeof createDocumentClient>; tableName: string };
  beforeAll(async () => {
    server = await startDynamoServer({});
    const client = createDocumentClient({ region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, endpoints: { dynamodb: `http://127.0.0.1:${server.port}` } });
    dynamo = { client, tableName: 'slipway-iterators' };
    await ensureTable(client, dynamo.tableName);
    for (const Iterator of [AbstractIterator, AbstractKeyIterator, AbstractValueIterator]) track(Iterator.prototype as Tracked, 'next', read);
    // close is the common base class's: one wrapper covers the three kinds.
    track(Object.getPrototypeOf(AbstractIterator.prototype) as Tracked, 'close', closed);
  });
  afterAll(async () => {
    for (const undo of restore) undo();
    dynamo.client.destroy();
    await server.close();
  });

  it('closes the iterator of every Query and Scan, read to the end or stopped at a Limit', async () => {
    const { client, tableName } = dynamo;
    for (let i = 0; i < 30; i++) await client.send(new PutCommand({ TableName: tableName, Item: { pk: 'REL#1', sk: `EVENT#${String(i).padStart(3, '0')}` } }));
    read.clear();
    closed.clear();
    const query = { TableName: tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': 'REL#1' } };
    for (let i = 0; i < 10; i++) {
      await client.send(new QueryCommand(query));
      await client.send(new QueryCommand({ ...query, Limit: 5 }));
      await client.send(new ScanCommand({ TableName: tableName, Limit: 3 }));
    }
    expect(read.size).toBeGreaterThanOrEqual(30);
    // Closing finishes after the answer went out: wait for it, within a generous deadline.
    const deadline = Date.now() + 10_000;
    const open = () => [...read].filter((iterator) => !closed.has(iterator)).length;
    while (open() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(open(), 'iterators left open').toBe(0);
  });
});
