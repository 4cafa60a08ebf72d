import { PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { AbstractIterator, AbstractKeyIterator, AbstractValueIterator } from 'abstract-level';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localDynamo } from '../support/stand-ins.ts';

/**
 * The local DynamoDB reads LevelDB with an iterator per Query and Scan; one left open keeps its
 * snapshot and its memory for as long as the server runs. Every iterator a read opens is closed.
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
  let dynamo: Awaited<ReturnType<typeof localDynamo>>;
  beforeAll(async () => {
    dynamo = await localDynamo();
    for (const Iterator of [AbstractIterator, AbstractKeyIterator, AbstractValueIterator]) track(Iterator.prototype as Tracked, 'next', read);
    // close is the common base class's: one wrapper covers the three kinds.
    track(Object.getPrototypeOf(AbstractIterator.prototype) as Tracked, 'close', closed);
  });
  afterAll(async () => {
    for (const undo of restore) undo();
    await dynamo.close();
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
