import type { Strategy } from './schemas.ts';

/** One environment's part of a release plan: its hosts cut into the batches the strategy asks for. */
export interface EnvironmentPlan {
  name: string;
  approval: boolean;
  bakeSeconds: number;
  batches: string[][];
}

/**
 * The whole plan: stored once by Prepare (the release store keeps it), and read by every stage that
 * sends something to hosts. Host ids never travel in the state machine's data: a Step Functions
 * state's input or output holds at most 256 KB, and 5,000 instance ids alone take about 110 KB.
 */
export interface ReleasePlan {
  releaseId: string;
  app: string;
  environments: EnvironmentPlan[];
}

/**
 * What the state machine carries of an environment: what it branches and iterates on (the flow in
 * stage-table.ts reads these fields by name), its batches counted, no host.
 */
export type EnvironmentSummary = Omit<EnvironmentPlan, 'batches'> & { batchCount: number };

/** Prepare's answer: one small summary per environment, in pipeline order. */
export interface PlanSummary {
  environments: EnvironmentSummary[];
}

/**
 * At most this many batches in one release, all environments together. A Step Functions Standard
 * execution holds at most 25,000 history events, and one batch costs up to 27 of them: 19 to switch
 * it (the Map iteration, the callback task, the bake choice, BakeUntil, the Wait, the end) and 8 to
 * switch it back after a later failure. 700 batches is 18,900 events, which leaves room for the
 * environments' own states, retries and approvals. A release over it is refused by Prepare before
 * any host is touched, instead of failing half-switched when the history runs out.
 */
export const MAX_BATCHES_PER_RELEASE = 700;

export function summarizePlan(plan: ReleasePlan): PlanSummary {
  return {
    environments: plan.environments.map((env) => ({
      name: env.name,
      approval: env.approval,
      bakeSeconds: env.bakeSeconds,
      batchCount: env.batches.length,
    })),
  };
}

/**
 * What the SwitchBatches Map iterates over: the batch indexes 0..n-1. The local interpreter has no
 * intrinsic functions (no States.ArrayRange), so a stage hands the range to the state machine; each
 * index costs a few bytes (5,000 batches: about 24 KB), and each stage looks its hosts up by index.
 */
export function batchIndexes(environment: Pick<EnvironmentPlan, 'batches'>): number[] {
  return environment.batches.map((_, index) => index);
}

function sizeOf(batchSize: number | string, total: number): number {
  if (typeof batchSize === 'number') return batchSize;
  const percent = Number(batchSize.slice(0, -1));
  return Math.max(1, Math.ceil((percent / 100) * total));
}

function chunk(hosts: string[], size: number): string[][] {
  const batches: string[][] = [];
  for (let i = 0; i < hosts.length; i += size) batches.push(hosts.slice(i, i + size));
  return batches;
}

/** Cuts hosts into batches. Percentages are of the whole environment, rounded up, never below 1. */
export function planBatches(hosts: string[], strategy: Strategy): string[][] {
  if (hosts.length === 0) return [];
  switch (strategy.type) {
    case 'all-at-once':
      return [hosts];
    case 'rolling':
      return chunk(hosts, sizeOf(strategy.batchSize, hosts.length));
    case 'canary': {
      const canary = hosts.slice(0, Math.min(strategy.canaryHosts, hosts.length));
      const rest = hosts.slice(canary.length);
      return [canary, ...chunk(rest, sizeOf(strategy.batchSize, hosts.length))];
    }
  }
}
