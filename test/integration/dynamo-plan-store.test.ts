import { PutCommand } from '@aws-sdk/lib-dynamodb';
import {
  createCallAttribution,
  createDynamoApprovalStore,
  createDynamoPlanStore,
  createDynamoWholeRelease,
  createTableAccess,
  recordCalls,
  type TableAccess,
} from '@slipway/aws';
import type { HostOutcome } from '@slipway/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aRelease, environmentsOf, releaseId } from '../contract/implementations.ts';
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

  it('puts its hosts in place with one query and one BatchWriteItem (100 hosts an item); entering again only queries', async () => {
    const store = createDynamoPlanStore(createTableAccess(dynamo.client, await dynamo.freshTable('plan-calls')));
    const id = releaseId();
    expect(await callsOf('first entry', () => store.ensureHostStates(id, 'production', hosts, 't0'))).toEqual({ Query: 1, BatchWriteItem: 1 });
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
    const whole = createDynamoWholeRelease(access);
    const id = releaseId();
    await whole.openRelease(aRelease('shop', { id }), [], []);
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
    const expected = [
      ['h1', 'switched', '2026-01-01T00:00:20.000Z', ['distribute', 'switch']],
      ['h2', 'failed', '2026-01-01T00:00:20.000Z', ['distribute', 'switch']],
      ['h3', 'distributed', '2026-01-01T00:00:09.000Z', ['distribute']],
    ];
    const seen = (states: { host: string; status: string; updatedAt: string; steps: object }[]) =>
      states.map((h) => [h.host, h.status, h.updatedAt, Object.keys(h.steps).sort()]);
    expect(seen(await store.getHostStates(id))).toEqual(expected);
    // The release read takes the hosts' steps from the outcomes' summaries: the late `pending` put over a host item loses none.
    expect(seen((await whole.readWholeRelease(id))!.hosts)).toEqual(expected);
  });
});

/** A release opened in a table of its own, with the plan and whole-release stores over it. */
async function openedRelease(table: string) {
  const access = createTableAccess(dynamo.client, await dynamo.freshTable(table));
  const whole = createDynamoWholeRelease(access);
  const id = releaseId();
  await whole.openRelease(aRelease('shop', { id }), [], []);
  return { access, store: createDynamoPlanStore(access), whole, id };
}

/** The table access with each Query's items kept, to see what a read read. */
function readsOf(access: TableAccess) {
  const items: Record<string, unknown>[] = [];
  return {
    items,
    access: {
      ...access,
      queryAll: async (...args: Parameters<TableAccess['queryAll']>) => {
        const found = await access.queryAll(...args);
        items.push(...found);
        return found;
      },
    },
  };
}

describe('the release read with its approval gates', () => {
  it('is one Query of the partition, the gates and their decisions among its items', async () => {
    const { access, whole, id } = await openedRelease('whole-gates');
    const approvals = createDynamoApprovalStore(dynamo.client, access.tableName);
    for (const environment of ['staging', 'production']) {
      await approvals.createRequest({
        releaseId: id,
        environment,
        approvers: ['lead@example.com', 'cto@example.com'],
        required: 2,
        allowSelfApproval: false,
        status: 'pending',
        requestedAt: 't0',
        expiresAt: 't9',
      });
      await approvals.recordDecision({ releaseId: id, environment, approver: 'lead@example.com', decision: 'approve', reason: '', at: 't1', via: 'link' });
    }
    let read: Awaited<ReturnType<typeof whole.readWholeRelease>>;
    expect(await callsOf('gates read', async () => (read = await whole.readWholeRelease(id)))).toEqual({ Query: 1 });
    expect(read!.approvals.requests.map((r) => `${r.environment} ${r.status}`)).toEqual(['production pending', 'staging pending']);
    expect(read!.approvals.decisions.map((d) => `${d.environment} ${d.approver}`)).toEqual(['production lead@example.com', 'staging lead@example.com']);
  });
});

describe('the release read of a 500-host release', () => {
  const hosts = Array.from({ length: 500 }, (_, i) => `host-${String(i).padStart(3, '0')}`);
  const outcome = (host: string, exitCode: number, at: string): HostOutcome => ({
    host,
    status: exitCode === 0 ? 'distributed' : 'failed',
    output: { exitCode, stdout: `unpacked on ${host}\n`.repeat(20), stderr: '', startedAt: at, endedAt: at },
  });

  it('reads one item per 100 hosts entered and per 100 hosts a command, never a host item or an output', async () => {
    const access = createTableAccess(dynamo.client, await dynamo.freshTable('plan-read'));
    const store = createDynamoPlanStore(access);
    const id = releaseId();
    const release = aRelease('shop', { id });
    await createDynamoWholeRelease(access).openRelease(release, environmentsOf(release), []);
    await store.ensureHostStates(id, 'production', hosts, 't0');
    // As commandFinished hands them: slices of 250 hosts, in the order the fleet reported them.
    for (const slice of [hosts.slice(0, 250), hosts.slice(250)]) {
      await store.recordHostOutcomes(id, 'production', 'distribute', slice.map((host) => outcome(host, host === 'host-137' ? 3 : 0, 't1')), 't1');
    }
    const reading = readsOf(access);
    const read = (await createDynamoWholeRelease(reading.access).readWholeRelease(id))!;

    expect(read.hosts).toHaveLength(500);
    expect(read.hosts.find((h) => h.host === 'host-137')).toMatchObject({ status: 'failed', steps: { distribute: { exitCode: 3, startedAt: 't1', endedAt: 't1' } } });
    expect(read.hosts.filter((h) => h.status === 'distributed' && h.steps.distribute?.exitCode === 0)).toHaveLength(499);
    const kinds = new Set(reading.items.map((item) => String(item.sk).replace(/#.*/, '')));
    expect(reading.items.filter((item) => String(item.sk).startsWith('HOSTSUM#'))).toHaveLength(6);
    expect(reading.items.filter((item) => String(item.sk).startsWith('HOSTS#'))).toHaveLength(5);
    expect(reading.items.length).toBeLessThan(5 + 6 + 10);
    expect([...kinds].filter((kind) => !['ENV', 'HOSTS', 'HOSTSUM', 'RELEASE'].includes(kind))).toEqual([]);
    expect(JSON.stringify(reading.items)).not.toContain('unpacked on');
    // The output route still has every host's output.
    expect((await store.getHostStates(id)).find((h) => h.host === 'host-499')?.steps.distribute?.stdout).toContain('unpacked on host-499');
  });

  it('writes the same items for a command recorded twice in another order, and shows the newer of two commands of one kind', async () => {
    const { access, store, whole, id } = await openedRelease('plan-twice');
    await store.ensureHostStates(id, 'production', hosts, 't0');
    const itemsNow = async () => (await access.queryAll({ KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `REL#${id}` } })).length;
    await store.recordHostOutcomes(id, 'production', 'revert', hosts.slice(0, 150).map((host) => outcome(host, 0, 't1')), 't1');
    const once = await itemsNow();
    await store.recordHostOutcomes(id, 'production', 'revert', hosts.slice(0, 150).reverse().map((host) => outcome(host, 0, 't1')), 't1');
    expect(await itemsNow()).toBe(once);
    // A second revert of a few of them, later: it is what the read shows for those hosts.
    await store.recordHostOutcomes(id, 'production', 'revert', ['host-003', 'host-100'].map((host) => outcome(host, 9, 't2')), 't2');
    const read = (await whole.readWholeRelease(id))!.hosts;
    expect(read.filter((h) => h.steps.revert?.exitCode === 9).map((h) => h.host)).toEqual(['host-003', 'host-100']);
    expect(read.filter((h) => h.steps.revert?.exitCode === 0)).toHaveLength(148);
  });

  it('reads the host items and host step items written before, in both reads', async () => {
    const { access, store, whole, id } = await openedRelease('plan-before');
    const put = (Item: Record<string, unknown>) => dynamo.client.send(new PutCommand({ TableName: access.tableName, Item: { pk: `REL#${id}`, releaseId: id, environment: 'production', ...Item } }));
    const output = { exitCode: 0, stdout: 'old output', stderr: '', startedAt: '2026-01-01T00:00:01.000Z', endedAt: '2026-01-01T00:00:02.000Z' };
    // As an entry and recordHostOutcomes wrote them before: a host item each, and a step item a host
    // a step with its output and the status it set.
    await put({ sk: 'HOST#production#h1', host: 'h1', status: 'distributed', updatedAt: '2026-01-01T00:00:02.000Z' });
    await put({ sk: 'HOST#production#h3', host: 'h3', status: 'pending', updatedAt: '2026-01-01T00:00:00.000Z' });
    await put({ sk: 'HOSTSTEP#production#h1#distribute', host: 'h1', step: 'distribute', ...output, hostStatus: 'distributed', hostStatusAt: '2026-01-01T00:00:02.000Z' });
    // The same release carried on by this code: an entry of the hosts (h1 and h3 are in place already), then outcomes.
    await store.ensureHostStates(id, 'production', ['h1', 'h2', 'h3'], '2026-01-01T00:00:02.500Z');
    await store.recordHostOutcomes(id, 'production', 'distribute', [{ host: 'h2', status: 'distributed', output: { ...output, stdout: 'new output' } }], '2026-01-01T00:00:03.000Z');
    await store.recordHostOutcomes(id, 'production', 'switch', [{ host: 'h1', status: 'healthy', output: { ...output, stdout: 'switched' } }], '2026-01-01T00:00:04.000Z');
    const read = (await whole.readWholeRelease(id))!.hosts;
    expect(read.map((h) => [h.host, h.status, Object.keys(h.steps).sort()])).toEqual([
      ['h1', 'healthy', ['distribute', 'switch']],
      ['h2', 'distributed', ['distribute']],
      ['h3', 'pending', []],
    ]);
    expect((await store.getHostStates(id)).map((h) => [h.host, h.status, h.steps.distribute?.stdout])).toEqual([
      ['h1', 'healthy', 'old output'],
      ['h2', 'distributed', 'new output'],
      ['h3', 'pending', undefined],
    ]);
    // The output route's read of one host's step, from either item.
    expect(await store.getHostOutput(id, 'production', 'h1', 'distribute')).toEqual(output);
    expect((await store.getHostOutput(id, 'production', 'h2', 'distribute'))?.stdout).toBe('new output');
    expect((await store.getHostOutput(id, 'production', 'h1', 'switch'))?.stdout).toBe('switched');
    expect(await store.getHostOutput(id, 'production', 'h3', 'distribute')).toBeUndefined();
  });
});
