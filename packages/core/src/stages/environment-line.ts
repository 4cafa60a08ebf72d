import { ConflictError, DependencyUnavailableError, EnvironmentLockedError, ReleaseEndedError, StaleTaskTokenError } from '../errors.ts';
import type { Clock } from '../ids.ts';
import type { Logger } from '../logger.ts';
import { batchIndexes } from '../plan.ts';
import type { LockStore, PlanStore, QueueWaiter, ReleaseRecordStore, Workflow } from '../ports.ts';
import { isTerminal, type Release } from '../release.ts';
import type { StageContext } from './context.ts';

/** A lock lease outlives the longest step; a crashed holder's lease lets others in after it. */
export const LOCK_LEASE_SECONDS = 6 * 3600;
/** The lease an open (or a rollback) takes on its first environment until the workflow gets there. */
export const OPEN_LOCK_LEASE_SECONDS = 15 * 60;
/** How many ended releases at the head of a line one wake-up clears before it gives up to the sweep. */
const WAKE_TURNS = 10;

export interface EnvironmentLineDeps {
  store: LockStore & Pick<ReleaseRecordStore, 'getRelease'> & Pick<PlanStore, 'ensureHostStates'>;
  workflow: Workflow;
  clock: Clock;
  logger: Logger;
  context: StageContext;
}

/**
 * Leases and the line: one release at a time holds an environment's lock (leased, renewed by each
 * stage, taken over when a crashed holder's lease ran out); with `queue: true` the others wait in
 * line on their EnterEnvironment token, and whoever frees the lock wakes the first of them.
 */
export function createEnvironmentLine({ store, workflow, clock, logger, context }: EnvironmentLineDeps) {
  const { now, record, advance, requireRelease, environmentState, setEnvironmentStatus, environmentPlan, environmentConfig } = context;

  /** Takes or renews the environment's lock for this release, for `leaseSeconds` from now. */
  async function holdLock(release: Release, environment: string, leaseSeconds: number) {
    const at = clock.now();
    await store.acquireLock(
      {
        app: release.app,
        environment,
        holder: release.id,
        acquiredAt: at.toISOString(),
        leaseUntil: new Date(at.getTime() + leaseSeconds * 1000).toISOString(),
      },
      at.toISOString(),
    );
  }

  /**
   * Lets the release into the environment, or puts it in line. `taskToken` is its EnterEnvironment
   * task's: completed at once when it gets in, kept in line otherwise. `join` is false for a
   * wake-up, which must not hand the line an older token than the one it holds. Safe to run twice.
   */
  async function enter(release: Release, environment: string, taskToken: string, join: boolean): Promise<'entered' | 'waiting'> {
    const env = environmentConfig(release, environment);
    const planned = await environmentPlan(release.id, env.name);
    const output = { batches: batchIndexes(planned) };
    const state = await environmentState(release.id, env.name);
    if (state && state.status !== 'pending' && state.status !== 'distributing') {
      // Entered before and moved on: entering again must not take its lock or move anything back.
      logger.warn('an environment that moved on was entered again; nothing changes', { releaseId: release.id, environment: env.name, status: state.status });
      await letIn(release, env.name, taskToken, output);
      return 'entered';
    }
    const leaseSeconds = env.approval ? env.approval.timeoutHours * 3600 + LOCK_LEASE_SECONDS : LOCK_LEASE_SECONDS;
    if (release.config.queue) {
      if (!(await takeTurn(release, env.name, taskToken, leaseSeconds, join))) return 'waiting';
    } else {
      // No line: a held environment fails the release (EnvironmentLockedError), as at the open.
      await holdLock(release, env.name, leaseSeconds);
    }
    // Two entries at once (the resumed task, the sweep, a freed lock's wake-up): one moves it, one records it.
    const entering = await setEnvironmentStatus(release, env.name, 'distributing');
    if (!release.rollback) await advance(release.id, 'distributing');
    await store.ensureHostStates(release.id, env.name, planned.batches.flat(), now());
    if (entering) await record(release.id, 'environment.entered', { environment: env.name });
    await letIn(release, env.name, taskToken, output);
    return 'entered';
  }

  /**
   * Takes the lock if it is this release's turn: the lock is free (or ours, or its lease ran out) and
   * no earlier release waits for it. Otherwise the release is in line (joined before looking, so a
   * holder that frees the lock meanwhile finds it) and its place is recorded once.
   */
  async function takeTurn(release: Release, environment: string, taskToken: string, leaseSeconds: number, join: boolean) {
    const lock = await store.getLock(release.app, environment);
    if (lock?.holder === release.id) {
      await holdLock(release, environment, leaseSeconds);
      return true;
    }
    const { created } = join
      ? await store.joinQueue({ app: release.app, environment, releaseId: release.id, taskToken, since: now() })
      : { created: false };
    const ahead = await waitersAhead(release, environment);
    if (ahead === 0) {
      try {
        await holdLock(release, environment, leaseSeconds);
        return true;
      } catch (error) {
        if (!(error instanceof EnvironmentLockedError)) throw error;
      }
    }
    if (created) {
      const holder = (await store.getLock(release.app, environment))?.holder;
      await record(release.id, 'environment.queued', { environment, position: ahead + 1, ...(holder ? { holder } : {}) });
    }
    return false;
  }

  /** How many releases wait ahead of this one; ended ones at the head of the line are cleared first. */
  async function waitersAhead(release: Release, environment: string): Promise<number> {
    const ahead = (await store.listQueue(release.app, environment)).filter((w) => w.releaseId < release.id);
    while (ahead.length > 0 && (await dismissIfEnded(ahead[0]!))) ahead.shift();
    return ahead.length;
  }

  /** A waiter whose release ended (or is gone) leaves the line, and its task hears why. */
  async function dismissIfEnded(waiter: QueueWaiter): Promise<boolean> {
    const release = await store.getRelease(waiter.releaseId);
    if (release && !isTerminal(release.status)) return false;
    await store.leaveQueue(waiter.app, waiter.environment, waiter.releaseId);
    const why = release ? `release ${waiter.releaseId} already ended as ${release.status}` : `release ${waiter.releaseId} does not exist`;
    await tellTask(waiter.taskToken, () => workflow.sendTaskFailure(waiter.taskToken, ReleaseEndedError.name, why));
    return true;
  }

  /**
   * Completes the task's token and leaves the line. A token no task waits on any more (the local
   * executor was down, the task timed out) leaves the waiter in place: a resumed task calls
   * EnterEnvironment again with it, and finds the lock its own.
   */
  async function letIn(release: Release, environment: string, taskToken: string, output: { batches: number[] }) {
    if (!(await tellTask(taskToken, () => workflow.sendTaskSuccess(taskToken, output)))) return;
    if (release.config.queue) await store.leaveQueue(release.app, environment, release.id);
  }

  /** Runs `send` on a task's token; false when no task waits on it any more. */
  async function tellTask(taskToken: string, send: () => Promise<void>): Promise<boolean> {
    try {
      await send();
      return true;
    } catch (error) {
      if (!(error instanceof StaleTaskTokenError)) throw error;
      logger.info('no task waits on this token any more; the line keeps its place', {});
      return false;
    }
  }

  /**
   * Wakes the first release waiting for the environment: runs its entry again on its token, which
   * lets it in if its turn came, or keeps it in line. Ended releases at the head leave the line on
   * the way. Idempotent: two wake-ups (two releasers, the sweep) let the same release in once.
   */
  async function wakeNext(app: string, environment: string): Promise<void> {
    for (let turn = 0; turn < WAKE_TURNS; turn++) {
      const [first] = await store.listQueue(app, environment, 1);
      if (!first) return;
      if (await dismissIfEnded(first)) continue;
      if (await wakeOne(first)) return;
    }
  }

  /** Runs the waiter's entry; true when the line stays as it is (it got in or still waits). */
  async function wakeOne(waiter: QueueWaiter): Promise<boolean> {
    const release = await requireRelease(waiter.releaseId);
    try {
      await enter(release, waiter.environment, waiter.taskToken, false);
      return true;
    } catch (error) {
      if (error instanceof ConflictError || error instanceof DependencyUnavailableError) throw error;
      // It cannot get in (a missing plan, a release that just ended): its task fails with why.
      await store.leaveQueue(waiter.app, waiter.environment, waiter.releaseId);
      const name = error instanceof Error ? error.name : 'Error';
      const message = error instanceof Error ? error.message : String(error);
      await tellTask(waiter.taskToken, () => workflow.sendTaskFailure(waiter.taskToken, name, message));
      return false;
    }
  }

  /**
   * Frees the environment's lock held by `releaseId` and wakes the first in line. A wake-up that
   * fails never fails the release that freed the lock: the sweep wakes the line on its next pass.
   */
  async function freeEnvironment(app: string, environment: string, releaseId: string) {
    await store.leaveQueue(app, environment, releaseId);
    await store.releaseLock(app, environment, releaseId);
    try {
      await wakeNext(app, environment);
    } catch (error) {
      logger.warn('could not wake the next release in line; the sweep will', { app, environment, error });
    }
  }

  /**
   * The sweep's part of the line: wakes the first waiter of every line whose lock is free or whose
   * lease ran out (a crashed holder), so nothing waits forever. Bounded: `limit` waiters looked at.
   */
  async function wakeQueues(limit = 100): Promise<number> {
    let woken = 0;
    for (const { app, environment } of await store.listQueuedEnvironments(limit)) {
      const lock = await store.getLock(app, environment);
      if (lock && lock.leaseUntil > now()) continue;
      await wakeNext(app, environment);
      woken += 1;
    }
    return woken;
  }

  return { holdLock, enter, freeEnvironment, wakeQueues };
}
