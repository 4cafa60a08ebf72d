import type { ReleaseStages } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { create as createCommandStatus } from '../../functions/command-status.ts';
import { create as createExecutionFailed } from '../../functions/execution-failed.ts';

/** The EventBridge contracts of the two event-driven functions, with the stages they call recorded. */
function recordingStages() {
  const calls: { stage: string; input: unknown }[] = [];
  const stages = {
    commandFinished: async (input: unknown) => void calls.push({ stage: 'commandFinished', input }),
    recordFailure: async (input: unknown) => void calls.push({ stage: 'recordFailure', input }),
  } as unknown as ReleaseStages;
  return { calls, load: async () => stages };
}
const context = {} as never;

describe('event-driven functions', () => {
  it('completes a command on a terminal SSM status and ignores the others', async () => {
    const { calls, load } = recordingStages();
    const handler = createCommandStatus(load);
    const event = (status: string) => ({
      source: 'aws.ssm',
      'detail-type': 'EC2 Command Status-change Notification',
      detail: { 'command-id': 'ssm-1', status },
    });
    await handler(event('InProgress'), context);
    await handler(event('Success'), context);
    await handler(event('TimedOut'), context);
    expect(calls).toEqual([
      { stage: 'commandFinished', input: 'ssm-1' },
      { stage: 'commandFinished', input: 'ssm-1' },
    ]);
    await expect(handler({ source: 'aws.ec2' }, context)).rejects.toThrow(/invalid command status event/);
  });

  it('ends the release of an execution that failed, timed out or was stopped', async () => {
    const { calls, load } = recordingStages();
    const handler = createExecutionFailed(load);
    await handler(
      {
        source: 'aws.states',
        'detail-type': 'Step Functions Execution Status Change',
        detail: { name: '01release', status: 'TIMED_OUT', stateMachineArn: 'arn:aws:states:x', error: null, cause: null },
      },
      context,
    );
    expect(calls).toEqual([
      { stage: 'recordFailure', input: { releaseId: '01release', failure: { Error: 'ExecutionTIMED_OUT', Cause: 'the workflow execution ended TIMED_OUT' } } },
    ]);
  });

  it('ends a rollback whose execution on the rollback machine failed: it is named by the rollback record id too', async () => {
    const { calls, load } = recordingStages();
    const handler = createExecutionFailed(load);
    const machine = 'arn:aws:states:eu-west-1:123456789012:stateMachine:slipway-RollbackStateMachine';
    await handler(
      {
        source: 'aws.states',
        'detail-type': 'Step Functions Execution Status Change',
        detail: {
          executionArn: `${machine.replace(':stateMachine:', ':execution:')}:01rollback`,
          stateMachineArn: machine,
          name: '01rollback',
          status: 'FAILED',
          error: 'States.Runtime',
          cause: 'An error occurred while executing the state SwitchBatch',
        },
      },
      context,
    );
    expect(calls).toEqual([
      {
        stage: 'recordFailure',
        input: { releaseId: '01rollback', failure: { Error: 'States.Runtime', Cause: 'An error occurred while executing the state SwitchBatch' } },
      },
    ]);
  });
});
