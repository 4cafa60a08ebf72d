import { StaleTaskTokenError } from './errors.ts';
import type { StepRecord, Workflow } from './ports.ts';

/**
 * Tells the task waiting on a step how it ended: success with its output, or failure with the error
 * name the ASL catches. A token no task waits on any more (timed out, or from before a resume) is
 * not an error: the task that does wait gets the outcome when it asks for the step again.
 */
export async function deliverOutcome(workflow: Workflow, step: StepRecord, taskToken = step.taskToken): Promise<void> {
  if (!taskToken || step.state === 'running') return;
  try {
    if (step.state === 'succeeded') await workflow.sendTaskSuccess(taskToken, step.output ?? {});
    else await workflow.sendTaskFailure(taskToken, step.error ?? 'HostCommandFailedError', step.cause ?? '');
  } catch (error) {
    if (!(error instanceof StaleTaskTokenError)) throw error;
  }
}
