import middy from '@middy/core';
import { loadAwsStages } from '@slipway/aws';
import { parse, type ReleaseStages, STAGE_INPUTS, type StageInput, type StageName } from '@slipway/core';

export type StagesLoader = () => Promise<ReleaseStages>;

/**
 * A stage Lambda: parse the state's input with its schema, run the stage, return its result.
 * `create` builds it on any runtime (the local executor passes its own); `handler` is the AWS one.
 */
export function stageFunction<N extends StageName>(name: N, run: (stages: ReleaseStages, input: StageInput<N>) => Promise<unknown>) {
  const create = (load: StagesLoader) =>
    middy<unknown, unknown>().handler(async (event) => {
      const input = parse(STAGE_INPUTS[name], event, `${name} input`) as StageInput<N>;
      return (await run(await load(), input)) ?? null;
    });
  let aws: Promise<ReleaseStages> | undefined;
  return {
    create,
    handler: create(() => {
      aws ??= loadAwsStages(process.env);
      return aws;
    }),
  };
}
