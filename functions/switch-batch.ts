import { stageFunction } from './lib/stage.ts';

/** Switches one batch of hosts to the release (hooks, atomic current, health check). */
export const { create, handler } = stageFunction('SwitchBatch', (stages, input) => stages.switchBatch(input));
