import { z } from 'zod';
import { EnvironmentName, ReleaseId } from './schemas.ts';

/**
 * The pieces stage inputs are made of (each stage's whole input schema is its entry in
 * stage-table.ts). No input carries host ids: the plan is in the release store, and stages look
 * hosts up by environment name and batch index, so every input stays the same size whatever the
 * fleet's.
 */
export const TaskToken = z.string().min(1).max(4096);
export const BatchIndex = z.number().int().min(0);
export const StageFailureInput = z.object({ Error: z.string(), Cause: z.string().optional() }).optional();

/** A callback task on one environment: it completes its token when its hosts or people are done. */
export const EnvironmentCallbackInput = z.object({ taskToken: TaskToken, releaseId: ReleaseId, environment: EnvironmentName });

/** A callback task on one batch of an environment's hosts. */
export const BatchCallbackInput = z.object({
  taskToken: TaskToken,
  releaseId: ReleaseId,
  environment: EnvironmentName,
  batchIndex: BatchIndex,
});
