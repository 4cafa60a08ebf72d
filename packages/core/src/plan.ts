import type { Strategy } from './schemas.ts';

/** One environment's part of a release plan: its hosts cut into the batches the strategy asks for. */
export interface EnvironmentPlan {
  name: string;
  approval: boolean;
  bakeSeconds: number;
  batches: string[][];
}

export interface ReleasePlan {
  releaseId: string;
  app: string;
  environments: EnvironmentPlan[];
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
