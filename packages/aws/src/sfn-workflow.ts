import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  StopExecutionCommand,
  type SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { type ExecutionKind, StaleTaskTokenError, type Workflow, type WorkflowEvent } from '@slipway/core';
import { translateSdkError } from './errors.ts';

/**
 * Step Functions Standard executions, named by the release id on the machine of its kind (release
 * or rollback): StartExecution with the same name and input is idempotent on AWS's side, so a
 * retried open cannot start two executions. The name is unique per machine, and a release id is
 * never reused, so a release and a rollback never share one.
 */
const STALE_TOKEN_ERRORS = new Set(['TaskDoesNotExist', 'TaskTimedOut', 'InvalidToken']);

async function callback(what: string, send: () => Promise<unknown>): Promise<void> {
  try {
    await send();
  } catch (error) {
    if (error instanceof Error && STALE_TOKEN_ERRORS.has(error.name)) {
      throw new StaleTaskTokenError(`no task waits on this token any more (${error.name})`, { cause: error });
    }
    throw translateSdkError(error, `Step Functions (${what})`);
  }
}

export function createStepFunctionsWorkflow(
  client: SFNClient,
  releaseStateMachineArn: string,
  rollbackStateMachineArn: string = releaseStateMachineArn,
): Workflow {
  const machineOf = (kind: ExecutionKind = 'release') => (kind === 'rollback' ? rollbackStateMachineArn : releaseStateMachineArn);
  /**
   * The ARNs a release's execution may have, to try in turn: exactly one when its kind is known (one
   * call), else the release machine's then the rollback machine's. Executions are named by release
   * id, so the ARN follows from the state machine's.
   */
  const executionArnsOf = (releaseId: string, kind?: ExecutionKind) =>
    (kind ? [machineOf(kind)] : [...new Set([releaseStateMachineArn, rollbackStateMachineArn])]).map(
      (machine) => `${machine.replace(':stateMachine:', ':execution:')}:${releaseId}`,
    );

  return {
    async startRelease(input) {
      try {
        const result = await client.send(
          new StartExecutionCommand({
            stateMachineArn: machineOf(input.kind),
            name: input.releaseId,
            input: JSON.stringify({ releaseId: input.releaseId, app: input.app }),
          }),
        );
        return { executionId: result.executionArn ?? '' };
      } catch (error) {
        throw translateSdkError(error, 'Step Functions (start execution)');
      }
    },

    async sendTaskSuccess(taskToken, output) {
      await callback('send task success', () =>
        client.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output) })),
      );
    },

    async sendTaskHeartbeat(taskToken) {
      await callback('send task heartbeat', () => client.send(new SendTaskHeartbeatCommand({ taskToken })));
    },

    async stopRelease(releaseId, cause, kind) {
      // A machine without the execution answers ExecutionDoesNotExist: try the next, or there is none.
      for (const executionArn of executionArnsOf(releaseId, kind)) {
        try {
          await client.send(new StopExecutionCommand({ executionArn, error: 'ReleaseCancelled', cause: cause.slice(0, 32_768) }));
          return;
        } catch (error) {
          if (!(error instanceof Error && error.name === 'ExecutionDoesNotExist')) {
            throw translateSdkError(error, 'Step Functions (stop execution)');
          }
        }
      }
    },

    async releaseHistory(releaseId, kind) {
      let found;
      for (const executionArn of executionArnsOf(releaseId, kind)) {
        try {
          found = { executionArn, described: await client.send(new DescribeExecutionCommand({ executionArn })) };
          break;
        } catch (error) {
          if (!(error instanceof Error && error.name === 'ExecutionDoesNotExist')) {
            throw translateSdkError(error, 'Step Functions (describe execution)');
          }
        }
      }
      if (!found) return undefined;
      const { executionArn, described } = found;
      const events: WorkflowEvent[] = [];
      let nextToken: string | undefined;
      do {
        const page = await client
          .send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1000, nextToken, includeExecutionData: false }))
          .catch((error: unknown) => {
            throw translateSdkError(error, 'Step Functions (execution history)');
          });
        events.push(...(page.events ?? []).map(toWorkflowEvent));
        nextToken = page.nextToken;
      } while (nextToken);
      return {
        executionId: executionArn,
        status: described.status ?? 'RUNNING',
        startedAt: described.startDate?.toISOString() ?? '',
        ...(described.stopDate ? { stoppedAt: described.stopDate.toISOString() } : {}),
        events,
      };
    },

    async sendTaskFailure(taskToken, error, cause) {
      // Step Functions caps error at 256 and cause at 32768 characters.
      await callback('send task failure', () =>
        client.send(new SendTaskFailureCommand({ taskToken, error: error.slice(0, 256), cause: cause.slice(0, 32_768) })),
      );
    },
  };
}

function toWorkflowEvent(event: HistoryEvent): WorkflowEvent {
  const state = event.stateEnteredEventDetails?.name ?? event.stateExitedEventDetails?.name;
  const failure =
    event.executionFailedEventDetails ?? event.taskFailedEventDetails ?? event.lambdaFunctionFailedEventDetails;
  return {
    at: event.timestamp?.toISOString() ?? '',
    type: event.type ?? 'Unknown',
    ...(state ? { state } : {}),
    ...(failure?.error ? { error: failure.error } : {}),
    ...(failure?.cause ? { cause: failure.cause } : {}),
  };
}
