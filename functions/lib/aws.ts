import { loadAwsRuntime } from '@slipway/aws';
import type { ReleaseStages, Slipway } from '@slipway/core';

let runtime: Promise<Slipway> | undefined;

/** The runtime of this Lambda, built from its environment on the first invocation and kept while it is warm. */
export function awsRuntime(): Promise<Slipway> {
  runtime ??= loadAwsRuntime(process.env);
  return runtime;
}

/** The stage functions' use-cases, whose fleet is SSM Run Command. */
export async function awsStages(): Promise<ReleaseStages> {
  return (await awsRuntime()).stages!;
}
