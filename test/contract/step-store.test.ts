import { createDynamoStepStore, createTableAccess } from '@slipway/aws';
import type { StepRecord, StepStore } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createMemoryStepStore } from '../../packages/core/src/testing/memory-release-store.ts';
import { at, implementations, releaseId } from './implementations.ts';

const stores = implementations<StepStore>('steps', createMemoryStepStore, (client, table) => createDynamoStepStore(createTableAccess(client, table)));

const step = (id: string, key: string, overrides: Partial<StepRecord> = {}): StepRecord => ({
  releaseId: id,
  key,
  kind: 'switch',
  environment: 'production',
  batchIndex: 0,
  hosts: ['h1', 'h2'],
  commandId: `cmd-${id}-${key}`,
  taskToken: 'token-1',
  state: 'running',
  createdAt: at(0),
  updatedAt: at(0),
  ...overrides,
});

describe.each(stores)('step store contract: %s', (_name, make) => {
  it('creates a step once; a second start returns the first untouched', async () => {
    const store = await make();
    const id = releaseId();
    expect(await store.startStep(step(id, 'switch#production#0'))).toEqual({ created: true, step: step(id, 'switch#production#0') });
    const again = await store.startStep(step(id, 'switch#production#0', { commandId: 'cmd-other', taskToken: 'token-2', updatedAt: at(5) }));
    expect(again).toEqual({ created: false, step: step(id, 'switch#production#0') });
    expect(await store.getStep(id, 'switch#production#0')).toEqual(step(id, 'switch#production#0'));
    expect(await store.getStep(id, 'switch#production#1')).toBeUndefined();
  });

  it('two starts of the same key at once create it once, and both answer the one stored', async () => {
    const store = await make();
    const id = releaseId();
    const [a, b] = await Promise.all([
      store.startStep(step(id, 'distribute#production', { commandId: 'cmd-a', taskToken: 'a' })),
      store.startStep(step(id, 'distribute#production', { commandId: 'cmd-b', taskToken: 'b' })),
    ]);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    const stored = await store.getStep(id, 'distribute#production');
    expect(a.step).toEqual(stored);
    expect(b.step).toEqual(stored);
  });

  it('finds a step by its command id', async () => {
    const store = await make();
    const id = releaseId();
    await store.startStep(step(id, 'switch#production#0', { commandId: 'cmd-42' }));
    expect((await store.getStepByCommand('cmd-42'))?.key).toBe('switch#production#0');
    expect(await store.getStepByCommand('cmd-none')).toBeUndefined();
  });

  it('hands a running step a new token, and refuses once it settled', async () => {
    const store = await make();
    const id = releaseId();
    await store.startStep(step(id, 'k'));
    expect(await store.replaceStepToken(id, 'k', 'token-2', at(10))).toEqual(step(id, 'k', { taskToken: 'token-2', updatedAt: at(10) }));
    expect(await store.completeStep(id, 'k', { status: 'succeeded', output: { hosts: 2 } }, at(20))).toEqual({
      settled: true,
      step: step(id, 'k', { taskToken: 'token-2', state: 'succeeded', output: { hosts: 2 }, updatedAt: at(20) }),
    });
    expect(await store.replaceStepToken(id, 'k', 'token-3', at(30))).toBeUndefined();
    expect((await store.getStep(id, 'k'))?.taskToken).toBe('token-2');
    expect(await store.replaceStepToken(id, 'never-started', 'token-3', at(30))).toBeUndefined();
  });

  it('records the outcome once: a later completion finds the step as it settled', async () => {
    const store = await make();
    const id = releaseId();
    await store.startStep(step(id, 'k'));
    const failed = step(id, 'k', { state: 'failed', error: 'HostCommandFailedError', cause: 'h1 exited 1', updatedAt: at(20) });
    expect(await store.completeStep(id, 'k', { status: 'failed', error: 'HostCommandFailedError', cause: 'h1 exited 1' }, at(20))).toEqual({
      settled: true,
      step: failed,
    });
    expect(await store.completeStep(id, 'k', { status: 'succeeded', output: { hosts: 2 } }, at(30))).toEqual({ settled: false, step: failed });
    expect(await store.getStep(id, 'k')).toEqual(failed);
  });

  it('two completions at the same moment settle it once, and say which one did', async () => {
    const store = await make();
    const id = releaseId();
    await store.startStep(step(id, 'k'));
    const [a, b] = await Promise.all([
      store.completeStep(id, 'k', { status: 'succeeded', output: { hosts: 2 } }, at(20)),
      store.completeStep(id, 'k', { status: 'failed', error: 'E', cause: 'c' }, at(20)),
    ]);
    expect([a.settled, b.settled].sort()).toEqual([false, true]);
    expect(a.step).toEqual(b.step);
    expect(a.step).toEqual(await store.getStep(id, 'k'));
  });

  it('lists a release\'s steps in key order', async () => {
    const store = await make();
    const [id, other] = [releaseId(), releaseId()];
    for (const key of ['switch#production#1', 'distribute#production', 'switch#production#0']) await store.startStep(step(id, key));
    await store.startStep(step(other, 'distribute#production'));
    expect((await store.listSteps(id)).map((s) => s.key)).toEqual(['distribute#production', 'switch#production#0', 'switch#production#1']);
  });

  it('lists running host commands oldest first, without settled steps or steps with no command', async () => {
    const store = await make();
    const id = releaseId();
    await store.startStep(step(id, 'late', { createdAt: at(30) }));
    await store.startStep(step(id, 'early', { createdAt: at(10) }));
    await store.startStep(step(id, 'settled', { createdAt: at(5) }));
    await store.startStep(step(id, 'bake#production#0', { kind: 'bake', commandId: undefined, state: 'succeeded', createdAt: at(1) }));
    await store.startStep(step(id, 'approval#production', { kind: 'approval', commandId: undefined, createdAt: at(2) }));
    await store.completeStep(id, 'settled', { status: 'succeeded' }, at(40));
    expect((await store.listRunningCommandSteps(10)).map((s) => s.key)).toEqual(['early', 'late']);
    expect((await store.listRunningCommandSteps(1)).map((s) => s.key)).toEqual(['early']);
  });
});
