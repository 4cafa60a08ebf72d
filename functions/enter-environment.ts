import { stageFunction } from './lib/stage.ts';

/**
 * A callback task: takes the environment's lock and completes its own token at once, or (an app
 * with `queue: true`) parks the release in line on the token until whoever frees the lock lets it in.
 */
export const { create, handler } = stageFunction('EnterEnvironment', (stages, input) => stages.enterEnvironment(input));
