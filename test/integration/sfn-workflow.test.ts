import { SFNClient } from '@aws-sdk/client-sfn';
import { createStepFunctionsWorkflow } from '@slipway/aws';
import {
  createReleaseService,
  DependencyUnavailableError,
  type Release,
  type ReleaseDeps,
  type ReleaseEvent,
  type ReleaseStore,
  silentLogger,
  StaleTaskTokenError,
} from '@slipway/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { manualClock, shopConfig } from '../support/fixtures.ts';
import { startWireFake } from '../support/wire-fake.ts';

/**
 * No local Step Functions server exists, so this checks the wire requests the adapter sends against
 * the documented JSON protocol, answering as the service does.
 */
let answer: { status: number; body: unknown } = { status: 200, body: {} };
/** When set, answered in turn instead of `answer`; a body with `__type` is answered as that error. */
let replies: unknown[] = [];
let fake: Awaited<ReturnType<typeof startWireFake>>;
let client: SFNClient;
const arn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:slipway-release';
const rollbackArn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:slipway-rollback';
const executionOf = (machine: string, name: string) => `${machine.replace(':stateMachine:', ':execution:')}:${name}`;
const notFound = (name: string) => ({
  __type: 'com.amazonaws.swf.service.v2.model#ExecutionDoesNotExist',
  message: `Execution Does Not Exist: '${name}'`,
});

beforeAll(async () => {
  fake = await startWireFake(() => {
    const { status, body } = replies.length > 0 ? { status: 200, body: replies.shift() } : answer;
    const type = (body as { __type?: string }).__type;
    return { status: type && status < 400 ? 400 : status, body, ...(type ? { errorType: type.split('#').pop()! } : {}) };
  }, 'application/x-amz-json-1.0');
  client = new SFNClient(fake.clientOptions(2));
});
afterAll(async () => {
  client.destroy();
  await fake.close();
});
const requests = () => fake.requests.map(({ target, body }) => ({ target, body }));

describe('Step Functions workflow', () => {
  it('starts an execution named by the release id with the release as input', async () => {
    answer = {
      status: 200,
      body: { executionArn: `${arn.replace('stateMachine', 'execution')}:r1`, startDate: 1 },
    };
    const workflow = createStepFunctionsWorkflow(client, arn);
    const started = await workflow.startRelease({ releaseId: '01abc', app: 'shop' });
    expect(started.executionId).toBe(`${arn.replace('stateMachine', 'execution')}:r1`);
    expect(requests().at(-1)).toEqual({
      target: 'AWSStepFunctions.StartExecution',
      body: {
        stateMachineArn: arn,
        name: '01abc',
        input: JSON.stringify({ releaseId: '01abc', app: 'shop' }),
      },
    });
  });

  it('turns throttling into a retryable domain error after the SDK retries', async () => {
    answer = {
      status: 400,
      body: { __type: 'com.amazonaws.swf.service.v2.model#ThrottlingException', message: 'slow down' },
    };
    const before = requests().length;
    const workflow = createStepFunctionsWorkflow(client, arn);
    await expect(workflow.startRelease({ releaseId: '01def', app: 'shop' })).rejects.toThrow(
      DependencyUnavailableError,
    );
    expect(requests().length - before).toBe(2);
  });
});

describe('Step Functions callbacks and history', () => {
  it('completes a task with its output, and fails one with the error name the ASL catches', async () => {
    answer = { status: 200, body: {} };
    const workflow = createStepFunctionsWorkflow(client, arn);
    await workflow.sendTaskSuccess('token-1', { hosts: 2 });
    expect(requests().at(-1)).toEqual({
      target: 'AWSStepFunctions.SendTaskSuccess',
      body: { taskToken: 'token-1', output: '{"hosts":2}' },
    });
    await workflow.sendTaskFailure('token-2', 'HostCommandFailedError', 'x'.repeat(40_000));
    expect(requests().at(-1)!.target).toBe('AWSStepFunctions.SendTaskFailure');
    expect(requests().at(-1)!.body.error).toBe('HostCommandFailedError');
    expect(requests().at(-1)!.body.cause).toHaveLength(32_768);
  });

  it('heartbeats a task and stops an execution by release id', async () => {
    answer = { status: 200, body: {} };
    const workflow = createStepFunctionsWorkflow(client, arn);
    await workflow.sendTaskHeartbeat('token-3');
    expect(requests().at(-1)).toEqual({ target: 'AWSStepFunctions.SendTaskHeartbeat', body: { taskToken: 'token-3' } });
    await workflow.stopRelease('01abc', 'cancelled by alice');
    expect(requests().at(-1)).toEqual({
      target: 'AWSStepFunctions.StopExecution',
      body: {
        executionArn: 'arn:aws:states:eu-west-1:123456789012:execution:slipway-release:01abc',
        error: 'ReleaseCancelled',
        cause: 'cancelled by alice',
      },
    });
  });

  it.each(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken'])('reports %s as a stale token', async (name) => {
    answer = { status: 400, body: { __type: `com.amazonaws.swf.service.v2.model#${name}`, message: 'gone' } };
    const workflow = createStepFunctionsWorkflow(client, arn);
    await expect(workflow.sendTaskSuccess('old', {})).rejects.toThrow(StaleTaskTokenError);
  });

  it('reads the execution named by the release id and its history', async () => {
    const workflow = createStepFunctionsWorkflow(client, arn);
    const executionArn = 'arn:aws:states:eu-west-1:123456789012:execution:slipway-release:01abc';
    replies = [
      { executionArn, status: 'SUCCEEDED', startDate: 1767225600, stopDate: 1767225660 },
      {
        events: [
          { id: 1, timestamp: 1767225600, type: 'ExecutionStarted' },
          { id: 2, timestamp: 1767225601, type: 'TaskStateEntered', stateEnteredEventDetails: { name: 'Prepare' } },
        ],
        nextToken: 'page-2',
      },
      { events: [{ id: 3, timestamp: 1767225660, type: 'ExecutionSucceeded' }] },
    ];
    const before = requests().length;
    const history = await workflow.releaseHistory('01abc');
    expect(requests().slice(before).map((r) => r.target)).toEqual([
      'AWSStepFunctions.DescribeExecution',
      'AWSStepFunctions.GetExecutionHistory',
      'AWSStepFunctions.GetExecutionHistory',
    ]);
    expect(requests()[before]!.body).toEqual({ executionArn });
    expect(requests()[before + 2]!.body.nextToken).toBe('page-2');
    expect(history).toMatchObject({
      executionId: executionArn,
      status: 'SUCCEEDED',
      startedAt: '2026-01-01T00:00:00.000Z',
      stoppedAt: '2026-01-01T00:01:00.000Z',
    });
    expect(history!.events.map((e) => [e.type, e.state])).toEqual([
      ['ExecutionStarted', undefined],
      ['TaskStateEntered', 'Prepare'],
      ['ExecutionSucceeded', undefined],
    ]);
  });
});

/**
 * A rollback is a release record with `rollback` set, run by its own state machine under the same
 * execution name (its release id). Whatever reads or stops it must address that machine.
 */
describe('Step Functions rollback executions', () => {
  const rollbackExecution = executionOf(rollbackArn, '01rollback');
  beforeEach(() => {
    replies = [];
  });

  it('reads the history of a rollback from the execution on the rollback machine, in one describe', async () => {
    const workflow = createStepFunctionsWorkflow(client, arn, rollbackArn);
    replies = [
      { executionArn: rollbackExecution, status: 'RUNNING', startDate: 1767225600 },
      { events: [{ id: 1, timestamp: 1767225600, type: 'ExecutionStarted' }] },
    ];
    const before = requests().length;
    const history = await workflow.releaseHistory('01rollback', 'rollback');
    expect(requests().slice(before)).toEqual([
      { target: 'AWSStepFunctions.DescribeExecution', body: { executionArn: rollbackExecution } },
      {
        target: 'AWSStepFunctions.GetExecutionHistory',
        body: { executionArn: rollbackExecution, maxResults: 1000, includeExecutionData: false },
      },
    ]);
    expect(history).toMatchObject({ executionId: rollbackExecution, status: 'RUNNING', startedAt: '2026-01-01T00:00:00.000Z' });
  });

  it('looks on the rollback machine when the kind is not known and the release machine has no such execution', async () => {
    const workflow = createStepFunctionsWorkflow(client, arn, rollbackArn);
    replies = [
      notFound(executionOf(arn, '01rollback')),
      { executionArn: rollbackExecution, status: 'SUCCEEDED', startDate: 1767225600, stopDate: 1767225660 },
      { events: [] },
    ];
    const before = requests().length;
    const history = await workflow.releaseHistory('01rollback');
    expect(requests().slice(before).map((r) => [r.target, r.body.executionArn])).toEqual([
      ['AWSStepFunctions.DescribeExecution', executionOf(arn, '01rollback')],
      ['AWSStepFunctions.DescribeExecution', rollbackExecution],
      ['AWSStepFunctions.GetExecutionHistory', rollbackExecution],
    ]);
    expect(history).toMatchObject({ executionId: rollbackExecution, status: 'SUCCEEDED' });
  });

  it('answers no history when neither machine has the execution', async () => {
    const workflow = createStepFunctionsWorkflow(client, arn, rollbackArn);
    replies = [notFound('01nothing'), notFound('01nothing')];
    const before = requests().length;
    expect(await workflow.releaseHistory('01nothing')).toBeUndefined();
    expect(requests().slice(before).map((r) => r.body.executionArn)).toEqual([executionOf(arn, '01nothing'), executionOf(rollbackArn, '01nothing')]);
  });

  it('stops the execution of a rollback on the rollback machine, in one call', async () => {
    answer = { status: 200, body: {} };
    const workflow = createStepFunctionsWorkflow(client, arn, rollbackArn);
    const before = requests().length;
    await workflow.stopRelease('01rollback', 'cancelled by alice', 'rollback');
    expect(requests().slice(before)).toEqual([
      {
        target: 'AWSStepFunctions.StopExecution',
        body: { executionArn: rollbackExecution, error: 'ReleaseCancelled', cause: 'cancelled by alice' },
      },
    ]);
  });

  it('starts a pending rollback left without an execution on the rollback machine, and a release on the release machine', async () => {
    const clock = manualClock();
    const record = (id: string, extra: Partial<Release>): Release => ({
      id,
      app: 'shop',
      version: '1.0.0',
      artifact: { key: 'artifacts/shop/x.tar.gz', sha256: 'a'.repeat(64), size: 1 },
      description: '',
      status: 'pending',
      openedBy: 'alice',
      createdAt: clock.now().toISOString(),
      updatedAt: clock.now().toISOString(),
      config: shopConfig,
      ...extra,
    });
    const releases = [
      record('01rollback', { rollback: { environment: 'production', target: '01older', from: { id: '01newer', version: '1.1.0' } } }),
      record('01release', {}),
      record('01done', { status: 'succeeded' }),
    ];
    const events: ReleaseEvent[] = [];
    // Only what startOrphans touches: the listing and the event log.
    const store: Pick<ReleaseStore, 'listReleases' | 'appendEvent'> = {
      listReleases: async () => ({ items: releases }),
      appendEvent: async (event) => void events.push(event),
    };
    let n = 0;
    // startOrphans needs none of the other services: any call to them would throw.
    const unused = {} as never;
    const deps: ReleaseDeps = {
      store: store as ReleaseStore,
      workflow: createStepFunctionsWorkflow(client, arn, rollbackArn),
      clock,
      ids: { next: () => `01event${n++}` },
      logger: silentLogger,
      approvals: unused,
      apps: unused,
      artifacts: unused,
      audit: unused,
    };
    const service = createReleaseService(deps);
    replies = [
      notFound(rollbackExecution),
      { executionArn: rollbackExecution, startDate: 1767225600 },
      notFound(executionOf(arn, '01release')),
      { executionArn: executionOf(arn, '01release'), startDate: 1767225600 },
    ];
    // Too young: the opener may be between the record and the start; nothing is asked.
    const before = requests().length;
    expect(await service.startOrphans()).toEqual([]);
    expect(requests().length).toBe(before);
    clock.advance(60_000);
    expect(await service.startOrphans()).toEqual(['01rollback', '01release']);
    expect(requests().slice(before)).toEqual([
      { target: 'AWSStepFunctions.DescribeExecution', body: { executionArn: rollbackExecution } },
      {
        target: 'AWSStepFunctions.StartExecution',
        body: { stateMachineArn: rollbackArn, name: '01rollback', input: JSON.stringify({ releaseId: '01rollback', app: 'shop' }) },
      },
      { target: 'AWSStepFunctions.DescribeExecution', body: { executionArn: executionOf(arn, '01release') } },
      {
        target: 'AWSStepFunctions.StartExecution',
        body: { stateMachineArn: arn, name: '01release', input: JSON.stringify({ releaseId: '01release', app: 'shop' }) },
      },
    ]);
    expect(events.map((e) => [e.releaseId, e.type, e.data])).toEqual([
      ['01rollback', 'workflow.started', { executionId: rollbackExecution, recovered: true }],
      ['01release', 'workflow.started', { executionId: executionOf(arn, '01release'), recovered: true }],
    ]);
  });
});
