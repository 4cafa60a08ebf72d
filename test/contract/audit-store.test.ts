import { createDynamoAuditStore } from '@slipway/aws';
import { type AuditEntry, type AuditStore, createUlidGenerator } from '@slipway/core';
import { ensureTable } from '@slipway/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryAuditStore } from '../../packages/core/src/testing/memory-stores.ts';
import { manualClock } from '../support/fixtures.ts';
import { localDynamo } from '../support/stand-ins.ts';

let dynamo: Awaited<ReturnType<typeof localDynamo>>;
beforeAll(async () => {
  dynamo = await localDynamo();
});
afterAll(async () => dynamo.close());

/** Each case gets a store of its own: a fresh fake, or a table of its own in the local DynamoDB. */
let tables = 0;
const implementations: [string, () => Promise<AuditStore>][] = [
  ['in-memory fake', async () => createMemoryAuditStore()],
  [
    'DynamoDB',
    async () => {
      tables += 1;
      const name = `audit-contract-${tables}`;
      await ensureTable(dynamo.client, name);
      return createDynamoAuditStore(dynamo.client, name);
    },
  ],
];

function entries(count: number): AuditEntry[] {
  const clock = manualClock();
  const ids = createUlidGenerator(clock);
  return Array.from({ length: count }, (_, i) => {
    clock.advance(1000);
    return {
      id: ids.next(),
      at: clock.now().toISOString(),
      actor: `person-${i}@example.com`,
      action: i % 2 ? 'token.created' : 'app.config_changed',
      subject: `apps/app-${i}`,
      details: { revision: i + 1, changed: ['hooks.postRelease', `environments[e${i}].strategy`], nested: { deep: [i] } },
    };
  });
}

describe.each(implementations)('audit store contract: %s', (_name, make) => {
  it('lists nothing when empty', async () => {
    const store = await make();
    expect(await store.list({ limit: 10 })).toEqual({ items: [] });
  });

  it('lists newest first, whatever order the entries arrived in, and keeps every field', async () => {
    const store = await make();
    const written = entries(4);
    for (const entry of [written[2]!, written[0]!, written[3]!, written[1]!]) await store.append(entry);
    const page = await store.list({ limit: 10 });
    expect(page).toEqual({ items: [...written].reverse() });
  });

  it('pages with a cursor: every entry once, then no cursor', async () => {
    const store = await make();
    const written = entries(5);
    for (const entry of written) await store.append(entry);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.list({ limit: 2, ...(cursor ? { cursor } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((e) => e.id));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(written.map((e) => e.id).reverse());
  });

  it('gives no cursor when the page holds the last entry exactly', async () => {
    const store = await make();
    for (const entry of entries(2)) await store.append(entry);
    expect((await store.list({ limit: 2 })).nextCursor).toBeUndefined();
  });

  it('keeps the first entry stored under an id', async () => {
    const store = await make();
    const [entry] = entries(1);
    await store.append(entry!);
    await store.append({ ...entry!, actor: 'mallory@example.com' });
    expect((await store.list({ limit: 10 })).items).toEqual([entry]);
  });
});
