import { STAGE_NAMES, type StageName } from '@slipway/core';
import { stageFunction } from './lib/stage.ts';

/**
 * The package's entry point (`@slipway/functions`) for runtimes other than Lambda. On AWS each file
 * here is one Lambda whose `handler` infra/ deploys; the local runtime builds the same functions over
 * its own use-cases with each one's `create`, and calls them where AWS would invoke them.
 */
export { create as createCommandStatus } from './command-status.ts';
export { create as createExecutionFailed } from './execution-failed.ts';
export type { StagesLoader } from './lib/stage.ts';
export { create as createSweep } from './sweep.ts';

/**
 * The stage functions by the name their ARN placeholder uses in the ASL (`${PrepareFunctionArn}`),
 * one per entry of the stage table. The local executor calls these; on AWS each is its own Lambda
 * whose entry point is the generated functions/<stage>.ts.
 */
export const STAGE_FUNCTIONS = Object.fromEntries(STAGE_NAMES.map((name) => [name, stageFunction(name)])) as {
  [N in StageName]: ReturnType<typeof stageFunction<N>>;
};
