import { stageFunction } from './lib/stage.ts';

/** Records the release live on the environment and frees its lock. */
export const { create, handler } = stageFunction('CompleteEnvironment', (stages, input) => stages.completeEnvironment(input));
