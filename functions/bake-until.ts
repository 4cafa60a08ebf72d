import { stageFunction } from './lib/stage.ts';

/** Computes, once, when the bake after a batch ends. */
export const { create, handler } = stageFunction('BakeUntil', (stages, input) => stages.bakeUntil(input));
