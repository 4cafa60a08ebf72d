import { ConflictError, NotFoundError, ReleaseEndedError } from '../errors.ts';
import type { Clock, IdGenerator } from '../ids.ts';
import type { EnvironmentPlan, ReleasePlan } from '../plan.ts';
import type { EventStore, PlanStore, ReleaseRecordStore, StepKind } from '../ports.ts';
import { assertTransition, environmentMayMove, type EnvironmentState, isTerminal, type Release, type ReleaseStatus } from '../release.ts';

/** Plans never change once stored: a warm function keeps the last few it read. */
const PLAN_CACHE_SIZE = 8;

export function stepKey(kind: StepKind, environment: string, batchIndex?: number): string {
  return batchIndex === undefined ? `${kind}#${environment}` : `${kind}#${environment}#${batchIndex}`;
}

/** The step a promote with `full: true` leaves: every pause still ahead is skipped. */
export const FULL_PROMOTION_KEY = 'promote#all';

/** The release a record switches hosts to: itself, or for a rollback, the release it goes back to. */
export function targetOf(release: Release): string {
  return release.rollback?.target ?? release.id;
}

export interface StageContextDeps {
  store: ReleaseRecordStore & EventStore & Pick<PlanStore, 'getPlan'>;
  clock: Clock;
  ids: IdGenerator;
}

/**
 * What every stage reads and writes of a release: the record, its status (moved forward only), its
 * environments' statuses (never moved back), its event log and its stored plan.
 */
export function createStageContext({ store, clock, ids }: StageContextDeps) {
  const now = () => clock.now().toISOString();

  async function requireRelease(releaseId: string): Promise<Release> {
    const release = await store.getRelease(releaseId);
    if (!release) throw new NotFoundError(`release ${releaseId} does not exist`);
    return release;
  }

  /** A stage that moves things forward stops for a release that ended (cancelled, say). */
  async function requireRunning(releaseId: string): Promise<Release> {
    const release = await requireRelease(releaseId);
    if (isTerminal(release.status)) throw new ReleaseEndedError(`release ${releaseId} already ended as ${release.status}`);
    return release;
  }

  async function record(releaseId: string, type: string, data?: Record<string, unknown>) {
    await store.appendEvent({ releaseId, id: ids.next(), at: now(), type, actor: 'slipway', data });
  }

  /**
   * Moves the release to `to` unless it is there already (`moved` says which); a release that ended
   * stops the workflow.
   */
  async function advance(releaseId: string, to: ReleaseStatus, reason?: string) {
    for (let attempt = 0; ; attempt++) {
      const release = await requireRelease(releaseId);
      if (release.status === to) return { release, moved: false };
      if (isTerminal(release.status)) {
        throw new ReleaseEndedError(`release ${releaseId} already ended as ${release.status}`);
      }
      assertTransition(release.status, to);
      try {
        return { release: await store.updateReleaseStatus(releaseId, release.status, to, now(), reason), moved: true };
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
  }

  async function environmentState(releaseId: string, environment: string): Promise<EnvironmentState | undefined> {
    return (await store.getEnvironmentStates(releaseId)).find((state) => state.environment === environment);
  }

  /**
   * Moves the environment to `status`; true when this call moved it, so that of two stages racing
   * to the same status exactly one goes on to record what the move means.
   */
  async function setEnvironmentStatus(release: Release, environment: string, status: ReleaseStatus): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      const state = await environmentState(release.id, environment);
      // A resumed or retried stage may come late: an environment's status never moves back.
      if (!state || !environmentMayMove(state.status, status)) return false;
      const at = now();
      try {
        // Only over the status just read: a stage racing this one (a failure, a cancel) wins or loses whole.
        await store.putEnvironmentState(
          {
            ...state,
            status,
            ...(status === 'distributing' && !state.startedAt ? { startedAt: at } : {}),
            ...(isTerminal(status) ? { endedAt: at } : {}),
          },
          state.status,
        );
        return true;
      } catch (error) {
        if (!(error instanceof ConflictError) || attempt >= 3) throw error;
      }
    }
  }

  /** Records why the environment is failing, once, over the status just read (a racing move is kept). */
  async function setEnvironmentFailure(release: Release, environment: string, failure: string) {
    for (let attempt = 0; ; attempt++) {
      const state = await environmentState(release.id, environment);
      if (!state || state.failure) return;
      try {
        await store.putEnvironmentState({ ...state, failure }, state.status);
        return;
      } catch (error) {
        if (!(error instanceof ConflictError) || attempt >= 3) throw error;
      }
    }
  }

  const plans = new Map<string, ReleasePlan>();
  async function planOf(releaseId: string): Promise<ReleasePlan> {
    const cached = plans.get(releaseId);
    if (cached) return cached;
    const plan = await store.getPlan(releaseId);
    if (!plan) throw new NotFoundError(`release ${releaseId} has no plan yet: Prepare has not run for it`);
    plans.set(releaseId, plan);
    if (plans.size > PLAN_CACHE_SIZE) plans.delete(plans.keys().next().value!);
    return plan;
  }

  async function environmentPlan(releaseId: string, environment: string): Promise<EnvironmentPlan> {
    const planned = (await planOf(releaseId)).environments.find((env) => env.name === environment);
    if (!planned) throw new NotFoundError(`the plan of release ${releaseId} has no environment ${environment}`);
    return planned;
  }

  async function batchHosts(releaseId: string, environment: string, batchIndex: number): Promise<string[]> {
    const batch = (await environmentPlan(releaseId, environment)).batches[batchIndex];
    if (!batch) throw new NotFoundError(`the plan of release ${releaseId} has no batch ${batchIndex + 1} in ${environment}`);
    return batch;
  }

  function environmentConfig(release: Release, environment: string) {
    const config = release.config.environments.find((env) => env.name === environment);
    if (!config) throw new NotFoundError(`release ${release.id} has no environment ${environment}`);
    return config;
  }

  return {
    now,
    requireRelease,
    requireRunning,
    record,
    advance,
    environmentState,
    setEnvironmentStatus,
    setEnvironmentFailure,
    planOf,
    environmentPlan,
    batchHosts,
    environmentConfig,
  };
}
export type StageContext = ReturnType<typeof createStageContext>;
