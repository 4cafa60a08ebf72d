import { stageFunction } from './lib/stage.ts';

/** Plans the release: each environment's hosts cut into batches by its strategy. */
export const { create, handler } = stageFunction('Prepare', (stages, input) => stages.prepare(input));
