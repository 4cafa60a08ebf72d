import { stageFunction } from './lib/stage.ts';

/** Takes the environment's lock (or waits in line when the app queues) and marks it distributing. */
export const { create, handler } = stageFunction('EnterEnvironment', (stages, input) => stages.enterEnvironment(input));
