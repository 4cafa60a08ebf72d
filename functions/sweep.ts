import middy from '@middy/core';
import { loadAwsRuntime } from '@slipway/aws';
import type { Slipway } from '@slipway/core';

/**
 * Runs on a schedule (every minute on AWS, every second in the dev server): times out approval gates
 * past their expiry, and asks SSM directly about host commands whose status event never came. With
 * `{retention: true}` (every six hours on AWS, hourly in the dev server) it applies the retention
 * policy instead: old release records and unused artifacts go.
 */
export function create(load: () => Promise<Slipway>) {
  return middy<unknown, { expired: number; reconciled: number } | { releases: number; artifacts: number }>().handler(async (event) => {
    const slipway = await load();
    if ((event as { retention?: unknown } | undefined)?.retention === true) {
      const releases = await slipway.retention.sweepReleases();
      const artifacts = await slipway.retention.sweepArtifacts();
      return { releases: releases.length, artifacts: artifacts.length };
    }
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
