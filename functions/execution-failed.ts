import middy from '@middy/core';
import { parse } from '@slipway/core';
import { z } from 'zod';
import { awsStages } from './lib/aws.ts';
import type { StagesLoader } from './lib/stage.ts';

/**
 * "Step Functions Execution Status Change" for FAILED, TIMED_OUT or ABORTED executions: whatever
 * stopped the execution (an uncatchable error, a timeout, a manual stop), its release ends cleanly and
 * frees its locks. Executions are named by release id. Locally the executor calls RecordFailure itself.
 */
const ExecutionStatusEvent = z.object({
  source: z.literal('aws.states'),
  'detail-type': z.literal('Step Functions Execution Status Change'),
  detail: z.object({
    name: z.string().min(1),
    status: z.enum(['FAILED', 'TIMED_OUT', 'ABORTED']),
    error: z.string().nullish(),
    cause: z.string().nullish(),
  }),
});

export function create(load: StagesLoader) {
  return middy<unknown, null>().handler(async (event) => {
    const { detail } = parse(ExecutionStatusEvent, event, 'execution status event');
    await (await load()).recordFailure({
      releaseId: detail.name,
      failure: { Error: detail.error ?? `Execution${detail.status}`, Cause: detail.cause ?? `the workflow execution ended ${detail.status}` },
    });
    return null;
  });
}

export const handler = create(awsStages);
