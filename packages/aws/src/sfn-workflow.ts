import { SendTaskFailureCommand, SendTaskSuccessCommand, type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { StaleTaskTokenError, type Workflow } from '@slipway/core';
import { translateSdkError } from './errors.ts';

/**
 * Step Functions Standard executions, named by the release id: StartExecution with the same name
 * and input is idempotent on AWS's side, so a retried open cannot start two executions.
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

export function createStepFunctionsWorkflow(client: SFNClient, releaseStateMachineArn: string): Workflow {
  return {
    async startRelease(input) {
      try {
        const result = await client.send(
          new StartExecutionCommand({
            stateMachineArn: releaseStateMachineArn,
            name: input.releaseId,
            input: JSON.stringify(input),
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

    async sendTaskFailure(taskToken, error, cause) {
      // Step Functions caps error at 256 and cause at 32768 characters.
      await callback('send task failure', () =>
        client.send(new SendTaskFailureCommand({ taskToken, error: error.slice(0, 256), cause: cause.slice(0, 32_768) })),
      );
    },
  };
}
