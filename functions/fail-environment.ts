import { stageFunction } from './lib/stage.ts';

/** Ends the release as failed (or rejected) in an environment and frees its lock. */
export const { create, handler } = stageFunction('FailEnvironment', (stages, input) => stages.failEnvironment(input));
