import * as awaitApproval from './await-approval.ts';
import * as bakeUntil from './bake-until.ts';
import * as completeEnvironment from './complete-environment.ts';
import * as distribute from './distribute.ts';
import * as enterEnvironment from './enter-environment.ts';
import * as failEnvironment from './fail-environment.ts';
import * as finalize from './finalize.ts';
import * as planRevert from './plan-revert.ts';
import * as prepare from './prepare.ts';
import * as prune from './prune.ts';
import * as recordFailure from './record-failure.ts';
import * as revertBatch from './revert-batch.ts';
import * as switchBatch from './switch-batch.ts';

/**
 * The stage functions by the name their ARN placeholder uses in the ASL (`${PrepareFunctionArn}`).
 * The local executor calls these; on AWS each is its own Lambda.
 */
export const STAGE_FUNCTIONS = {
  Prepare: prepare,
  EnterEnvironment: enterEnvironment,
  Distribute: distribute,
  AwaitApproval: awaitApproval,
  SwitchBatch: switchBatch,
  BakeUntil: bakeUntil,
  CompleteEnvironment: completeEnvironment,
  PlanRevert: planRevert,
  RevertBatch: revertBatch,
  FailEnvironment: failEnvironment,
  RecordFailure: recordFailure,
  Prune: prune,
  Finalize: finalize,
} as const;
