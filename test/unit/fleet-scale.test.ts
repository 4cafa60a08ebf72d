import { readFile } from 'node:fs/promises';
import {
  batchIndexes,
  createReleaseStages,
  createUlidGenerator,
  describeFailure,
  type EnvironmentPlan,
  MAX_BATCHES_PER_RELEASE,
  planBatches,
  type Release,
  type ReleasePlan,
  silentLogger,
  STAGE_INPUTS,
  type StageName,
  type Strategy,
  summarizePlan,
  UnprocessableError,
} from '@slipway/core';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { createDynamoReleaseStore } from '@slipway/aws';
import { functionNameOf, renderDefinition } from '@slipway/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Definition,
  type FrameResult,
  interpret,
  type Json,
  type Position,
  StatesError,
} from '../../packages/local/src/asl/interpreter.ts';
import { shopConfig } from '../support/fixtures.ts';
import { localDynamo } from '../support/stand-ins.ts';

/**
 * The state machines' data does not grow with the fleet. Both ASL files run on the local
 * interpreter with stand-in stage functions that answer exactly what the real stages answer for the
 * plan (the same core functions make the answers: planBatches, summarizePlan, batchIndexes,
 * describeFailure), and every state's input and output, every function's payload and every Map's
 * collected result is measured in full. Step Functions refuses any of them over 256 KB; the bar
 * here is 32 KB for 5,000 hosts, whatever the batch size.
 */
const STATE_LIMIT = 256 * 1024;
const BAR = 32 * 1024;
const RELEASE_ID = '01jz0000000000000000000000';

/** EC2 instance ids as SSM names them: i- and 17 hex digits. */
const instances = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `i-${prefix}${i.toString(16).padStart(17 - prefix.length, '0')}`);

interface EnvironmentSetup {
  name: string;
  hosts: string[];
  strategy: Strategy;
  approval: boolean;
  bakeSeconds: number;
}

interface Sizes {
  /** The largest state input, and which state had it. */
  input: { bytes: number; state: string };
  output: { bytes: number; state: string };
  payload: { bytes: number; fn: string };
  /** The largest array of iteration results a Map collected (before its ResultPath drops it). */
  mapResult: { bytes: number; map: string };
  entered: Record<string, number>;
  switched: number[];
  reverted: number[];
}

const size = (value: unknown) => Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');

/**
 * Runs a definition to its end. Callback tasks are completed the way commandFinished and the
 * approval service complete them (SendTaskSuccess with the step's output, SendTaskFailure with the
 * error name and a cause of up to 4,000 characters), right after their function returns.
 */
async function run(definition: Definition, environments: EnvironmentSetup[], failAt?: { environment: string; batchIndex: number }) {
  const plan: ReleasePlan = {
    releaseId: RELEASE_ID,
    app: 'shop',
    environments: environments.map(({ name, hosts, strategy, approval, bakeSeconds }) => ({
      name,
      approval,
      bakeSeconds,
      batches: planBatches(hosts, strategy),
    })),
  };
  const planned = (name: string): EnvironmentPlan => plan.environments.find((env) => env.name === name)!;
  const sizes: Sizes = {
    input: { bytes: 0, state: '' },
    output: { bytes: 0, state: '' },
    payload: { bytes: 0, fn: '' },
    mapResult: { bytes: 0, map: '' },
    entered: {},
    switched: [],
    reverted: [],
  };
  const positions = new Map<string, Position>();
  const results = new Map<string, FrameResult>();
  const waiters = new Map<string, { resolve: (output: Json) => void; reject: (error: Error) => void }>();
  const switchedBatches = new Map<string, number[]>();
  let tokens = 0;

  const succeed = (token: string, output: Json) => setImmediate(() => waiters.get(token)?.resolve(output));
  const fail = (token: string, error: string, cause: string) =>
    setImmediate(() => waiters.get(token)?.reject(new StatesError(error, cause)));

  /** The stand-in stages: what each real stage answers (or sends to the task token) for this plan. */
  const stages: Record<StageName, (payload: any) => Json> = {
    Prepare: () => summarizePlan(plan) as unknown as Json,
    // A callback task: with the lock free it completes its own token at once.
    EnterEnvironment: ({ taskToken, environment }) => {
      succeed(taskToken, { batches: batchIndexes(planned(environment)) });
      return null;
    },
    Distribute: ({ taskToken, environment }) => {
      succeed(taskToken, { hosts: planned(environment).batches.flat().length });
      return null;
    },
    AwaitApproval: ({ taskToken }) => {
      succeed(taskToken, { approved: true });
      return null;
    },
    SwitchBatch: ({ taskToken, environment, batchIndex }) => {
      const hosts = planned(environment).batches[batchIndex]!;
      sizes.switched.push(batchIndex);
      switchedBatches.set(environment, [...(switchedBatches.get(environment) ?? []), batchIndex]);
      if (failAt && failAt.environment === environment && failAt.batchIndex === batchIndex) {
        // Every host of the batch failed with a long stderr: the longest cause a host command gives.
        const failed = hosts.map((host) => ({ host, status: 'failed' as const, exitCode: 23, stdout: '', stderr: 'x'.repeat(64 * 1024), startedAt: '', endedAt: '' }));
        fail(taskToken, 'HostCommandFailedError', describeFailure('switch', environment, failed, batchIndex).slice(0, 4000));
      } else succeed(taskToken, { hosts: hosts.length });
      return null;
    },
    Watch: () => ({ next: 'done', until: new Date().toISOString() }),
    Pause: ({ taskToken }) => {
      succeed(taskToken, {});
      return null;
    },
    CompleteEnvironment: () => ({}),
    PlanRevert: ({ environment }) => ({ batches: [...(switchedBatches.get(environment) ?? [])].sort((a, b) => b - a) }),
    RevertBatch: ({ taskToken, environment, batchIndex }) => {
      sizes.reverted.push(batchIndex);
      succeed(taskToken, { hosts: planned(environment).batches[batchIndex]!.length });
      return null;
    },
    FailEnvironment: () => ({}),
    RecordFailure: () => ({}),
    Prune: ({ taskToken }) => {
      succeed(taskToken, { hosts: new Set(plan.environments.flatMap((env) => env.batches.flat())).size });
      return null;
    },
    Finalize: () => ({ status: 'succeeded' }),
  };

  const record = (slot: { bytes: number }, bytes: number, name: string, field: 'state' | 'fn' | 'map') => {
    if (bytes > slot.bytes) Object.assign(slot, { bytes, [field]: name });
  };

  let outcome: { ok: true; output: Json } | { ok: false; error: StatesError };
  try {
    const output = await interpret(
      definition,
      { releaseId: RELEASE_ID, app: 'shop' },
      {
        Execution: { Id: RELEASE_ID, Name: RELEASE_ID, Input: { releaseId: RELEASE_ID, app: 'shop' }, StartTime: new Date().toISOString() },
        StateMachine: { Id: 'release', Name: 'release' },
      },
      {
        journal: {
          positions,
          results,
          async savePosition(frame, position) {
            positions.set(frame, position);
          },
          async saveResult(frame, result) {
            results.set(frame, result);
          },
        },
        async invoke(name, payload) {
          record(sizes.payload, size(payload), name, 'fn');
          // Each payload is what the stage's schema accepts: the functions parse it at their edge.
          const parsed = STAGE_INPUTS[name as StageName].safeParse(payload);
          if (!parsed.success) throw new Error(`${name} refuses its payload: ${parsed.error.message}`);
          return stages[name as StageName](payload);
        },
        functionName: functionNameOf,
        waitForToken(token) {
          let resolve!: (output: Json) => void;
          let reject!: (error: Error) => void;
          const outcome = new Promise<Json>((ok, no) => {
            resolve = ok;
            reject = no;
          });
          waiters.set(token, { resolve, reject });
          return { outcome, release: () => waiters.delete(token) };
        },
        newToken: () => `token-${++tokens}`,
        async trace(event) {
          if (event.type === 'StateEntered') {
            sizes.entered[event.state] = (sizes.entered[event.state] ?? 0) + 1;
            record(sizes.input, size(event.input), event.state, 'state');
          }
          if (event.type === 'StateExited') record(sizes.output, size(event.output), event.state, 'state');
        },
        now: () => Date.now(),
      },
      new AbortController().signal,
    );
    outcome = { ok: true, output };
  } catch (error) {
    outcome = { ok: false, error: error as StatesError };
  }
  // A Map's result is the array of its iterations' outputs: the journal holds each one.
  const collected = new Map<string, number>();
  for (const [frame, result] of results) {
    const map = frame.replace(/\.\d+$/, '');
    collected.set(map, (collected.get(map) ?? 1) + (result.ok ? size(result.output) : 0) + 1);
  }
  for (const [map, bytes] of collected) record(sizes.mapResult, bytes, map, 'map');
  return { outcome, sizes };
}

const machines = {
  release: renderDefinition(await readFile('statemachines/release.asl.json', 'utf8')) as Definition,
  rollback: renderDefinition(await readFile('statemachines/rollback.asl.json', 'utf8')) as Definition,
};

const PRODUCTION = instances(5000, 'a');
const STAGING = instances(100, 'b');
const setups = (strategy: Strategy): EnvironmentSetup[] => [
  { name: 'staging', hosts: STAGING, strategy: { type: 'all-at-once' }, approval: false, bakeSeconds: 0 },
  { name: 'production', hosts: PRODUCTION, strategy, approval: true, bakeSeconds: 60 },
];
const STRATEGIES: [string, Strategy, number][] = [
  ['batches of 1', { type: 'rolling', batchSize: 1 }, 5000],
  ['batches of 10', { type: 'rolling', batchSize: 10 }, 500],
  ['batches of 25%', { type: 'rolling', batchSize: '25%' }, 4],
];

function expectSmall(sizes: Sizes) {
  for (const [what, measured] of Object.entries({ input: sizes.input, output: sizes.output, payload: sizes.payload, 'Map result': sizes.mapResult })) {
    expect(measured.bytes, `largest ${what}: ${JSON.stringify(measured)}`).toBeLessThan(BAR);
    expect(measured.bytes).toBeLessThan(STATE_LIMIT);
  }
}

describe('5,000 hosts through the state machines', () => {
  const report: string[] = [];

  it.each(STRATEGIES)('the release switches %s with every state well under 256 KB', async (label, strategy, batches) => {
    const { outcome, sizes } = await run(machines.release, setups(strategy));
    expect(outcome.ok, outcome.ok ? '' : `${outcome.error.error}: ${outcome.error.causeText}`).toBe(true);
    expect(sizes.entered.SwitchBatch).toBe(1 + batches);
    expect(sizes.switched).toEqual([0, ...Array.from({ length: batches }, (_, i) => i)]);
    expectSmall(sizes);
    report.push(`${label}, succeeded: input ${sizes.input.bytes} B (${sizes.input.state}), output ${sizes.output.bytes} B (${sizes.output.state}), payload ${sizes.payload.bytes} B (${sizes.payload.fn}), Map result ${sizes.mapResult.bytes} B`);
  }, 120_000);

  it.each(STRATEGIES)('a release failing at its last batch of %s reverts every batch with every state well under 256 KB', async (label, strategy, batches) => {
    const { outcome, sizes } = await run(machines.release, setups(strategy), { environment: 'production', batchIndex: batches - 1 });
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.error.error).toBe('HostCommandFailedError');
    // Newest first, every one of them.
    expect(sizes.reverted).toEqual(Array.from({ length: batches }, (_, i) => batches - 1 - i));
    expectSmall(sizes);
    report.push(`${label}, reverted: input ${sizes.input.bytes} B (${sizes.input.state}), output ${sizes.output.bytes} B (${sizes.output.state}), payload ${sizes.payload.bytes} B (${sizes.payload.fn}), Map result ${sizes.mapResult.bytes} B`);
  }, 120_000);

  it('a rollback of 5,000 hosts in batches of 1 stays as small', async () => {
    const { outcome, sizes } = await run(machines.rollback, [{ name: 'production', hosts: PRODUCTION, strategy: { type: 'rolling', batchSize: 1 }, approval: false, bakeSeconds: 0 }]);
    expect(outcome.ok).toBe(true);
    expect(sizes.entered.Distribute).toBeUndefined();
    expect(sizes.entered.SwitchBatch).toBe(5000);
    expectSmall(sizes);
    report.push(`rollback, batches of 1: input ${sizes.input.bytes} B (${sizes.input.state}), Map result ${sizes.mapResult.bytes} B`);
    console.log(`state data for 5,000 hosts (staging 100 + production 5,000):\n  ${report.join('\n  ')}`);
  }, 120_000);
});

describe('the stored plan at 5,000 hosts', () => {
  let dynamo: Awaited<ReturnType<typeof localDynamo>>;
  beforeAll(async () => {
    dynamo = await localDynamo('slipway-scale');
  });
  afterAll(async () => dynamo.close());

  function release(id: string, strategy: Strategy): Release {
    const environments = shopConfig.environments.map((env) => ({ ...env, targets: { tags: { Ring: env.name } }, strategy }));
    return {
      id,
      app: 'shop',
      version: '1.0.0',
      artifact: { key: 'artifacts/shop/x.tar.gz', sha256: 'a'.repeat(64), size: 10 },
      description: '',
      status: 'pending',
      openedBy: 'alice@example.com',
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
      config: { ...shopConfig, environments },
    };
  }

  /** The real stages on the local DynamoDB, with a fleet of 5,000 reachable hosts per environment. */
  async function prepared(id: string, strategy: Strategy) {
    const store = createDynamoReleaseStore(dynamo.client, dynamo.tableName);
    const fleet = {
      resolveTargets: async () => ({ hosts: PRODUCTION, unreachable: [] }),
      send: async () => {},
      results: async () => ({ finished: false, invocations: [] }),
    };
    const unused = {} as never;
    const stages = createReleaseStages({
      store,
      fleet,
      clock: { now: () => new Date() },
      ids: createUlidGenerator(),
      workflow: unused,
      objects: unused,
      approvals: unused,
      logger: silentLogger,
    });
    const opened = release(id, strategy);
    const environments = opened.config.environments.map((env, order) => ({ releaseId: id, app: 'shop', environment: env.name, order, status: 'pending' as const }));
    await store.createRelease(opened, environments);
    return { store, stages, answer: await stages.prepare({ releaseId: id, app: 'shop' }).catch((error: unknown) => error) };
  }

  it('Prepare stores every environment\'s 5,000 hosts and answers a summary of a few hundred bytes', async () => {
    const { store, answer } = await prepared('01jzscale00000000000000001', { type: 'rolling', batchSize: 20 });
    expect(answer).toEqual({
      environments: [
        { name: 'staging', approval: false, bakeSeconds: 0, batchCount: 250 },
        { name: 'production', approval: true, bakeSeconds: 60, batchCount: 250 },
      ].map((env) => expect.objectContaining(env)),
    });
    expect(size(answer)).toBeLessThan(300);
    const plan = (await store.getPlan('01jzscale00000000000000001'))!;
    expect(plan.environments.map((env) => env.batches.flat())).toEqual([PRODUCTION, PRODUCTION]);
    // One item would not do: DynamoDB refuses items over 400 KB, and two environments of 5,000 come close.
    expect(size(plan)).toBeGreaterThan(200 * 1024);
  });

  it('a plan too big for one DynamoDB item is stored all the same, one item per environment, first writer wins', async () => {
    const store = createDynamoReleaseStore(dynamo.client, dynamo.tableName);
    const environment = (name: string, hosts: string[]): EnvironmentPlan => ({ name, approval: false, bakeSeconds: 0, batches: planBatches(hosts, { type: 'rolling', batchSize: 1 }) });
    const plan: ReleasePlan = {
      releaseId: '01jzscale00000000000000002',
      app: 'shop',
      environments: ['dev', 'qa', 'staging', 'production'].map((name) => environment(name, PRODUCTION)),
    };
    const whole = { pk: 'SIZE#probe', sk: 'PLAN', ...plan };
    await expect(dynamo.client.send(new PutCommand({ TableName: dynamo.tableName, Item: whole }))).rejects.toThrow(/size/i);
    expect(await store.savePlan(plan)).toEqual(plan);
    expect(await store.getPlan(plan.releaseId)).toEqual(plan);
    // A second Prepare (a retry) that resolved other hosts gets the plan stored first.
    const other = { ...plan, environments: plan.environments.map((env) => environment(env.name, STAGING)) };
    expect(await store.savePlan(other)).toEqual(plan);
  });

  it('Prepare refuses a plan with more batches than one execution\'s history can hold, before touching a host', async () => {
    // One environment of 5,000 in batches of 10 fits (500); the limit counts the whole release.
    expect(planBatches(PRODUCTION, { type: 'rolling', batchSize: 10 }).length).toBeLessThanOrEqual(MAX_BATCHES_PER_RELEASE);
    const { store, answer } = await prepared('01jzscale00000000000000003', { type: 'rolling', batchSize: 1 });
    expect(answer).toBeInstanceOf(UnprocessableError);
    expect((answer as Error).message).toBe(
      'the plan has 10,000 batches (staging 5,000 batches, production 5,000 batches); one release switches at most 700 ' +
      '(a Step Functions execution holds at most 25,000 history events): use larger batches',
    );
    expect(await store.getPlan('01jzscale00000000000000003')).toBeUndefined();
  });
});

describe('stage inputs carry no host', () => {
  it('takes no host list: stages look hosts up in the stored plan', () => {
    const batch = { taskToken: 't', releaseId: RELEASE_ID, environment: 'production', batchIndex: 3 };
    expect(STAGE_INPUTS.SwitchBatch.parse({ ...batch, hosts: ['i-0a'] })).toEqual(batch);
    expect(STAGE_INPUTS.RevertBatch.safeParse({ ...batch, batchIndex: -1 }).success).toBe(false);
    expect(STAGE_INPUTS.EnterEnvironment.safeParse({ releaseId: RELEASE_ID, environment: { name: 'production', batches: [['i-0a']] } }).success).toBe(false);
    expect(STAGE_INPUTS.Distribute.safeParse({ taskToken: 't', releaseId: RELEASE_ID, environment: 'production' }).success).toBe(true);
  });
});
