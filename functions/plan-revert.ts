import { stageFunction } from './lib/stage.ts';

/** Lists the switched batches of a failed environment, newest first. */
export const { create, handler } = stageFunction('PlanRevert', (stages, input) => stages.planRevert(input));
