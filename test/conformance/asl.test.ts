import { createLogger, createUlidGenerator, StaleTaskTokenError } from '@slipway/core';
import { createLocalExecutor, type LocalExecutor, type LocalFunction, LOCAL_FUNCTION_ARN_PREFIX } from '@slipway/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localDynamo } from '../support/stand-ins.ts';

/**
 * The local executor against what the AWS Step Functions documentation says, one small machine per
 * rule. Each test names the page it follows. Restarts are real: the executor is closed and a new
 * one resumes from what it journaled in the local DynamoDB.
 */
const DOCS = 'https://docs.aws.amazon.com/step-functions/latest/dg';
const CALLBACK = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
const arn = (name: string) => `${LOCAL_FUNCTION_ARN_PREFIX}${name}`;

let dynamo: Awaited<ReturnType<typeof localDynamo>>;
const ids = createUlidGenerator();
const open: LocalExecutor[] = [];
let counter = 0;

beforeAll(async () => {
  dynamo = await localDynamo('conformance');
});
afterAll(async () => {
  for (const executor of open) await executor.close();
  await dynamo.close();
});

function executorFor(definition: object, functions: Record<string, LocalFunction>) {
  const executor = createLocalExecutor({
    client: dynamo.client,
    tableName: dynamo.tableName,
    machines: { m: definition as never },
    ids,
    logger: createLogger({ service: 'conformance', level: 'error', write: () => {} }),
  });
  executor.register(functions);
  open.push(executor);
  return executor;
}

async function ended(executor: LocalExecutor, executionId: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const record = await executor.describe(executionId);
    if (record && record.status !== 'RUNNING') return record;
    if (Date.now() > deadline) throw new Error(`${executionId} still runs after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function until<T>(what: string, read: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function run(definition: object, functions: Record<string, LocalFunction>, input: Record<string, unknown> = {}) {
  const executor = executorFor(definition, functions);
  const { executionId } = await executor.startExecution('m', `run-${++counter}`, input);
  const record = await ended(executor, executionId);
  const output = (record as { output?: string }).output;
  return { record, output: output ? JSON.parse(output) : undefined, history: await executor.history(executionId), executor, executionId };
}

const task = (name: string, extra: object = {}) => ({ Type: 'Task', Resource: arn(name), TimeoutSeconds: 30, ...extra });
const callbackTask = (name: string, extra: object = {}) => ({
  Type: 'Task',
  Resource: CALLBACK,
  Parameters: { FunctionName: arn(name), Payload: { 'token.$': '$$.Task.Token', 'input.$': '$' } },
  TimeoutSeconds: 60,
  ...extra,
});
const mapOver = (processor: object, extra: object = {}) => ({
  Type: 'Map',
  ItemsPath: '$.items',
  MaxConcurrency: 1,
  ItemProcessor: { ProcessorConfig: { Mode: 'INLINE' }, ...processor },
  ...extra,
});
function failing(name: string, message: string) {
  const error = new Error(message);
  error.name = name;
  return error;
}
/**
 * A function's error as a Catch gets it from Lambda: `Error` is the errorType, `Cause` the Node.js
 * runtime's error document as JSON (errorType, errorMessage, and the stack as trace lines).
 */
function lambdaError(errorType: string, errorMessage: string) {
  const document = { errorType, errorMessage, trace: expect.arrayContaining([`${errorType}: ${errorMessage}`, expect.stringMatching(/^\s+at /)]) };
  return {
    Error: errorType,
    Cause: expect.toSatisfy((cause: unknown) => typeof cause === 'string' && expect.objectContaining(document).asymmetricMatch(JSON.parse(cause))),
  };
}

describe(`Map state, inline (${DOCS}/state-map-inline.html)`, () => {
  it('"the failure of any iteration causes the Map state to fail": with MaxConcurrency 1 no later iteration starts', async () => {
    const seen: number[] = [];
    const { record, history } = await run(
      { StartAt: 'Each', States: { Each: mapOver({ StartAt: 'Work', States: { Work: task('Work', { End: true }) } }, { End: true }) } },
      {
        Work: async (item) => {
          seen.push(Number(item));
          if (Number(item) === 1) throw failing('HostCommandFailedError', 'batch 2 failed');
          return item;
        },
      },
      { items: [0, 1, 2, 3] },
    );
    expect(seen).toEqual([0, 1]);
    expect(record.status).toBe('FAILED');
    expect(record.error).toBe('HostCommandFailedError');
    expect(history.filter((e) => e.type === 'MapIterationStarted').map((e) => e.index)).toEqual([0, 1]);
  });

  it('a Catch on the Map applies to the Map as a whole: the machine goes on from the catcher, not the next item', async () => {
    const seen: number[] = [];
    const { record, output } = await run(
      {
        StartAt: 'Each',
        States: {
          Each: mapOver(
            { StartAt: 'Work', States: { Work: task('Work', { End: true }) } },
            { ResultPath: '$.results', Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'Recovered' }], Next: 'Done' },
          ),
          Recovered: { Type: 'Pass', End: true },
          Done: { Type: 'Succeed' },
        },
      },
      {
        Work: async (item) => {
          seen.push(Number(item));
          if (Number(item) === 2) throw failing('Boom', 'item 2');
          return item;
        },
      },
      { items: [0, 1, 2, 3, 4] },
    );
    expect(record.status).toBe('SUCCEEDED');
    expect(seen).toEqual([0, 1, 2]);
    expect(output).toEqual({ items: [0, 1, 2, 3, 4], failure: lambdaError('Boom', 'item 2') });
  });

  it('"All iterations stop when the Map state fails": a sibling waiting on a token is released', async () => {
    const tokens: string[] = [];
    const executor = executorFor(
      {
        StartAt: 'Each',
        States: {
          Each: mapOver(
            {
              StartAt: 'Kind',
              States: {
                Kind: { Type: 'Choice', Choices: [{ Variable: '$', NumericEquals: 0, Next: 'Wait' }], Default: 'Fail' },
                Wait: callbackTask('Hold', { End: true }),
                Fail: task('Fail', { End: true }),
              },
            },
            { MaxConcurrency: 0, End: true },
          ),
        },
      },
      {
        Hold: async (payload) => {
          tokens.push(String(payload.token));
          return {};
        },
        Fail: async () => {
          await until('the waiting sibling', () => (tokens.length > 0 ? true : undefined));
          throw failing('Boom', 'second item');
        },
      },
    );
    const { executionId } = await executor.startExecution('m', `run-${++counter}`, { items: [0, 1] });
    const record = await ended(executor, executionId);
    expect(record.status).toBe('FAILED');
    expect(record.error).toBe('Boom');
    await expect(executor.sendTaskSuccess(tokens[0]!, {})).rejects.toBeInstanceOf(StaleTaskTokenError);
  });

  it('"the retry policy applies to all Map state iterations": a retried Map runs every item again', async () => {
    const seen: number[] = [];
    let failures = 0;
    const { record } = await run(
      {
        StartAt: 'Each',
        States: {
          Each: mapOver(
            { StartAt: 'Work', States: { Work: task('Work', { End: true }) } },
            { Retry: [{ ErrorEquals: ['Flaky'], IntervalSeconds: 1, MaxAttempts: 1 }], End: true },
          ),
        },
      },
      {
        Work: async (item) => {
          seen.push(Number(item));
          if (Number(item) === 1 && failures++ === 0) throw failing('Flaky', 'once');
          return item;
        },
      },
      { items: [0, 1, 2] },
    );
    expect(record.status).toBe('SUCCEEDED');
    expect(seen).toEqual([0, 1, 0, 1, 2]);
  });
});

describe(`Task timeouts (${DOCS}/state-task.html)`, () => {
  it('TimeoutSeconds: a callback task that hears nothing "times out with the States.Timeout error"', async () => {
    const { record } = await run({ StartAt: 'Wait', States: { Wait: callbackTask('Hold', { TimeoutSeconds: 1, End: true }) } }, { Hold: async () => ({}) });
    expect(record.status).toBe('FAILED');
    expect(record.error).toBe('States.Timeout');
  });

  it('HeartbeatSeconds: silence fails the task with States.HeartbeatTimeout, which a States.Timeout catcher also catches (concepts-error-handling.html)', async () => {
    const { record, output, history } = await run(
      {
        StartAt: 'Wait',
        States: {
          Wait: callbackTask('Hold', { HeartbeatSeconds: 1, TimeoutSeconds: 30, Catch: [{ ErrorEquals: ['States.Timeout'], Next: 'Caught' }], End: true }),
          Caught: { Type: 'Pass', End: true },
        },
      },
      { Hold: async () => ({}) },
    );
    expect(record.status).toBe('SUCCEEDED');
    expect(output.Error).toBe('States.HeartbeatTimeout');
    expect(history.some((e) => e.type === 'StateFailed' && e.error === 'States.HeartbeatTimeout')).toBe(true);
  });

  it('TimeoutSecondsPath: the timeout comes from the state input; a catcher of States.Timeout goes on, and SendTaskSuccess before it ends the task at once', async () => {
    const definition = {
      StartAt: 'Hold',
      States: {
        Hold: callbackTask('Hold', { TimeoutSeconds: undefined, TimeoutSecondsPath: '$.seconds', ResultPath: '$.held', Catch: [{ ErrorEquals: ['States.Timeout'], ResultPath: '$.held', Next: 'TimedOut' }], End: true }),
        TimedOut: { Type: 'Pass', End: true },
      },
    };
    const timedOut = await run(definition, { Hold: async () => ({}) }, { seconds: 1 });
    expect(timedOut.record.status).toBe('SUCCEEDED');
    expect(timedOut.output.held.Error).toBe('States.Timeout');
    expect(timedOut.history.some((e) => e.type === 'StateEntered' && e.state === 'TimedOut')).toBe(true);

    let token = '';
    const executor = executorFor(definition, {
      Hold: async (payload) => {
        token = String(payload.token);
        return {};
      },
    });
    const { executionId } = await executor.startExecution('m', `run-${++counter}`, { seconds: 3600 });
    await executor.sendTaskSuccess(await until('the token', () => token || undefined), { promoted: true });
    const record = await ended(executor, executionId);
    expect(record.status).toBe('SUCCEEDED');
    expect(JSON.parse((record as { output?: string }).output!).held).toEqual({ promoted: true });
  });

  it('TimeoutSecondsPath must select a positive integer: anything else is States.Runtime, which States.ALL does not catch', async () => {
    const definition = {
      StartAt: 'Hold',
      States: {
        Hold: callbackTask('Hold', { TimeoutSeconds: undefined, TimeoutSecondsPath: '$.seconds', Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Caught' }], End: true }),
        Caught: { Type: 'Pass', End: true },
      },
    };
    for (const seconds of [0, 1.5, '10']) {
      const { record } = await run(definition, { Hold: async () => ({}) }, { seconds });
      expect(record.status, JSON.stringify(seconds)).toBe('FAILED');
      expect(record.error).toBe('States.Runtime');
    }
  });

  it('SendTaskHeartbeat "resets the Heartbeat clock" (apireference/API_SendTaskHeartbeat.html)', async () => {
    let token = '';
    const executor = executorFor(
      { StartAt: 'Wait', States: { Wait: callbackTask('Hold', { HeartbeatSeconds: 1, TimeoutSeconds: 30, End: true }) } },
      {
        Hold: async (payload) => {
          token = String(payload.token);
          return {};
        },
      },
    );
    const { executionId } = await executor.startExecution('m', `run-${++counter}`, {});
    await until('the token', () => token || undefined);
    // Heartbeats for well past HeartbeatSeconds: the task must still be waiting afterwards.
    const beatsUntil = Date.now() + 2500;
    while (Date.now() < beatsUntil) {
      await executor.sendTaskHeartbeat(token);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await executor.sendTaskSuccess(token, { finished: true });
    const record = await ended(executor, executionId);
    expect(record.status).toBe('SUCCEEDED');
    expect(JSON.parse((record as { output?: string }).output!)).toEqual({ finished: true });
  });
});

describe(`Error names, Retry and Catch (${DOCS}/concepts-error-handling.html)`, () => {
  it('"A retry or catch on States.ALL won\'t catch States.Runtime errors": a path that selects nothing fails the execution', async () => {
    const { record } = await run(
      {
        StartAt: 'Use',
        States: {
          Use: task('Echo', { Parameters: { 'value.$': '$.missing.field' }, Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Caught' }], End: true }),
          Caught: { Type: 'Pass', End: true },
        },
      },
      { Echo: async (payload) => payload },
    );
    expect(record.status).toBe('FAILED');
    expect(record.error).toBe('States.Runtime');
  });

  it('"States.TaskFailed acts as a wildcard that matches any known error name except for States.Timeout"', async () => {
    const definition = (fail: string) => ({
      StartAt: 'Work',
      States: {
        Work: fail === 'timeout'
          ? callbackTask('Hold', { TimeoutSeconds: 1, Catch: [{ ErrorEquals: ['States.TaskFailed'], Next: 'Caught' }], End: true })
          : task('Throw', { Catch: [{ ErrorEquals: ['States.TaskFailed'], Next: 'Caught' }], End: true }),
        Caught: { Type: 'Pass', End: true },
      },
    });
    const functions = { Hold: async () => ({}), Throw: async () => Promise.reject(failing('AnyError', 'x')) };
    expect((await run(definition('error'), functions)).record.status).toBe('SUCCEEDED');
    const timedOut = await run(definition('timeout'), functions);
    expect(timedOut.record.status).toBe('FAILED');
    expect(timedOut.record.error).toBe('States.Timeout');
  });

  it('MaxAttempts counts retries after the first attempt; 0 "specifies that the error is never retried"; each retrier counts its own', async () => {
    const attempts = { a: 0, b: 0, c: 0 };
    const machine = (fn: string, retry: object[]) => ({ StartAt: 'Work', States: { Work: task(fn, { Retry: retry, End: true }) } });
    const functions = {
      A: async () => Promise.reject(failing('Flaky', String(++attempts.a))),
      B: async () => Promise.reject(failing('Flaky', String(++attempts.b))),
      C: async () => Promise.reject(failing(++attempts.c % 2 ? 'One' : 'Two', String(attempts.c))),
    };
    expect((await run(machine('A', [{ ErrorEquals: ['Flaky'], IntervalSeconds: 1, BackoffRate: 1, MaxAttempts: 2 }]), functions)).record.error).toBe('Flaky');
    expect(attempts.a).toBe(3);
    await run(machine('B', [{ ErrorEquals: ['Flaky'], MaxAttempts: 0 }]), functions);
    expect(attempts.b).toBe(1);
    await run(machine('C', [{ ErrorEquals: ['One'], IntervalSeconds: 1, MaxAttempts: 1 }, { ErrorEquals: ['Two'], IntervalSeconds: 1, MaxAttempts: 1 }]), functions);
    // One, Two (each retrier's one retry), One again: the first retrier is spent, so the task fails.
    expect(attempts.c).toBe(3);
  });

  it('a Catcher without ResultPath "selects and overwrites the entire input" with the error output {Error, Cause}', async () => {
    const { output } = await run(
      { StartAt: 'Work', States: { Work: task('Throw', { Catch: [{ ErrorEquals: ['Mine'], Next: 'Caught' }], End: true }), Caught: { Type: 'Pass', End: true } } },
      { Throw: async () => Promise.reject(failing('Mine', 'what happened')) },
      { keep: 'me' },
    );
    expect(output).toEqual(lambdaError('Mine', 'what happened'));
  });
});

describe('Fail, Choice and Lambda tasks', () => {
  it(`Fail takes its Error and Cause from paths (${DOCS}/state-fail.html)`, async () => {
    const { record } = await run(
      { StartAt: 'Stop', States: { Stop: { Type: 'Fail', ErrorPath: '$.failure.Error', CausePath: '$.failure.Cause' } } },
      {},
      { failure: { Error: 'HostCommandFailedError', Cause: 'host 2 exited 23' } },
    );
    expect([record.error, record.cause]).toEqual(['HostCommandFailedError', 'host 2 exited 23']);
  });

  it(`a Choice with no match and no Default fails with States.NoChoiceMatched (${DOCS}/state-choice.html)`, async () => {
    const { record } = await run(
      { StartAt: 'Pick', States: { Pick: { Type: 'Choice', Choices: [{ Variable: '$.n', NumericGreaterThan: 5, Next: 'Big' }] }, Big: { Type: 'Succeed' } } },
      {},
      { n: 1 },
    );
    expect(record.error).toBe('States.NoChoiceMatched');
  });

  it(`a function ARN as Resource: "the task result contains only the function output"; a thrown error keeps its name, its Cause is the error document (${DOCS}/connect-lambda.html)`, async () => {
    const { output } = await run(
      {
        StartAt: 'Call',
        States: {
          Call: task('Answer', { ResultPath: '$.answer', Next: 'Throw' }),
          Throw: task('Throw', { Catch: [{ ErrorEquals: ['EnvironmentLockedError'], ResultPath: '$.caught', Next: 'Done' }], End: true }),
          Done: { Type: 'Succeed' },
        },
      },
      { Answer: async () => ({ value: 42 }), Throw: async () => Promise.reject(failing('EnvironmentLockedError', 'held by 01x')) },
      {},
    );
    expect(output).toEqual({ answer: { value: 42 }, caught: lambdaError('EnvironmentLockedError', 'held by 01x') });
  });
});

describe(`.waitForTaskToken (${DOCS}/connect-to-resource.html)`, () => {
  it('SendTaskSuccess\'s output is the result, SendTaskFailure\'s error is the task\'s error, a token of an ended task is refused', async () => {
    const tokens: string[] = [];
    const executor = executorFor(
      {
        StartAt: 'First',
        States: {
          First: callbackTask('Hold', { ResultPath: '$.first', Next: 'Second' }),
          Second: callbackTask('Hold', { Catch: [{ ErrorEquals: ['ApprovalRejectedError'], ResultPath: '$.rejected', Next: 'Done' }], End: true }),
          Done: { Type: 'Succeed' },
        },
      },
      {
        Hold: async (payload) => {
          tokens.push(String(payload.token));
          return {};
        },
      },
    );
    const { executionId } = await executor.startExecution('m', `run-${++counter}`, {});
    await until('the first token', () => tokens[0]);
    await executor.sendTaskSuccess(tokens[0]!, { approvedBy: 'lead' });
    await until('the second token', () => tokens[1]);
    expect(tokens[1]).not.toBe(tokens[0]);
    await expect(executor.sendTaskSuccess(tokens[0]!, {})).rejects.toBeInstanceOf(StaleTaskTokenError);
    await executor.sendTaskFailure(tokens[1]!, 'ApprovalRejectedError', 'no');
    const record = await ended(executor, executionId);
    expect(JSON.parse((record as { output?: string }).output!)).toEqual({
      first: { approvedBy: 'lead' },
      rejected: { Error: 'ApprovalRejectedError', Cause: 'no' },
    });
  });
});

describe('durability: a restart resumes every frame where it stood', () => {
  const nested = {
    StartAt: 'Prepare',
    States: {
      Prepare: task('Count', { ResultPath: null, Next: 'Environments' }),
      Environments: mapOver(
        {
          StartAt: 'Enter',
          States: {
            Enter: task('Count', { ResultPath: null, Next: 'Batches' }),
            Batches: {
              Type: 'Map',
              ItemsPath: '$.batches',
              MaxConcurrency: 1,
              ItemSelector: { 'env.$': '$.name', 'batch.$': '$$.Map.Item.Value' },
              ItemProcessor: { StartAt: 'Switch', States: { Switch: callbackTask('Hold', { End: true }) } },
              ResultPath: null,
              End: true,
            },
          },
        },
        { ResultPath: null, End: true },
      ),
    },
  };

  it('a callback task waiting in the second iteration of a nested Map survives three restarts on the same token, and nothing before it runs again', async () => {
    const calls: string[] = [];
    const tokens: string[] = [];
    const functions: Record<string, LocalFunction> = {
      Count: async (payload) => {
        calls.push(`count:${String((payload as { name?: string }).name ?? 'prepare')}`);
        return {};
      },
      Hold: async (payload) => {
        const { env, batch } = payload.input as { env: string; batch: string };
        calls.push(`hold:${env}:${batch}`);
        tokens.push(String(payload.token));
        return {};
      },
    };
    const input = { items: [{ name: 'staging', batches: ['s1'] }, { name: 'production', batches: ['p1', 'p2'] }] };
    let executor = executorFor(nested, functions);
    const { executionId } = await executor.startExecution('m', `run-${++counter}`, input);
    await until('staging s1', () => tokens[0]);
    await executor.sendTaskSuccess(tokens[0]!, {});
    await until('production p1', () => tokens[1]);
    await executor.sendTaskSuccess(tokens[1]!, {});
    await until('production p2', () => tokens[2]);
    const waitingOn = tokens[2]!;

    for (let restart = 0; restart < 3; restart++) {
      await executor.close();
      executor = executorFor(nested, functions);
      expect(await executor.resumeAll()).toEqual([executionId]);
      // The resumed task calls its function again (at least once, as Lambda is) with the same token.
      await until(`the resumed task (restart ${restart + 1})`, () => (tokens.length === 4 + restart ? true : undefined));
      expect(tokens.at(-1)).toBe(waitingOn);
    }
    await executor.sendTaskSuccess(waitingOn, {});
    expect((await ended(executor, executionId)).status).toBe('SUCCEEDED');
    expect(calls).toEqual([
      'count:prepare',
      'count:staging',
      'hold:staging:s1',
      'count:production',
      'hold:production:p1',
      'hold:production:p2',
      'hold:production:p2',
      'hold:production:p2',
      'hold:production:p2',
    ]);
    const resumedAt = (await executor.history(executionId)).filter((e) => e.type === 'StateResumed').map((e) => e.state);
    expect(new Set(resumedAt)).toEqual(new Set(['Environments', 'Batches', 'Switch']));
  });

  it('a callback task with a TimeoutSecondsPath keeps its deadline across a restart: it times out when first due, not a whole timeout after the restart', async () => {
    const definition = {
      StartAt: 'Hold',
      States: {
        Hold: callbackTask('Hold', { TimeoutSeconds: undefined, TimeoutSecondsPath: '$.seconds', ResultPath: null, Catch: [{ ErrorEquals: ['States.Timeout'], ResultPath: '$.held', Next: 'TimedOut' }], End: true }),
        TimedOut: { Type: 'Pass', End: true },
      },
    };
    const tokens: string[] = [];
    const functions: Record<string, LocalFunction> = {
      Hold: async (payload) => {
        tokens.push(String(payload.token));
        return {};
      },
    };
    let executor = executorFor(definition, functions);
    const startedAt = Date.now();
    const { executionId } = await executor.startExecution('m', `run-${++counter}`, { seconds: 6 });
    await until('the token', () => tokens[0]);
    await executor.close();
    // Down for most of the timeout: the resumed task must not wait another 6 seconds from here.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    executor = executorFor(definition, functions);
    const resumedAt = Date.now();
    expect(await executor.resumeAll()).toEqual([executionId]);
    const record = await ended(executor, executionId);
    expect(record.status).toBe('SUCCEEDED');
    expect(tokens.every((token) => token === tokens[0])).toBe(true);
    const timedOutAt = Date.parse((await executor.history(executionId)).find((e) => e.type === 'CaughtError')!.at);
    // Not before it was due, and before a deadline counted again from the restart could be.
    expect(timedOutAt).toBeGreaterThanOrEqual(startedAt + 6000);
    expect(timedOutAt).toBeLessThan(resumedAt + 6000);
  });

  it('retries already made survive a restart: MaxAttempts is not counted again from zero', async () => {
    let attempts = 0;
    let resume = false;
    const functions: Record<string, LocalFunction> = {
      Flaky: async () => {
        attempts += 1;
        if (attempts === 2) resume = true;
        throw failing('Flaky', `attempt ${attempts}`);
      },
    };
    const definition = { StartAt: 'Work', States: { Work: task('Flaky', { Retry: [{ ErrorEquals: ['Flaky'], IntervalSeconds: 1, BackoffRate: 1, MaxAttempts: 3 }], End: true }) } };
    let executor = executorFor(definition, functions);
    const { executionId } = await executor.startExecution('m', `run-${++counter}`, {});
    await until('the second attempt', () => (resume ? true : undefined));
    await executor.close();
    executor = executorFor(definition, functions);
    await executor.resumeAll();
    const record = await ended(executor, executionId);
    expect(record.error).toBe('Flaky');
    // The resumed run may repeat the attempt that was under way (at least once), never more.
    expect(attempts).toBeGreaterThanOrEqual(4);
    expect(attempts).toBeLessThanOrEqual(5);
  });
});
