import { type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { Workflow } from '@slipway/core';
import { translateSdkError } from './errors.ts';

/**
 * Step Functions Standard executions, named by the release id: StartExecution with the same name
 * and input is idempotent on AWS's side, so a retried open cannot start two executions.
 */
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
  };
}
