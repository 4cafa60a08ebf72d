import { stageFunction } from './lib/stage.ts';

/** Puts one batch of hosts back on what was live before. */
export const { create, handler } = stageFunction('RevertBatch', (stages, input) => stages.revertBatch(input));
