import middy from '@middy/core';
import type { Slipway } from '@slipway/core';
import { awsRuntime } from './lib/aws.ts';

/**
 * Runs on a schedule (every minute on AWS, every second in the dev server): times out approval gates
 * past their expiry, asks SSM directly about host commands whose status event never came, lets the
 * first release in line in wherever an environment's lock is free or its lease ran out (a crashed
 * holder), and starts releases a crash left pending without an execution. With
 * `{retention: true}` (every six hours on AWS, hourly in the dev server) it applies the retention
 * policy instead: old release records and unused artifacts go.
 */
type SweepResult = { expired: number; reconciled: number; woken: number; started: number } | { releases: number; artifacts: number };

export function create(load: () => Promise<Slipway>) {
  return middy<unknown, SweepResult>().handler(async (event) => {
    const slipway = await load();
    if ((event as { retention?: unknown } | undefined)?.retention === true) {
      const releases = await slipway.retention.sweepReleases();
      const artifacts = await slipway.retention.sweepArtifacts();
      return { releases: releases.length, artifacts: artifacts.length };
    }
    const expired = await slipway.approvals.expireDue();
    const reconciled = slipway.stages ? await slipway.stages.reconcileCommands() : 0;
    const woken = slipway.stages ? await slipway.stages.wakeQueues() : 0;
    // A crash between recording a release and starting its execution leaves it pending: start it.
    const started = (await slipway.releases.startOrphans()).length;
    return { expired, reconciled, woken, started };
  });
}

export const handler = create(awsRuntime);
