import { type ApprovalService, approvalStepKey } from './approvals.ts';
import {
  StaleTaskTokenError,
  ApprovalRejectedError,
  ApprovalTimedOutError,
  ConflictError,
  DependencyUnavailableError,
  EnvironmentLockedError,
  HostCommandFailedError,
  NotFoundError,
  ReleaseEndedError,
  UnprocessableError,
} from './errors.ts';
import type { HostScript } from './host-scripts.ts';
import type { Clock, IdGenerator } from './ids.ts';
import { deliverOutcome } from './steps.ts';
import type { Logger } from './logger.ts';
import {
  batchIndexes,
  type EnvironmentPlan,
  MAX_BATCHES_PER_RELEASE,
  planBatches,
  type PlanSummary,
  type ReleasePlan,
  summarizePlan,
} from './plan.ts';
import type {
  ArtifactStore,
  Fleet,
  HostInvocation,
  QueueWaiter,
  ReleaseStore,
  ResolvedTargets,
  StepKind,
  StepOutcome,
  Workflow,
} from './ports.ts';
import {
  assertTransition,
  environmentMayMove,
  type EnvironmentState,
  type HostStatus,
  isTerminal,
  type Release,
  type ReleaseStatus,
} from './release.ts';

/**
 * The work behind each state of statemachines/release.asl.json. Every stage may run more than once
 * for the same input (Lambda retries, a resumed local execution) and does its work once: host
 * commands are recorded as steps before they are sent, and a step that already finished answers
 * the new callback token with its recorded outcome.
 *
 * The state machine carries no host ids, whatever the fleet's size: Prepare stores the plan and
 * answers one small summary per environment, EnterEnvironment answers the batch indexes to iterate,
 * and each stage that sends a command reads its hosts from the stored plan by environment name and
 * batch index.
 */
export interface StageDeps {
  approvals: ApprovalService;
  store: ReleaseStore;
  fleet: Fleet;
  workflow: Workflow;
  objects: ArtifactStore;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
}

/** How long a step may run on hosts before the task gives up; the ASL TimeoutSeconds are larger. */
export const COMMAND_TIMEOUT_SECONDS = { distribute: 1800, switch: 900, revert: 600, prune: 600 } as const;
/** At most 5 minutes: the URL travels in the SSM command, which anyone allowed to list commands reads. */
const ARTIFACT_URL_TTL_SECONDS = 300;
/** A lock lease outlives the longest step; a crashed holder's lease lets others in after it. */
const LOCK_LEASE_SECONDS = 6 * 3600;
export const OPEN_LOCK_LEASE_SECONDS = 15 * 60;
const CAUSE_LIMIT = 4000;
/** Plans never change once stored: a warm function keeps the last few it read. */
const PLAN_CACHE_SIZE = 8;
/** How many host records a finished command writes at once (5,000 hosts must fit in one Lambda). */
const HOST_WRITES_IN_FLIGHT = 25;
/** How many unreachable hosts a refusal names; the rest are counted. */
const UNREACHABLE_NAMED = 10;
/** How many failed hosts a step's settled event names; the rest are counted. */
const FAILED_HOSTS_NAMED = 50;
/** How many ended releases at the head of a line one wake-up clears before it gives up to the sweep. */
const WAKE_TURNS = 10;

export interface StageFailure {
  Error: string;
  Cause?: string;
}

function stepKey(kind: StepKind, environment: string, batchIndex?: number): string {
  return batchIndex === undefined ? `${kind}#${environment}` : `${kind}#${environment}#${batchIndex}`;
}

function tail(text: string, limit: number): string {
  return text.length <= limit ? text : `…${text.slice(text.length - limit)}`;
}

/** A person-readable account of what failed where, for the release's reason and the task's cause. */
export function describeFailure(kind: StepKind, environment: string, failed: HostInvocation[], batchIndex?: number) {
  const where = batchIndex === undefined ? `${kind} in ${environment}` : `${kind} of batch ${batchIndex + 1} in ${environment}`;
  const first = failed[0];
  const detail = first
    ? `${first.host} ${first.status === 'failed' ? `exited ${first.exitCode}` : first.status}: ${tail((first.stderr || first.stdout).trim(), 500)}`
    : 'no host reported';
  const others = failed.length > 1 ? ` (and ${failed.length - 1} more host${failed.length > 2 ? 's' : ''})` : '';
  return `${where} failed on ${detail}${others}`;
}

/**
 * Runs `work` on every item, at most `limit` at a time (for adapters too: 5,000 hosts one by one
 * outlast a 60-second function, all at once overrun a service's rate). After a failure no new item
 * starts; the first failure is thrown once the running ones end.
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

const count = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

/** "production: 3 of 5,000 hosts cannot take commands now: i-0a… (SSM PingStatus ConnectionLost), …": named up to a limit. */
function describeUnreachable(environment: string, resolved: ResolvedTargets): string {
  const { unreachable } = resolved;
  const named = unreachable.slice(0, UNREACHABLE_NAMED).map((u) => `${u.host} (${u.reason})`);
  const more = unreachable.length > named.length ? `, and ${unreachable.length - named.length} more` : '';
  const total = resolved.hosts.length + unreachable.length;
  return `${environment}: ${unreachable.length} of ${count(total, 'host')} cannot take commands now: ${named.join(', ')}${more}`;
}

export function createReleaseStages(deps: StageDeps) {
  const { store, fleet, workflow, objects, clock, ids, logger, approvals } = deps;
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

  async function setEnvironmentStatus(release: Release, environment: string, status: ReleaseStatus) {
    const states = await store.getEnvironmentStates(release.id);
    const state = states.find((s) => s.environment === environment);
    // A resumed or retried stage may come late: an environment's status never moves back.
    if (!state || !environmentMayMove(state.status, status)) return;
    const at = now();
    await store.putEnvironmentState({
      ...state,
      status,
      ...(status === 'distributing' && !state.startedAt ? { startedAt: at } : {}),
      ...(isTerminal(status) ? { endedAt: at } : {}),
    });
  }

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

  async function environmentState(releaseId: string, environment: string): Promise<EnvironmentState | undefined> {
    return (await store.getEnvironmentStates(releaseId)).find((state) => state.environment === environment);
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

  /**
   * Runs a host command as a step the waiting task is told about when it finishes. Called again
   * (retry, resume), it never sends the command twice: it hands the running step the new token, or
   * answers the new token at once with the outcome already recorded.
   */
  async function runCommandStep(
    taskToken: string,
    release: Release,
    kind: Exclude<StepKind, 'bake' | 'approval'>,
    environment: string,
    hosts: string[],
    script: HostScript,
    batchIndex?: number,
  ) {
    const at = now();
    const { created, step } = await store.startStep({
      releaseId: release.id,
      key: stepKey(kind, environment, batchIndex),
      kind,
      environment,
      ...(batchIndex === undefined ? {} : { batchIndex }),
      hosts,
      commandId: ids.next(),
      taskToken,
      state: 'running',
      createdAt: at,
      updatedAt: at,
    });
    if (!created) {
      const running = await store.replaceStepToken(release.id, step.key, taskToken, at);
      if (!running) {
        await deliverOutcome(workflow, (await store.getStep(release.id, step.key))!, taskToken);
        return;
      }
    }
    // Sending is idempotent by command id: this also covers a crash between recording and sending.
    await fleet.send({ commandId: step.commandId!, hosts, script, timeoutSeconds: COMMAND_TIMEOUT_SECONDS[kind] });
    if (created) await record(release.id, `${kind}.started`, { environment, batchIndex, hosts: hosts.length });
  }

  const HOST_STATUS_ON_SUCCESS: Record<Exclude<StepKind, 'bake' | 'approval'>, HostStatus | undefined> = {
    distribute: 'distributed',
    switch: 'healthy',
    revert: 'reverted',
    prune: undefined,
  };

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
    const entering = state?.status !== 'distributing';
    await setEnvironmentStatus(release, env.name, 'distributing');
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

  return {
    /**
     * Plans the release and stores the plan; answers only its summary (the state machine's data
     * holds no host). Refuses, before any host is touched, a plan that names hosts that cannot take
     * commands now (they would only fail the release after the delivery timeout), and a plan with
     * more batches than one execution's history can hold.
     */
    async prepare(input: { releaseId: string; app: string }): Promise<PlanSummary> {
      const existing = await store.getPlan(input.releaseId);
      if (existing) return summarizePlan(existing);
      const release = await requireRelease(input.releaseId);
      if (isTerminal(release.status)) throw new ReleaseEndedError(`release ${release.id} already ended as ${release.status}`);
      const environments: EnvironmentPlan[] = [];
      const unreachable: string[] = [];
      let empty: string | undefined;
      for (const env of release.config.environments) {
        const resolved = await fleet.resolveTargets(env.targets);
        if (resolved.unreachable.length > 0) unreachable.push(describeUnreachable(env.name, resolved));
        else if (resolved.hosts.length === 0) empty ??= env.name;
        environments.push({
          name: env.name,
          approval: env.approval !== undefined,
          bakeSeconds: env.bakeSeconds,
          batches: planBatches(resolved.hosts, env.strategy),
        });
      }
      if (unreachable.length > 0) {
        const remedy = 'bring them back online (SSM Agent running and connected), or take them out of the environment\'s targets';
        throw new UnprocessableError(`not every host can take commands, so nothing was sent. ${unreachable.join('; ')}. To go on, ${remedy}`);
      }
      if (empty) throw new NotFoundError(`environment ${empty} has no hosts: its targets match nothing`);
      const batchCount = environments.reduce((sum, env) => sum + env.batches.length, 0);
      if (batchCount > MAX_BATCHES_PER_RELEASE) {
        const perEnvironment = environments.map((env) => `${env.name} ${count(env.batches.length, 'batch', 'batches')}`);
        const limit = `one release switches at most ${MAX_BATCHES_PER_RELEASE} (a Step Functions execution holds at most 25,000 history events)`;
        throw new UnprocessableError(`the plan has ${count(batchCount, 'batch', 'batches')} (${perEnvironment.join(', ')}); ${limit}: use larger batches`);
      }
      const plan = await store.savePlan({ releaseId: release.id, app: release.app, environments });
      await record(release.id, 'release.planned', {
        environments: plan.environments.map((e) => ({
          name: e.name,
          hosts: e.batches.reduce((sum, batch) => sum + batch.length, 0),
          batches: e.batches.length,
          largestBatch: Math.max(...e.batches.map((batch) => batch.length)),
        })),
      });
      return summarizePlan(plan);
    },

    /**
     * The EnterEnvironment callback task: takes the lock, marks the environment distributing and
     * completes its own token with the batch indexes to switch. An app with `queue: true` whose
     * environment is held (or has an earlier release waiting) parks the release in line on the
     * token instead; whoever frees the lock wakes the first in line (`wakeNext`).
     */
    async enterEnvironment(input: { taskToken: string; releaseId: string; environment: string }): Promise<void> {
      const release = await requireRunning(input.releaseId);
      await enter(release, input.environment, input.taskToken, true);
    },

    /**
     * The sweep's part of the line: wakes the first waiter of every line whose lock is free or whose
     * lease ran out (a crashed holder), so nothing waits forever. Bounded: `limit` waiters looked at.
     */
    async wakeQueues(limit = 100): Promise<number> {
      let woken = 0;
      for (const { app, environment } of await store.listQueuedEnvironments(limit)) {
        const lock = await store.getLock(app, environment);
        if (lock && lock.leaseUntil > now()) continue;
        await wakeNext(app, environment);
        woken += 1;
      }
      return woken;
    },

    async distribute(input: { taskToken: string; releaseId: string; environment: string }) {
      const release = await requireRunning(input.releaseId);
      const hosts = (await environmentPlan(release.id, input.environment)).batches.flat();
      const location = await objects.locationOf?.(release.artifact.key);
      await runCommandStep(input.taskToken, release, 'distribute', input.environment, hosts, {
        kind: 'distribute',
        deployRoot: release.config.deployRoot,
        releaseId: release.id,
        version: release.version,
        // The command's parameters are readable by anyone allowed to list commands: hosts read the
        // artifact with their own instance role when they can, and the URL expires within 5 minutes.
        artifactUrl: await objects.presignDownload(release.artifact.key, ARTIFACT_URL_TTL_SECONDS),
        ...(location?.s3Uri ? { artifactS3: { uri: location.s3Uri, ...(location.region ? { region: location.region } : {}) } } : {}),
        sha256: release.artifact.sha256,
        sharedPaths: release.config.sharedPaths,
        postDeploy: release.config.hooks.postDeploy,
      });
    },

    /**
     * The gate: holds the task's token in a step and asks the approvers (once). The request exists
     * before the release says awaiting_approval, so whoever reacts to that status can decide at once.
     */
    async awaitApproval(input: { taskToken: string; releaseId: string; environment: string }) {
      const release = await requireRunning(input.releaseId);
      const at = now();
      const { created, step } = await store.startStep({
        releaseId: release.id,
        key: approvalStepKey(input.environment),
        kind: 'approval',
        environment: input.environment,
        hosts: [],
        taskToken: input.taskToken,
        state: 'running',
        createdAt: at,
        updatedAt: at,
      });
      if (!created && !(await store.replaceStepToken(release.id, step.key, input.taskToken, at))) {
        await deliverOutcome(workflow, (await store.getStep(release.id, step.key))!, input.taskToken);
        return;
      }
      await approvals.request(release, input.environment);
      // The environment first: when the release says awaiting_approval, everything under it does too.
      await setEnvironmentStatus(release, input.environment, 'awaiting_approval');
      await advance(release.id, 'awaiting_approval');
    },

    async switchBatch(input: { taskToken: string; releaseId: string; environment: string; batchIndex: number }) {
      // Never switch a host for a release that ended (cancelled, failed): the workflow reverts instead.
      const release = await requireRunning(input.releaseId);
      const env = environmentConfig(release, input.environment);
      const hosts = await batchHosts(release.id, env.name, input.batchIndex);
      const state = await environmentState(release.id, env.name);
      if (state && !isTerminal(state.status)) {
        await setEnvironmentStatus(release, env.name, 'switching');
        await advance(release.id, 'switching');
        await holdLock(release, env.name, LOCK_LEASE_SECONDS);
      }
      await runCommandStep(
        input.taskToken,
        release,
        'switch',
        env.name,
        hosts,
        {
          kind: 'switch',
          deployRoot: release.config.deployRoot,
          releaseId: targetOf(release),
          switchId: release.id,
          version: release.version,
          preRelease: release.config.hooks.preRelease,
          postRelease: release.config.hooks.postRelease,
          healthCheck: release.config.hooks.healthCheck,
          healthCheckAttempts: 3,
          healthCheckIntervalSeconds: 2,
        },
        input.batchIndex,
      );
    },

    /** When the bake after a batch ends; computed once, so a resumed Wait does not bake again. */
    async bakeUntil(input: { releaseId: string; environment: string; batchIndex: number; bakeSeconds: number }) {
      const at = clock.now();
      const { step } = await store.startStep({
        releaseId: input.releaseId,
        key: stepKey('bake', input.environment, input.batchIndex),
        kind: 'bake',
        environment: input.environment,
        batchIndex: input.batchIndex,
        hosts: [],
        state: 'succeeded',
        until: new Date(at.getTime() + input.bakeSeconds * 1000).toISOString(),
        createdAt: at.toISOString(),
        updatedAt: at.toISOString(),
      });
      return { until: step.until! };
    },

    /**
     * Records the environment live, once: the live record first, then the environment's status
     * (which marks it done), then, for the last environment, the release (live everywhere is
     * `succeeded`: a cancel from here on is refused; pruning is after-care), then the lock.
     */
    async completeEnvironment(input: { releaseId: string; environment: string }) {
      const release = await requireRunning(input.releaseId);
      const state = await environmentState(release.id, input.environment);
      const target = targetOf(release);
      if (state?.status !== 'succeeded') {
        const live = await store.getEnvironmentLive(release.app, input.environment);
        if (live?.liveRelease?.id !== target) {
          // A rollback goes back to a release already retained; a release joins the retained ones,
          // and so does the one live before it, however old: it is where a rollback goes by default.
          const previous = live?.liveRelease ? [{ id: live.liveRelease.id, version: live.liveRelease.version }] : [];
          const retained = release.rollback
            ? (live?.retained ?? [])
            : [{ id: release.id, version: release.version }, ...previous, ...(live?.retained ?? [])]
                .filter((kept, index, all) => all.findIndex((other) => other.id === kept.id) === index)
                .slice(0, release.config.keepReleases);
          await store.putEnvironmentLive({
            app: release.app,
            environment: input.environment,
            liveRelease: { id: target, version: release.version, since: now() },
            ...(live?.liveRelease ? { previousRelease: { id: live.liveRelease.id, version: live.liveRelease.version } } : {}),
            retained,
          });
          await record(release.id, 'environment.live', { environment: input.environment, version: release.version, release: target });
        }
        await setEnvironmentStatus(release, input.environment, 'succeeded');
      }
      if (release.config.environments.at(-1)?.name === input.environment) {
        const { moved } = await advance(release.id, 'succeeded');
        if (moved) await record(release.id, 'release.succeeded', { version: release.version });
      }
      await freeEnvironment(release.app, input.environment, release.id);
      return {};
    },

    /** The indexes of this environment's batches whose switch was sent, newest first: what to put back. */
    async planRevert(input: { releaseId: string; environment: string; failure?: StageFailure }): Promise<{ batches: number[] }> {
      const release = await requireRelease(input.releaseId);
      const state = await environmentState(release.id, input.environment);
      // A failure of its own (not the release ending under it): a cancel from now on changes nothing.
      if (state && !isTerminal(release.status) && input.failure && !state.failure) {
        await store.putEnvironmentState({ ...state, failure: reasonOf(input.failure) });
      }
      const steps = await store.listSteps(input.releaseId);
      const batches = steps
        .filter((s) => s.kind === 'switch' && s.environment === input.environment)
        .map((s) => s.batchIndex ?? 0)
        .sort((a, b) => b - a);
      if (batches.length > 0) await record(input.releaseId, 'revert.planned', { environment: input.environment, batches: batches.length });
      return { batches };
    },

    /** Puts a batch back: the hosts its switch was sent to (the plan's batch, as the step recorded it). */
    async revertBatch(input: { taskToken: string; releaseId: string; environment: string; batchIndex: number }) {
      const release = await requireRelease(input.releaseId);
      const switched = await store.getStep(release.id, stepKey('switch', input.environment, input.batchIndex));
      const hosts = switched?.hosts.length ? switched.hosts : await batchHosts(release.id, input.environment, input.batchIndex);
      await runCommandStep(
        input.taskToken,
        release,
        'revert',
        input.environment,
        hosts,
        {
          kind: 'revert',
          deployRoot: release.config.deployRoot,
          releaseId: targetOf(release),
          switchId: release.id,
          version: release.version,
          postRelease: release.config.hooks.postRelease,
        },
        input.batchIndex,
      );
    },

    /** Ends the release in this environment: status, reason, lock. Safe to call for an ended release. */
    async failEnvironment(input: { releaseId: string; environment: string; failure?: StageFailure }) {
      const release = await requireRelease(input.releaseId);
      const rejected = input.failure?.Error === ApprovalRejectedError.name;
      const status: 'rejected' | 'failed' | 'cancelled' = release.status === 'cancelled' ? 'cancelled' : rejected ? 'rejected' : 'failed';
      const gaveUpWaiting = release.status === 'awaiting_approval' && input.failure?.Error === 'States.Timeout';
      const reason = gaveUpWaiting || input.failure?.Error === ApprovalTimedOutError.name ? 'approval timed out' : reasonOf(input.failure);
      // A cancel that raced the failure still leaves the failure on record and tells people about it.
      const failedUnderCancel = status === 'cancelled' && input.failure !== undefined && input.failure.Error !== ReleaseEndedError.name;
      if (gaveUpWaiting) await approvals.expire(release.id, input.environment);
      await setEnvironmentStatus(release, input.environment, status);
      // The lock goes first: whoever sees the release ended finds the environment free (and the
      // first in line is let in).
      await freeEnvironment(release.app, input.environment, release.id);
      if (!isTerminal(release.status) && (await advance(release.id, status, reason)).moved) {
        await record(release.id, `release.${status}`, { environment: input.environment, reason });
      }
      if (failedUnderCancel) {
        await record(release.id, 'release.failed_while_cancelled', { environment: input.environment, reason });
        await approvals.notifyOutcome(await requireRelease(release.id), 'failed', `${reason} (${release.reason ?? 'cancelled'})`);
      }
      const ended = await requireRelease(release.id);
      // A cancel's reason is the cancel's own ("cancelled by ..."), not how the workflow noticed it.
      await approvals.notifyOutcome(ended, status, status === 'cancelled' ? (ended.reason ?? reason) : reason);
      return {};
    },

    /** The last word on a failed execution: whatever happened, the release ends and frees its locks. */
    async recordFailure(input: { releaseId: string; failure?: StageFailure }) {
      const release = await requireRelease(input.releaseId);
      const reason = reasonOf(input.failure);
      // Out of every line too (a cancelled release stopped while it waited), each freeing wakes the next.
      for (const env of release.config.environments) await freeEnvironment(release.app, env.name, release.id);
      if (!isTerminal(release.status) && (await advance(release.id, 'failed', reason)).moved) {
        await record(release.id, 'release.failed', { reason });
      }
      const ended = await requireRelease(release.id);
      if (ended.status === 'failed' || ended.status === 'rejected' || ended.status === 'cancelled') {
        await approvals.notifyOutcome(ended, ended.status, ended.reason);
      }
      return {};
    },

    async prune(input: { taskToken: string; releaseId: string }) {
      const release = await requireRelease(input.releaseId);
      const plan = await planOf(release.id);
      const hosts = [...new Set(plan.environments.flatMap((env) => env.batches.flat()))];
      const protect = new Set<string>();
      for (const env of release.config.environments) {
        const live = await store.getEnvironmentLive(release.app, env.name);
        for (const kept of live?.retained ?? []) protect.add(kept.id);
      }
      await runCommandStep(input.taskToken, release, 'prune', 'all', hosts, {
        kind: 'prune',
        deployRoot: release.config.deployRoot,
        releaseId: release.id,
        keepReleases: release.config.keepReleases,
        protect: [...protect],
      });
    },

    async finalize(input: { releaseId: string }) {
      const { release, moved } = await advance(input.releaseId, 'succeeded');
      if (moved) await record(release.id, 'release.succeeded', { version: release.version });
      await approvals.notifyOutcome(release, 'succeeded');
      return { status: release.status };
    },

    /**
     * The reconciling check: a status event may never come (EventBridge delivers at best effort), so
     * host commands running longer than `minAgeSeconds` are asked for their results directly.
     */
    async reconcileCommands(minAgeSeconds = 60, limit = 100): Promise<number> {
      const cutoff = new Date(clock.now().getTime() - minAgeSeconds * 1000).toISOString();
      let checked = 0;
      for (const step of await store.listRunningCommandSteps(limit)) {
        if (!step.commandId) continue;
        if (step.createdAt <= cutoff) {
          await this.commandFinished(step.commandId);
          checked += 1;
        }
        // Still running: the waiting task hears that it is, so its HeartbeatSeconds does not fire.
        const current = await store.getStep(step.releaseId, step.key);
        if (current?.state === 'running' && current.taskToken) {
          await workflow.sendTaskHeartbeat(current.taskToken).catch((error: unknown) => {
            if (!(error instanceof StaleTaskTokenError)) throw error;
          });
        }
      }
      return checked;
    },

    /**
     * The command-status callback: a host command finished on every host. Records each host's
     * outcome, settles the step once, and tells the task waiting on it (whichever token it holds now).
     */
    async commandFinished(commandId: string) {
      const step = await store.getStepByCommand(commandId);
      if (!step) {
        logger.warn('a command finished that no step knows', { commandId });
        return;
      }
      // The event may name one part of the command (SSM sends 50 hosts a part): read the whole step.
      const { finished, invocations } = await fleet.results(step.commandId ?? commandId);
      if (!finished) return;
      const at = now();
      const kind = step.kind as Exclude<StepKind, 'bake' | 'approval'>;
      if (step.environment !== 'all') {
        // A few at a time: one by one, 5,000 hosts' records outlast a 60-second function.
        await forEachLimited(invocations, HOST_WRITES_IN_FLIGHT, async (invocation) => {
          const status = invocation.status === 'success' ? HOST_STATUS_ON_SUCCESS[kind] : 'failed';
          if (status) await store.setHostStatus(step.releaseId, step.environment, invocation.host, status, at);
          await store.putHostStep(step.releaseId, step.environment, invocation.host, kind, {
            exitCode: invocation.exitCode,
            stdout: invocation.stdout,
            stderr: invocation.stderr,
            startedAt: invocation.startedAt,
            endedAt: invocation.endedAt,
          });
        });
      }
      const failed = invocations.filter((i) => i.status !== 'success');
      const outcome: StepOutcome =
        failed.length === 0
          ? { status: 'succeeded', output: { hosts: invocations.length } }
          : {
              status: 'failed',
              error: HostCommandFailedError.name,
              cause: tail(describeFailure(kind, step.environment, failed, step.batchIndex), CAUSE_LIMIT),
            };
      const settled = await store.completeStep(step.releaseId, step.key, outcome, at);
      if (settled.updatedAt === at) {
        await record(step.releaseId, `${kind}.${settled.state}`, {
          environment: step.environment,
          batchIndex: step.batchIndex,
          failedHosts: failed.slice(0, FAILED_HOSTS_NAMED).map((f) => f.host),
          ...(failed.length > FAILED_HOSTS_NAMED ? { failedCount: failed.length } : {}),
        });
      }
      await deliverOutcome(workflow, settled);
    },
  };
}
export type ReleaseStages = ReturnType<typeof createReleaseStages>;

/** The release a record switches hosts to: itself, or for a rollback, the release it goes back to. */
export function targetOf(release: Release): string {
  return release.rollback?.target ?? release.id;
}

/** The text people read (a release's reason, an environment's failure) for a failure the ASL caught. */
export function reasonOf(failure: StageFailure | undefined): string {
  if (!failure) return 'the release workflow failed';
  const cause = causeText(failure.Cause);
  if (failure.Error === 'States.Timeout') return `timed out${cause ? `: ${cause}` : ''}`;
  return cause ? cause : failure.Error;
}

const LAMBDA_ERROR_DOCUMENT = /^\{.*"error(Type|Message)"\s*:/s;
const LAMBDA_ERROR_MESSAGE = /"errorMessage"\s*:\s*("(?:[^"\\]|\\.)*")/;

function parsed(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * A Cause as text. A Lambda function's error reaches the Catch with the runtime's error document as
 * its Cause (`{"errorType", "errorMessage", "trace"}` as JSON): only its message is kept, never the
 * stack trace, even when Step Functions cut the document short (a Cause holds at most 32,768
 * characters). Any other Cause (a host command's account, SendTaskFailure's) is text already.
 */
export function causeText(cause: string | undefined): string | undefined {
  const text = cause?.trim();
  if (!text || !LAMBDA_ERROR_DOCUMENT.test(text)) return text;
  const document = parsed(text);
  if (document && typeof document === 'object') {
    const { errorType, errorMessage } = document as { errorType?: unknown; errorMessage?: unknown };
    if (typeof errorMessage === 'string' && errorMessage.trim()) return errorMessage.trim();
    return typeof errorType === 'string' && errorType ? errorType : undefined;
  }
  // Cut short: the message comes before the trace, so it is usually whole.
  const quoted = LAMBDA_ERROR_MESSAGE.exec(text)?.[1];
  const message = quoted === undefined ? undefined : parsed(quoted);
  return typeof message === 'string' && message.trim() ? message.trim() : 'the function failed and its error could not be read';
}
