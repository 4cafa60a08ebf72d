import type { Strategy } from './schemas.ts';

/**
 * A canary's pause after one batch: for a person (no `seconds`: `POST .../promote` goes on) or
 * `seconds` long (it goes on by itself; promote ends it early). `step` is its index in the strategy.
 */
export interface PlannedPause {
  afterBatch: number;
  step: number;
  seconds?: number;
}

/** One environment's part of a release plan: its hosts cut into the batches the strategy asks for. */
export interface EnvironmentPlan {
  name: string;
  approval: boolean;
  bakeSeconds: number;
  batches: string[][];
  /** A canary's pauses, in batch order; absent when there are none (and in plans stored before pauses). */
  pauses?: PlannedPause[];
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
  /**
   * The artifact's sha256 when the server read all of its bytes and found nothing that could land
   * outside the release (containment.ts): hosts then skip listing the archive themselves.
   */
  artifactChecked?: string;
}

/**
 * What the state machine carries of an environment: what it branches and iterates on (the flow in
 * stage-table.ts reads these fields by name), its batches counted, no host.
 */
export interface EnvironmentSummary {
  name: string;
  approval: boolean;
  bakeSeconds: number;
  batchCount: number;
  /**
   * Something follows a batch's switch (a bake, a pause, or both; analysis runs through the bake and
   * timed pauses): the batch's Watch stage runs, else the next batch starts at once.
   */
  watch: boolean;
}

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

/** The history events the 700 batches above reserve: what watched batches and analysis probes must fit in as well. */
export const HISTORY_EVENT_BUDGET = 18_900;
const EVENTS_PER_BATCH = 27;
/**
 * What a watched batch costs beyond the 27 (which already count one bake: its choice, its task and its
 * Wait): the Watch loop's second look, and each further round of it (Wait, Watch, WatchNext).
 */
const EVENTS_PER_WATCHED_BATCH = 9;
const EVENTS_PER_WATCH_ROUND = 10;
/**
 * One round of a timed pause: the TimedPause callback task (entered, scheduled, started, submitted,
 * timed out, exited), then Watch and WatchNext again. Without an analysis a timed pause is one round
 * however long it lasts (a promote completes the task's token, nothing looks for it); with one, a
 * round per probe.
 */
const EVENTS_PER_PAUSE_ROUND = 13;

/**
 * About how many history events switching (and, after a failure, reverting) one environment costs:
 * each batch, each watched batch's loop, each probe of its analysis and each round of a timed pause.
 * An estimate on the safe side, for Prepare to refuse a plan the execution could not hold.
 */
export function historyEventsOf(plan: Pick<EnvironmentPlan, 'batches' | 'pauses' | 'bakeSeconds'>, intervalSeconds: number | undefined): number {
  const rounds = (seconds: number, every: number) => (seconds > 0 ? Math.ceil(seconds / every) : 0);
  let events = plan.batches.length * EVENTS_PER_BATCH;
  plan.batches.forEach((_, index) => {
    const pause = plan.pauses?.find((p) => p.afterBatch === index);
    if (plan.bakeSeconds === 0 && !pause) return;
    const bake = intervalSeconds ? rounds(plan.bakeSeconds, intervalSeconds) : rounds(plan.bakeSeconds, plan.bakeSeconds);
    const seconds = pause?.seconds ?? 0;
    const paused = intervalSeconds ? rounds(seconds, intervalSeconds) : rounds(seconds, seconds);
    events += EVENTS_PER_WATCHED_BATCH + Math.max(0, bake - 1) * EVENTS_PER_WATCH_ROUND + paused * EVENTS_PER_PAUSE_ROUND;
  });
  return events;
}

export function summarizePlan(plan: ReleasePlan): PlanSummary {
  return {
    environments: plan.environments.map((env) => ({
      name: env.name,
      approval: env.approval,
      bakeSeconds: env.bakeSeconds,
      batchCount: env.batches.length,
      watch: env.bakeSeconds > 0 || (env.pauses?.length ?? 0) > 0,
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
  return planEnvironment(hosts, strategy).batches;
}

/**
 * Cuts hosts into batches, and places a canary's pauses after the batch they follow. A canary step
 * that reaches no new host (2 hosts, steps to "25%" then "50%") adds no batch; a pause after it
 * follows the batch before. Two pauses after one batch are one: for a person if either is.
 */
export function planEnvironment(hosts: string[], strategy: Strategy): { batches: string[][]; pauses: PlannedPause[] } {
  if (hosts.length === 0) return { batches: [], pauses: [] };
  switch (strategy.type) {
    case 'all-at-once':
      return { batches: [hosts], pauses: [] };
    case 'rolling':
      return { batches: chunk(hosts, sizeOf(strategy.batchSize, hosts.length)), pauses: [] };
    case 'canary': {
      if (strategy.steps) return planCanarySteps(hosts, strategy.steps);
      const canary = hosts.slice(0, Math.min(strategy.canaryHosts ?? 1, hosts.length));
      const rest = hosts.slice(canary.length);
      return { batches: [canary, ...chunk(rest, sizeOf(strategy.batchSize ?? 1, hosts.length))], pauses: [] };
    }
  }
}

type CanarySteps = NonNullable<Extract<Strategy, { type: 'canary' }>['steps']>;

function planCanarySteps(hosts: string[], steps: CanarySteps) {
  const batches: string[][] = [];
  const pauses: PlannedPause[] = [];
  let switched = 0;
  steps.forEach((step, index) => {
    if ('hosts' in step) {
      const reach = Math.min(hosts.length, sizeOf(step.hosts, hosts.length));
      if (reach > switched) batches.push(hosts.slice(switched, reach));
      switched = Math.max(switched, reach);
      return;
    }
    const afterBatch = batches.length - 1;
    const earlier = pauses.at(-1);
    if (earlier?.afterBatch === afterBatch) {
      // For a person if either is; else the longer wait.
      if (earlier.seconds !== undefined) {
        if (step.pause.seconds === undefined) delete earlier.seconds;
        else earlier.seconds = Math.max(earlier.seconds, step.pause.seconds);
      }
      return;
    }
    pauses.push({ afterBatch, step: index, ...(step.pause.seconds === undefined ? {} : { seconds: step.pause.seconds }) });
  });
  return { batches, pauses };
}
