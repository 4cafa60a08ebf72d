import middy from '@middy/core';
import { parse, type ReleaseStages, runStage, STAGES, type StageInput, type StageName } from '@slipway/core';
import { awsStages } from './aws.ts';

export type StagesLoader = () => Promise<ReleaseStages>;

/**
 * A stage Lambda, as the stage table describes it: parse the state's input with the stage's
 * schema, run its ReleaseStages method, return its result. `create` builds it on any runtime (the
 * local executor passes its own stages); `handler` is the AWS one.
 */
export function stageFunction<N extends StageName>(name: N) {
  const create = (load: StagesLoader) =>
    middy<unknown, unknown>().handler(async (event) => {
      const input = parse(STAGES[name].input, event, `${name} input`) as StageInput<N>;
      return (await runStage(await load(), name, input)) ?? null;
    });
  return { create, handler: create(awsStages) };
}
