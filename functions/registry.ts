import { STAGE_NAMES, type StageName } from '@slipway/core';
import { stageFunction } from './lib/stage.ts';

/**
 * The stage functions by the name their ARN placeholder uses in the ASL (`${PrepareFunctionArn}`),
 * one per entry of the stage table. The local executor calls these; on AWS each is its own Lambda
 * whose entry point is the generated functions/<stage>.ts.
 */
export const STAGE_FUNCTIONS = Object.fromEntries(STAGE_NAMES.map((name) => [name, stageFunction(name)])) as {
  [N in StageName]: ReturnType<typeof stageFunction<N>>;
};
