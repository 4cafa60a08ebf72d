import { createCallAttribution, createDynamoPlanStore, createTableAccess, recordCalls } from '@slipway/aws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseId } from '../contract/implementations.ts';
import { localDynamo } from '../support/stand-ins.ts';

/**
 * What the plan store contract cannot see: how many DynamoDB calls its writes cost. Counted by the
 * same hook bench:fleet uses (BENCH_CALLS=1), on the local server.
 */
let dynamo: Awaited<ReturnType<typeof localDynamo>>;
const calls = new Map<string, number>();
const recorder = createCallAttribution(({ fn, operation }) => calls.set(`${fn} ${operation}`, (calls.get(`${fn} ${operation}`) ?? 0) + 1));
beforeAll(async () => {
  dynamo = await localDynamo();
  recordCalls(dynamo.client, recorder.recordCall);
});
afterAll(async () => dynamo.close());

/** The calls `work` made, by operation. */
async function callsOf(label: string, work: () => Promise<unknown>): Promise<Record<string, number>> {
  await recorder.within(label, work);
  return Object.fromEntries([...calls].filter(([key]) => key.startsWith(`${label} `)).map(([key, count]) => [key.slice(label.length + 1), count]));
}

describe('entering a 500-host environment', () => {
  const hosts = Array.from({ length: 500 }, (_, i) => `i-${i.toString(16).padStart(17, '0')}`);

  it('creates its host states with one query and a BatchWriteItem per 25 hosts; entering again only queries', async () => {
    const store = createDynamoPlanStore(createTableAccess(dynamo.client, await dynamo.freshTable('plan-calls')));
    const id = releaseId();
    expect(await callsOf('first entry', () => store.ensureHostStates(id, 'production', hosts, 't0'))).toEqual({ Query: 1, BatchWriteItem: 20 });
    expect(await callsOf('second entry', () => store.ensureHostStates(id, 'production', hosts, 't1'))).toEqual({ Query: 1 });
    // A crash part-way: the entry again writes only the hosts that are missing.
    expect(await callsOf('grown entry', () => store.ensureHostStates(id, 'production', [...hosts, 'i-new-1', 'i-new-2'], 't2'))).toEqual({ Query: 1, BatchWriteItem: 1 });
    const states = await store.getHostStates(id);
    expect(states).toHaveLength(502);
    expect(states.every((h) => h.status === 'pending')).toBe(true);
    expect(states.filter((h) => h.updatedAt === 't0')).toHaveLength(500);
  });
});

describe('an entry that stalls between its query and its write', () => {
  it('puts pending over hosts a command moved on meanwhile, and the reads still see where the command left them', async () => {
    const access = createTableAccess(dynamo.client, await dynamo.freshTable('plan-stall'));
    let resume!: () => void;
    const resumed = new Promise<void>((resolve) => (resume = resolve));
    let stalled!: () => void;
    const queried = new Promise<void>((resolve) => (stalled = resolve));
    // The second entry's writes wait until the first entry's workflow has switched the hosts.
    const slow = createDynamoPlanStore({
      ...access,
      batchPut: async (items) => {
        stalled();
        await resumed;
        return access.batchPut(items);
      },
    });
    const store = createDynamoPlanStore(access);
    const id = releaseId();
    const hosts = ['h1', 'h2', 'h3'];
    const late = slow.ensureHostStates(id, 'production', hosts, '2026-01-01T00:00:01.000Z');
    await queried;
    await store.ensureHostStates(id, 'production', hosts, '2026-01-01T00:00:01.001Z');
    const output = { exitCode: 0, stdout: '', stderr: '', startedAt: '2026-01-01T00:00:02.000Z', endedAt: '2026-01-01T00:00:09.000Z' };
    await store.recordHostOutcomes(id, 'production', 'distribute', hosts.map((host) => ({ host, status: 'distributed' as const, output })), '2026-01-01T00:00:09.000Z');
    await store.recordHostOutcomes(
      id,
      'production',
      'switch',
      [{ host: 'h1', status: 'switched', output }, { host: 'h2', status: 'failed', output }],
      '2026-01-01T00:00:20.000Z',
    );
    resume();
    await late;
    expect((await store.getHostStates(id)).map((h) => [h.host, h.status, h.updatedAt])).toEqual([
      ['h1', 'switched', '2026-01-01T00:00:20.000Z'],
      ['h2', 'failed', '2026-01-01T00:00:20.000Z'],
      ['h3', 'distributed', '2026-01-01T00:00:09.000Z'],
    ]);
  });
});
