import { stageFunction } from './lib/stage.ts';

/** Marks the release succeeded. */
export const { create, handler } = stageFunction('Finalize', (stages, input) => stages.finalize(input));
