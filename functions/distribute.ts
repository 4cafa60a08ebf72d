import { stageFunction } from './lib/stage.ts';

/** Sends the artifact to every host of the environment; the task waits for the command to finish. */
export const { create, handler } = stageFunction('Distribute', (stages, input) => stages.distribute(input));
