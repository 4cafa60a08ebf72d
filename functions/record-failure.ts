import { stageFunction } from './lib/stage.ts';

/** The last word on a failed execution: the release ends and every lock it holds is freed. */
export const { create, handler } = stageFunction('RecordFailure', (stages, input) => stages.recordFailure(input));
