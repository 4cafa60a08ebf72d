import { stageFunction } from './lib/stage.ts';

/** The approval gate: records the request and waits for a decision. */
export const { create, handler } = stageFunction('AwaitApproval', (stages, input) => stages.awaitApproval(input));
