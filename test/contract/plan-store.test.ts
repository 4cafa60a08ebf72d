import { createDynamoPlanStore, createTableAccess } from '@slipway/aws';
import type { PlanStore, ReleasePlan } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createMemoryPlanStore } from '../../packages/core/src/testing/memory-release-store.ts';
import { implementations, releaseId } from './implementations.ts';

const stores = implementations<PlanStore>('plans', createMemoryPlanStore, (client, table) => createDynamoPlanStore(createTableAccess(client, table)));

const planOf = (id: string, hosts = ['h1', 'h2', 'h3']): ReleasePlan => ({
  releaseId: id,
  app: 'shop',
  environments: [
    { name: 'staging', approval: false, bakeSeconds: 0, batches: [['s1']] },
    { name: 'production', approval: true, bakeSeconds: 60, batches: hosts.map((h) => [h]) },
  ],
});

/** `h000`, `h001`...: names that sort as they count. */
const hostNames = (count: number) => Array.from({ length: count }, (_, i) => `h${String(i).padStart(3, '0')}`);

const output = (stdout: string) => ({ exitCode: 0, stdout, stderr: '', startedAt: 't0', endedAt: 't1' });

describe.each(stores)('plan store contract: %s', (_name, make) => {
  it('stores a plan once, in pipeline order; a second save gets the plan stored first', async () => {
    const store = await make();
    const id = releaseId();
    expect(await store.getPlan(id)).toBeUndefined();
    expect(await store.savePlan(planOf(id))).toEqual(planOf(id));
    expect(await store.savePlan(planOf(id, ['other']))).toEqual(planOf(id));
    expect(await store.getPlan(id)).toEqual(planOf(id));
  });

  it('two Prepares saving at once both answer the same plan', async () => {
    const store = await make();
    const id = releaseId();
    const [a, b] = await Promise.all([store.savePlan(planOf(id, ['a1', 'a2'])), store.savePlan(planOf(id, ['b1', 'b2']))]);
    expect(a).toEqual(b);
    expect(await store.getPlan(id)).toEqual(a);
  });

  it('keeps a canary\'s pauses with the environment they belong to', async () => {
    const store = await make();
    const id = releaseId();
    const pauses = [{ afterBatch: 0, step: 1 }, { afterBatch: 1, step: 3, seconds: 600 }];
    const plan = { ...planOf(id), environments: [planOf(id).environments[0]!, { ...planOf(id).environments[1]!, pauses }] };
    await store.savePlan(plan);
    const stored = await store.getPlan(id);
    expect(stored?.environments[1]?.pauses).toEqual(pauses);
    expect(stored?.environments[0]?.pauses).toBeUndefined();
  });

  it('keeps the sha256 of the artifact the server checked, and no such mark on a plan without it', async () => {
    const store = await make();
    const [checked, unchecked] = [releaseId(), releaseId()];
    await store.savePlan({ ...planOf(checked), artifactChecked: 'ab'.repeat(32) });
    await store.savePlan(planOf(unchecked));
    expect((await store.getPlan(checked))?.artifactChecked).toBe('ab'.repeat(32));
    expect(await store.getPlan(unchecked)).not.toHaveProperty('artifactChecked');
  });

  it('holds a plan of 5,000 hosts', async () => {
    const store = await make();
    const id = releaseId();
    const hosts = Array.from({ length: 5000 }, (_, i) => `i-${i.toString(16).padStart(17, '0')}`);
    const plan = { ...planOf(id), environments: [{ name: 'production', approval: false, bakeSeconds: 0, batches: [hosts.slice(0, 2500), hosts.slice(2500)] }] };
    await store.savePlan(plan);
    expect((await store.getPlan(id))?.environments[0]?.batches.flat()).toHaveLength(5000);
  });

  it('creates host records once in pending, and keeps their status and outputs', async () => {
    const store = await make();
    const id = releaseId();
    await store.ensureHostStates(id, 'staging', ['h1', 'h2'], 't0');
    await store.recordHostOutcomes(id, 'staging', 'distribute', [{ host: 'h1', status: 'distributed', output: output('ok') }], 't1');
    // Creating again leaves what is there alone.
    await store.ensureHostStates(id, 'staging', ['h1'], 't2');
    const hosts = await store.getHostStates(id);
    expect(hosts.map((h) => [h.host, h.status, h.updatedAt])).toEqual([
      ['h1', 'distributed', 't1'],
      ['h2', 'pending', 't0'],
    ]);
    expect(hosts[0]).toEqual({ releaseId: id, environment: 'staging', host: 'h1', status: 'distributed', updatedAt: 't1', steps: { distribute: output('ok') } });
    expect(hosts[1]?.steps).toEqual({});
  });

  it('reads one host\'s output of one step, the last recorded, and nothing for a step, host, environment or release without one', async () => {
    const store = await make();
    const id = releaseId();
    await store.ensureHostStates(id, 'staging', ['h1', 'h2'], 't0');
    await store.ensureHostStates(id, 'production', ['h1'], 't0');
    await store.recordHostOutcomes(id, 'staging', 'distribute', [{ host: 'h1', status: 'distributed', output: output('first') }], 't1');
    await store.recordHostOutcomes(id, 'staging', 'distribute', [{ host: 'h1', output: output('again') }, { host: 'h2', output: output('h2 too') }], 't2');
    await store.recordHostOutcomes(id, 'production', 'distribute', [{ host: 'h1', output: output('in production') }], 't3');
    expect(await store.getHostOutput(id, 'staging', 'h1', 'distribute')).toEqual(output('again'));
    expect(await store.getHostOutput(id, 'staging', 'h2', 'distribute')).toEqual(output('h2 too'));
    expect(await store.getHostOutput(id, 'production', 'h1', 'distribute')).toEqual(output('in production'));
    // The same as the whole read shows.
    const h1 = (await store.getHostStates(id)).find((h) => h.environment === 'staging' && h.host === 'h1');
    expect(h1?.steps.distribute).toEqual(await store.getHostOutput(id, 'staging', 'h1', 'distribute'));
    for (const [environment, host, step] of [['staging', 'h1', 'switch'], ['staging', 'h3', 'distribute'], ['canary', 'h1', 'distribute']]) {
      expect(await store.getHostOutput(id, environment!, host!, step!), `${environment}/${host}/${step}`).toBeUndefined();
    }
    expect(await store.getHostOutput(releaseId(), 'staging', 'h1', 'distribute')).toBeUndefined();
  });

  it('two entries at once create each host of the environment once, in pending', async () => {
    const store = await make();
    const id = releaseId();
    // 260 hosts: three items of entered hosts on DynamoDB (100 an item). Another environment's hosts are not these.
    const hosts = hostNames(260);
    await store.ensureHostStates(id, 'staging', ['h000'], 't0');
    await Promise.all([store.ensureHostStates(id, 'production', hosts, 't1'), store.ensureHostStates(id, 'production', hosts, 't2')]);
    const states = await store.getHostStates(id);
    expect(states.filter((h) => h.environment === 'production').map((h) => h.host)).toEqual(hosts);
    expect(states.filter((h) => h.environment === 'production').every((h) => h.status === 'pending' && ['t1', 't2'].includes(h.updatedAt))).toBe(true);
    expect(states.filter((h) => h.environment === 'staging')).toEqual([{ releaseId: id, environment: 'staging', host: 'h000', status: 'pending', updatedAt: 't0', steps: {} }]);
  });

  it('a second entry never moves a host back: switched and failed hosts stay so, with their outputs; only hosts new to it are created', async () => {
    const store = await make();
    const id = releaseId();
    const hosts = hostNames(30);
    await store.ensureHostStates(id, 'production', hosts, 't0');
    await store.recordHostOutcomes(
      id,
      'production',
      'switch',
      hosts.map((host, i) => ({ host, status: i % 3 === 0 ? ('failed' as const) : ('switched' as const), output: output(`out ${host}`) })),
      't1',
    );
    const before = await store.getHostStates(id);
    // Entered again, twice at once (the resumed task and a wake-up), with one host the first entry did not have.
    await Promise.all([
      store.ensureHostStates(id, 'production', [...hosts, 'h99'], 't2'),
      store.ensureHostStates(id, 'production', [...hosts, 'h99'], 't3'),
    ]);
    const after = await store.getHostStates(id);
    expect(after.slice(0, 30)).toEqual(before);
    expect(after.slice(0, 30).map((h) => h.status)).toEqual(hosts.map((_, i) => (i % 3 === 0 ? 'failed' : 'switched')));
    expect(after[30]).toMatchObject({ host: 'h99', status: 'pending', steps: {} });
  });

  it('lists hosts by environment then host, each with every step it ran, the last write of a step winning', async () => {
    const store = await make();
    const id = releaseId();
    await store.ensureHostStates(id, 'staging', ['b', 'a'], 't0');
    await store.ensureHostStates(id, 'production', ['c'], 't0');
    // Outputs with no status (a hook that ran) leave the host's status alone.
    await store.recordHostOutcomes(id, 'staging', 'distribute', [{ host: 'a', output: output('one') }], 't1');
    await store.recordHostOutcomes(id, 'staging', 'switch', [{ host: 'a', output: output('two') }], 't2');
    await store.recordHostOutcomes(id, 'staging', 'switch', [{ host: 'a', output: output('three') }], 't3');
    expect((await store.getHostStates(id)).map((h) => `${h.environment}/${h.host}`)).toEqual(['production/c', 'staging/a', 'staging/b']);
    expect((await store.getHostStates(id))[1]?.steps).toEqual({ distribute: output('one'), switch: output('three') });
    expect((await store.getHostStates(id)).map((h) => [h.status, h.updatedAt])).toEqual([['pending', 't0'], ['pending', 't0'], ['pending', 't0']]);
  });

  it('records many hosts\' outcomes at once, past one batch: each output, and the status only where one is given', async () => {
    const store = await make();
    const id = releaseId();
    // 140 hosts are 140 output items and two summaries: six BatchWriteItem calls of at most 25 on DynamoDB.
    const hosts = hostNames(140);
    await store.ensureHostStates(id, 'production', hosts, 't0');
    await store.recordHostOutcomes(
      id,
      'production',
      'distribute',
      hosts.map((host, i) => ({ host, ...(i % 10 === 3 ? {} : { status: i === 7 ? ('failed' as const) : ('distributed' as const) }), output: output(`out ${host}`) })),
      't1',
    );
    const states = await store.getHostStates(id);
    expect(states).toHaveLength(140);
    for (const [i, state] of states.entries()) {
      expect(state.host).toBe(hosts[i]);
      expect(state.steps).toEqual({ distribute: output(`out ${hosts[i]}`) });
      const expected = i % 10 === 3 ? ['pending', 't0'] : [i === 7 ? 'failed' : 'distributed', 't1'];
      expect([state.status, state.updatedAt]).toEqual(expected);
    }
    // The same call again (a status callback retried after a failure part-way) writes the same.
    await store.recordHostOutcomes(id, 'production', 'distribute', [{ host: 'h000', status: 'distributed', output: output('out h000') }], 't1');
    expect(await store.getHostStates(id)).toEqual(states);
  });

  it('an outcome with a status on a host with no record yet creates it; one without a status does not', async () => {
    const store = await make();
    const id = releaseId();
    await store.recordHostOutcomes(
      id,
      'production',
      'distribute',
      [{ host: 'h9', status: 'failed', output: output('no space left') }, { host: 'h8', output: output('no record') }],
      't5',
    );
    expect(await store.getHostStates(id)).toEqual([
      { releaseId: id, environment: 'production', host: 'h9', status: 'failed', updatedAt: 't5', steps: { distribute: output('no space left') } },
    ]);
  });
});
