import { createDynamoEventStore, createTableAccess } from '@slipway/aws';
import type { EventStore } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createMemoryEventStore } from '../../packages/core/src/testing/memory-release-store.ts';
import { implementations, releaseId } from './implementations.ts';

const stores = implementations<EventStore>('events', createMemoryEventStore, (client, table) => createDynamoEventStore(createTableAccess(client, table)));

describe.each(stores)('event store contract: %s', (_name, make) => {
  it('keeps each release its own log, in event-id order', async () => {
    const store = await make();
    const [first, second] = [releaseId(), releaseId()];
    for (const [id, type] of [['e2', 'second'], ['e1', 'first'], ['e3', 'third']] as const) {
      await store.appendEvent({ releaseId: first, id, at: 'now', type, actor: 'alice', data: { n: id } });
    }
    await store.appendEvent({ releaseId: second, id: 'e1', at: 'now', type: 'other', actor: 'bob' });
    expect((await store.listEvents(first)).map((e) => e.type)).toEqual(['first', 'second', 'third']);
    expect(await store.listEvents(second)).toEqual([{ releaseId: second, id: 'e1', at: 'now', type: 'other', actor: 'bob' }]);
    expect(await store.listEvents(releaseId())).toEqual([]);
  });

  it('leaves an event id appended before as it is: a retried append is not a second event', async () => {
    const store = await make();
    const id = releaseId();
    await store.appendEvent({ releaseId: id, id: 'e1', at: 'then', type: 'first', actor: 'alice' });
    await store.appendEvent({ releaseId: id, id: 'e1', at: 'later', type: 'duplicate', actor: 'mallory' });
    await Promise.all([1, 2, 3].map(() => store.appendEvent({ releaseId: id, id: 'e2', at: 'now', type: 'raced', actor: 'slipway' })));
    expect((await store.listEvents(id)).map((e) => [e.id, e.type, e.actor])).toEqual([
      ['e1', 'first', 'alice'],
      ['e2', 'raced', 'slipway'],
    ]);
  });

  it('round-trips structured data', async () => {
    const store = await make();
    const id = releaseId();
    const data = { environment: 'production', batchIndex: 0, failedHosts: ['h1', 'h2'], nested: { ok: true, none: null } };
    await store.appendEvent({ releaseId: id, id: 'e1', at: 'now', type: 'switch.failed', actor: 'slipway', data });
    expect((await store.listEvents(id))[0]?.data).toEqual(data);
  });
});
