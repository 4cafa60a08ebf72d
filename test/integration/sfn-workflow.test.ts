import { SFNClient } from '@aws-sdk/client-sfn';
import { createStepFunctionsWorkflow } from '@slipway/aws';
import { DependencyUnavailableError, StaleTaskTokenError } from '@slipway/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWireFake } from '../support/wire-fake.ts';

/**
 * No local Step Functions server exists, so this checks the wire requests the adapter sends against
 * the documented JSON protocol, answering as the service does.
 */
let answer: { status: number; body: unknown } = { status: 200, body: {} };
/** When set, answered in turn instead of `answer`. */
let replies: unknown[] = [];
let fake: Awaited<ReturnType<typeof startWireFake>>;
let client: SFNClient;
const arn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:slipway-release';

beforeAll(async () => {
  fake = await startWireFake(() => {
    if (replies.length > 0) return { body: replies.shift() };
    const type = (answer.body as { __type?: string }).__type;
    return { status: answer.status, body: answer.body, ...(type ? { errorType: type.split('#').pop()! } : {}) };
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
