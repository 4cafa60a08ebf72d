import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { ERROR_NAMES, STAGE_INPUTS } from '@slipway/core';
import { renderDefinition } from '@slipway/local';
import aslValidator from 'asl-validator';
import { describe, expect, it } from 'vitest';
import { STAGE_FUNCTIONS } from '../../functions/registry.ts';

type State = Record<string, any>;

const text = await readFile('statemachines/release.asl.json', 'utf8');
const definition = renderDefinition(text) as { States: Record<string, State> };

function allStates(states: Record<string, State>, out: [string, State][] = []): [string, State][] {
  for (const [name, state] of Object.entries(states)) {
    out.push([name, state]);
    if (state.ItemProcessor) allStates(state.ItemProcessor.States, out);
  }
  return out;
}
const states = allStates(definition.States);
const tasks = states.filter(([, s]) => s.Type === 'Task');
const placeholders = [...new Set([...text.matchAll(/\$\{(\w+)FunctionArn\}/g)].map((m) => m[1]!))];
const LAMBDA_RETRY = ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'];

describe('statemachines/release.asl.json', () => {
  it('is valid States Language once its placeholders are filled', () => {
    const result = aslValidator(definition as never);
    expect(result.errors).toEqual([]);
    expect(result.isValid).toBe(true);
  });

  it('names only functions that exist, each with an input schema, and every stage function is used', () => {
    expect(placeholders.sort()).toEqual(Object.keys(STAGE_FUNCTIONS).sort());
    expect(Object.keys(STAGE_INPUTS).sort()).toEqual(Object.keys(STAGE_FUNCTIONS).sort());
  });

  it('has a file in functions/ for every function it names', async () => {
    const files = await readdir('functions');
    for (const name of placeholders) {
      const file = `${name.replace(/[A-Z]/g, (c, i) => (i === 0 ? c.toLowerCase() : `-${c.toLowerCase()}`))}.ts`;
      expect(files, name).toContain(file);
    }
  });

  it('gives every Task a TimeoutSeconds (the timed pause its TimeoutSecondsPath) and never uses a non-deterministic intrinsic', () => {
    // Node timers cap at about 24.8 days; the local executor would fire a longer timeout at once.
    for (const [name, state] of tasks.filter(([taskName]) => taskName !== 'TimedPause')) {
      expect(state.TimeoutSeconds, name).toBeGreaterThan(0);
      expect(state.TimeoutSeconds, name).toBeLessThanOrEqual(2_147_483);
    }
    expect(text).not.toMatch(/States\.UUID|States\.Hash/);
  });

  it('holds a timed pause on a callback token until the time Watch answered, then asks Watch again: a promote completes the token at once', () => {
    const byName = Object.fromEntries(states) as Record<string, State>;
    const timed = byName.TimedPause!;
    // One or the other: Step Functions refuses a task with both.
    expect(timed.TimeoutSeconds).toBeUndefined();
    expect(timed).toMatchObject({
      Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      Parameters: { FunctionName: byName.Pause!.Parameters.FunctionName },
      TimeoutSecondsPath: '$.watched.seconds',
      Catch: [{ ErrorEquals: ['States.Timeout'], Next: 'Watch' }],
      Next: byName.Pause!.Next,
    });
    expect(byName.WatchNext!.Choices).toContainEqual({ Variable: '$.watched.next', StringEquals: 'timed-pause', Next: 'TimedPause' });
    // The pause for a person keeps its fixed backstop and no catch: past it the switched hosts go back.
    expect(byName.Pause!.TimeoutSeconds).toBeGreaterThan(0);
    expect(byName.Pause!.Catch).toBeUndefined();
  });

  it('retries and catches only error names the core declares, retrying only retryable ones', () => {
    const lambdaErrors = /^(Lambda\.|States\.)/;
    for (const [name, state] of states) {
      for (const retrier of state.Retry ?? []) {
        for (const error of retrier.ErrorEquals as string[]) {
          if (lambdaErrors.test(error)) continue;
          expect(Object.keys(ERROR_NAMES), `${name} retries ${error}`).toContain(error);
          expect(ERROR_NAMES[error as keyof typeof ERROR_NAMES].retryable, `${name} retries ${error}`).toBe(true);
        }
      }
      for (const catcher of state.Catch ?? []) {
        for (const error of catcher.ErrorEquals as string[]) {
          if (!lambdaErrors.test(error)) expect(Object.keys(ERROR_NAMES)).toContain(error);
        }
      }
    }
  });

  it('waits on hosts and people with callback tasks whose payload carries the token', () => {
    const callbacks = tasks.filter(([, s]) => s.Resource === 'arn:aws:states:::lambda:invoke.waitForTaskToken');
    expect(callbacks.map(([name]) => name).sort()).toEqual(['AwaitApproval', 'Distribute', 'EnterEnvironment', 'Pause', 'Prune', 'RevertBatch', 'SwitchBatch', 'TimedPause']);
    for (const [, state] of callbacks) expect(state.Parameters.Payload['taskToken.$']).toBe('$$.Task.Token');
  });

  it('never retries in a loop that could exhaust the history: a release waiting in line waits on a token', () => {
    // A Standard execution holds at most 25,000 events; each retry costs about three.
    const rollbackStates = allStates((renderDefinition(readFileSync('statemachines/rollback.asl.json', 'utf8')) as typeof definition).States);
    for (const [name, state] of [...states, ...rollbackStates]) {
      for (const retrier of state.Retry ?? []) expect(retrier.MaxAttempts ?? 3, `${name} retries ${retrier.ErrorEquals}`).toBeLessThanOrEqual(10);
    }
    const enter = (Object.fromEntries(states) as Record<string, State>).EnterEnvironment!;
    expect(enter.Resource).toBe('arn:aws:states:::lambda:invoke.waitForTaskToken');
    expect(enter.Retry.flatMap((retrier: State) => retrier.ErrorEquals)).not.toContain('EnvironmentBusyError');
    // It may wait as long as an approval gate may.
    expect(enter.TimeoutSeconds).toBe((Object.fromEntries(states) as Record<string, State>).AwaitApproval!.TimeoutSeconds);
  });

  it('gives every Task the standard Lambda retry', () => {
    for (const [name, state] of tasks) {
      const retried = (state.Retry ?? []).flatMap((retrier: State) => retrier.ErrorEquals as string[]);
      expect(retried, name).toEqual(expect.arrayContaining(LAMBDA_RETRY));
    }
  });

  it('carries no host in its data: stages read hosts from the stored plan by environment and batch index', () => {
    expect(text).not.toMatch(/"hosts\.\$"/);
    const byName = Object.fromEntries(states) as Record<string, State>;
    expect(byName.EnterEnvironment!).toMatchObject({ Parameters: { Payload: { 'environment.$': '$.environment.name' } }, ResultPath: '$.plan' });
    expect(byName.Distribute!.Parameters.Payload['environment.$']).toBe('$.environment.name');
    expect(byName.SwitchBatches!).toMatchObject({ ItemsPath: '$.plan.batches', ItemSelector: { 'batchIndex.$': '$$.Map.Item.Value' } });
    // After a failure the revert order replaces the switch order: the state never holds both lists.
    expect(byName.PlanRevert!.ResultPath).toBe('$.plan');
    expect(byName.RevertBatches!).toMatchObject({ ItemsPath: '$.plan.batches', ItemSelector: { 'batchIndex.$': '$$.Map.Item.Value' } });
    // A Map collects every iteration's output: each is one batch index, and an environment its summary.
    for (const name of ['BatchDone', 'RevertBatch', 'RevertBatchFailed']) expect(byName[name]!.OutputPath, name).toBe('$.batchIndex');
    expect(byName.CompleteEnvironment!.OutputPath).toBe('$.environment');
  });

  it('switches batches one at a time and reverts them one at a time', () => {
    const byName = Object.fromEntries(states) as Record<string, State>;
    expect(byName.Environments!.MaxConcurrency).toBe(1);
    expect(byName.SwitchBatches!.MaxConcurrency).toBe(1);
    expect(byName.RevertBatches!.MaxConcurrency).toBe(1);
    expect(byName.Bake).toMatchObject({ Type: 'Wait', TimestampPath: '$.watched.until' });
  });
});

describe('statemachines/rollback.asl.json', async () => {
  const rollbackText = await readFile('statemachines/rollback.asl.json', 'utf8');
  const rollback = renderDefinition(rollbackText) as { States: Record<string, State> };
  const rollbackStates = allStates(rollback.States);

  it('is valid States Language and uses only stage functions that exist', () => {
    expect(aslValidator(rollback as never).errors).toEqual([]);
    const named = [...new Set([...rollbackText.matchAll(/\$\{(\w+)FunctionArn\}/g)].map((m) => m[1]!))];
    for (const name of named) expect(Object.keys(STAGE_FUNCTIONS)).toContain(name);
  });

  it('is the release machine without Distribute and Prune, state for state', () => {
    const expected = structuredClone(definition) as { States: Record<string, State> };
    const environments = expected.States.Environments!;
    delete environments.ItemProcessor.States.Distribute;
    environments.ItemProcessor.States.EnterEnvironment.Next = 'ApprovalRequired';
    delete expected.States.Prune;
    environments.Next = 'Finalize';
    expect(rollback.States).toEqual(expected.States);
  });

  it('switches without distributing or pruning, and every Task has a timeout', () => {
    const names = rollbackStates.map(([name]) => name);
    expect(names).not.toContain('Distribute');
    expect(names).not.toContain('Prune');
    expect(names).toEqual(expect.arrayContaining(['SwitchBatch', 'AwaitApproval', 'RevertBatch', 'FailEnvironment', 'Finalize']));
    for (const [name, state] of rollbackStates.filter(([, s]) => s.Type === 'Task')) expect(state.TimeoutSeconds ?? state.TimeoutSecondsPath, name).toBeTruthy();
  });
});
