import { stageFunction } from './lib/stage.ts';

/** Removes old releases on every host beyond keepReleases, never the live or retained ones. */
export const { create, handler } = stageFunction('Prune', (stages, input) => stages.prune(input));
