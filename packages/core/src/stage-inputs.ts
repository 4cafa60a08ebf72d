import { z } from 'zod';
import { AppName, EnvironmentName, ReleaseId } from './schemas.ts';

/**
 * What each state of statemachines/release.asl.json hands its function. The state machine is ours,
 * but a drift between the ASL and a handler should fail loudly at the edge, not deep in a stage.
 * No input carries host ids: the plan is in the release store, and stages look hosts up by
 * environment name and batch index, so every input stays the same size whatever the fleet's.
 */
const TaskToken = z.string().min(1).max(4096);
const BatchIndex = z.number().int().min(0);
const Failure = z.object({ Error: z.string(), Cause: z.string().optional() }).optional();
const Batch = z.object({
  taskToken: TaskToken,
  releaseId: ReleaseId,
  environment: EnvironmentName,
  batchIndex: BatchIndex,
});

export const STAGE_INPUTS = {
  Prepare: z.object({ releaseId: ReleaseId, app: AppName }),
  EnterEnvironment: z.object({ taskToken: TaskToken, releaseId: ReleaseId, environment: EnvironmentName }),
  Distribute: z.object({ taskToken: TaskToken, releaseId: ReleaseId, environment: EnvironmentName }),
  AwaitApproval: z.object({ taskToken: TaskToken, releaseId: ReleaseId, environment: EnvironmentName }),
  SwitchBatch: Batch,
  BakeUntil: z.object({ releaseId: ReleaseId, environment: EnvironmentName, batchIndex: BatchIndex, bakeSeconds: z.number().int().min(1) }),
  CompleteEnvironment: z.object({ releaseId: ReleaseId, environment: EnvironmentName }),
  PlanRevert: z.object({ releaseId: ReleaseId, environment: EnvironmentName, failure: Failure }),
  RevertBatch: Batch,
  FailEnvironment: z.object({ releaseId: ReleaseId, environment: EnvironmentName, failure: Failure }),
  RecordFailure: z.object({ releaseId: ReleaseId, failure: Failure }),
  Prune: z.object({ taskToken: TaskToken, releaseId: ReleaseId }),
  Finalize: z.object({ releaseId: ReleaseId }),
} as const;
export type StageName = keyof typeof STAGE_INPUTS;
export type StageInput<N extends StageName> = z.infer<(typeof STAGE_INPUTS)[N]>;
