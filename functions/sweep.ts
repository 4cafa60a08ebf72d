import middy from '@middy/core';
import { loadAwsRuntime } from '@slipway/aws';
import type { Slipway } from '@slipway/core';

/**
 * Runs on a schedule (every minute on AWS, every second in the dev server): times out approval gates
 * past their expiry, and asks SSM directly about host commands whose status event never came.
 */
export function create(load: () => Promise<Slipway>) {
  return middy<unknown, { expired: number; reconciled: number }>().handler(async () => {
    const slipway = await load();
    const expired = await slipway.approvals.expireDue();
    const reconciled = slipway.stages ? await slipway.stages.reconcileCommands() : 0;
    return { expired, reconciled };
  });
}

let aws: Promise<Slipway> | undefined;
export const handler = create(() => {
  aws ??= loadAwsRuntime(process.env);
  return aws;
});
