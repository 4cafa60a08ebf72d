import { type ApprovalService, approvalStepKey } from './approvals.ts';
import { type AnalysisSources, analysisFailureReason, probeAnalysis } from './analysis.ts';
import {
  AnalysisFailedError,
  ApprovalRejectedError,
  ApprovalTimedOutError,
  NotFoundError,
  ReleaseEndedError,
  StaleTaskTokenError,
  UnprocessableError,
  UnsafeArtifactError,
} from './errors.ts';
import type { Clock, IdGenerator } from './ids.ts';
import type { Logger } from './logger.ts';
import {
  type EnvironmentPlan,
  HISTORY_EVENT_BUDGET,
  historyEventsOf,
  MAX_BATCHES_PER_RELEASE,
  type PlannedPause,
  planEnvironment,
  type PlanSummary,
  summarizePlan,
} from './plan.ts';
import type {
  ArtifactStore,
  EnvironmentLiveStore,
  HostInventoryStore,
  EventStore,
  Fleet,
  LockStore,
  PlanStore,
  ReleaseRecordStore,
  ResolvedTargets,
  StepStore,
  Workflow,
} from './ports.ts';
import { isTerminal, type Release } from './release.ts';
import { type ArtifactManifest, containmentVerdict, manifestOf } from './manifest.ts';
import type { Analysis } from './schemas.ts';
import { createStageContext, FULL_PROMOTION_KEY, stepKey, targetOf } from './stages/context.ts';
import { createEnvironmentLine, LOCK_LEASE_SECONDS } from './stages/environment-line.ts';
import { type StageFailure, reasonOf } from './stages/failures.ts';
import { createHostOutcomeRecorder } from './host-inventory.ts';
import { createHostCommands } from './stages/host-commands.ts';
import { liveAfter, protectedReleases } from './stages/retained.ts';
import { deliverOutcome } from './steps.ts';

export { FULL_PROMOTION_KEY, stepKey, targetOf } from './stages/context.ts';
export { LOCK_LEASE_SECONDS, OPEN_LOCK_LEASE_SECONDS } from './stages/environment-line.ts';
export { causeText, describeFailure, reasonOf, type StageFailure } from './stages/failures.ts';
export { COMMAND_TIMEOUT_SECONDS, forEachLimited } from './stages/host-commands.ts';
export { liveAfter, protectedReleases } from './stages/retained.ts';

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
 *
 * The concerns live in stages/: the release and its plan as every stage reads them (context.ts),
 * the host-command protocol (host-commands.ts), leases and the line (environment-line.ts), what an
 * environment retains for rollback (retained.ts), and how failures read (failures.ts).
 */

/** The ports of the release table the stages use: not the apps, the purge or the artifact records. */
export type StageStore = ReleaseRecordStore & EventStore & LockStore & PlanStore & StepStore & EnvironmentLiveStore & HostInventoryStore;

export interface StageDeps {
  approvals: ApprovalService;
  /** What an environment's analysis asks (an HTTP probe, alarms); a missing one fails the analysis safe. */
  analysis?: AnalysisSources;
  store: StageStore;
  fleet: Fleet;
  workflow: Workflow;
  objects: ArtifactStore;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
}

/** At most 5 minutes: the URL travels in the SSM command, which anyone allowed to list commands reads. */
const ARTIFACT_URL_TTL_SECONDS = 300;
/** How many unreachable hosts a refusal names; the rest are counted. */
const UNREACHABLE_NAMED = 10;

/**
 * What the Watch stage answers the state machine: wait until `until` and ask again (a Wait state),
 * pause for a person, pause for a while (a callback task that times out after `seconds`, at `until`,
 * and asks again), or go on.
 */
export type WatchOutcome = { next: 'wait' | 'pause' | 'done'; until: string } | { next: 'timed-pause'; until: string; seconds: number };

/** How long a pause for a person may wait (its task's backstop, as an approval gate's): its lease covers it. */
const PERSON_PAUSE_SECONDS = 24 * 24 * 3600;

/** The next wake-up: the end of the phase, or the next probe if sooner. */
function nextWake(at: Date, phaseEnds: string, intervalSeconds: number | undefined): string {
  if (intervalSeconds === undefined) return phaseEnds;
  const probe = new Date(at.getTime() + intervalSeconds * 1000).toISOString();
  return probe < phaseEnds ? probe : phaseEnds;
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
  const analysisSources = deps.analysis ?? {};
  const context = createStageContext({ store, clock, ids });
  const { now, requireRelease, requireRunning, record, advance, setEnvironmentStatus, setEnvironmentFailure, environmentState } = context;
  const { planOf, environmentPlan, batchHosts, environmentConfig } = context;
  const line = createEnvironmentLine({ store, workflow, clock, logger, context });
  const { holdLock, enter, freeEnvironment } = line;
  const afterCommand = createHostOutcomeRecorder({ store, clock });
  const commands = createHostCommands({ store, fleet, workflow, clock, ids, logger, context, afterCommand });
  const { runCommandStep } = commands;

  /**
   * Lists the artifact's files once per artifact (what approvers see change, and whether hosts must
   * check its containment themselves). It never stops the release: a store that cannot be read now
   * leaves no list, the diff says it has none, and every host checks the archive itself.
   */
  async function recordManifest(release: Release): Promise<ArtifactManifest | undefined> {
    const key = release.artifact.key;
    try {
      const stored = await objects.getManifest(key);
      if (stored) return stored;
      const manifest = await manifestOf(await objects.read(key));
      await objects.putManifest(key, manifest);
      if (!manifest.complete) logger.warn('the artifact\'s file list is incomplete', { releaseId: release.id, key, reason: manifest.reason });
      return manifest;
    } catch (error) {
      logger.warn('could not list the artifact\'s files; the release goes on without a diff', { releaseId: release.id, key, error });
      return undefined;
    }
  }

  /**
   * This batch's pause is over before its time, or skipped: its step settled (a promote settles it,
   * and so does the end of a timed pause, each with one conditional write, so exactly one of them
   * ends it), or a promote with `full` skips every pause still ahead.
   */
  async function pauseIsOver(releaseId: string, environment: string, batchIndex: number): Promise<boolean> {
    const [step, all] = await Promise.all([
      store.getStep(releaseId, stepKey('pause', environment, batchIndex)),
      store.getStep(releaseId, FULL_PROMOTION_KEY),
    ]);
    return (step !== undefined && step.state !== 'running') || all !== undefined;
  }

  /**
   * The release is paused after this batch: the pause step (holding the task's token, for a pause
   * that waits for a person), the statuses, the event and the opener's mail, each once.
   */
  async function holdPause(
    release: Release,
    environment: string,
    batchIndex: number,
    pause: PlannedPause,
    how: { taskToken?: string; resumeAt?: string },
  ) {
    const at = now();
    const key = stepKey('pause', environment, batchIndex);
    const { created, step } = await store.startStep({
      releaseId: release.id,
      key,
      kind: 'pause',
      environment,
      batchIndex,
      hosts: [],
      state: 'running',
      canaryStep: pause.step,
      ...(how.taskToken ? { taskToken: how.taskToken } : {}),
      ...(how.resumeAt ? { pauseUntil: how.resumeAt } : {}),
      createdAt: at,
      updatedAt: at,
    });
    if (!created && how.taskToken && !(await store.replaceStepToken(release.id, key, how.taskToken, at))) {
      // Promoted (or ended) meanwhile: answer the task as the step ended.
      await deliverOutcome(workflow, (await store.getStep(release.id, key))!, how.taskToken);
      return;
    }
    if (step.state !== 'running') return;
    // The lease outlives the pause: a line must not take the environment over from a paused canary.
    const pauseSeconds = how.resumeAt ? Math.max(0, (Date.parse(how.resumeAt) - clock.now().getTime()) / 1000) : PERSON_PAUSE_SECONDS;
    await holdLock(release, environment, Math.ceil(pauseSeconds) + LOCK_LEASE_SECONDS);
    await setEnvironmentStatus(release, environment, 'paused');
    await advance(release.id, 'paused');
    if (created) {
      const resumeAt = how.resumeAt ? { resumeAt: how.resumeAt } : {};
      await record(release.id, 'release.paused', { environment, batch: batchIndex + 1, step: pause.step, ...resumeAt });
      await approvals.notifyPaused(release, { environment, batch: batchIndex, step: pause.step, ...resumeAt });
    }
  }

  /** The pause after this batch is over (its time is up, or it was promoted): switching goes on. */
  async function endPause(releaseId: string, environment: string, batchIndex: number) {
    const key = stepKey('pause', environment, batchIndex);
    const step = await store.getStep(releaseId, key);
    if (step?.state === 'running') {
      const { settled } = await store.completeStep(releaseId, key, { status: 'succeeded', output: {} }, now());
      if (settled) await record(releaseId, 'release.resumed', { environment, batch: batchIndex + 1 });
    }
    const release = await requireRunning(releaseId);
    await setEnvironmentStatus(release, environment, 'switching');
    if (release.status === 'paused') await advance(releaseId, 'switching');
  }

  /**
   * Probes the analysis once and records what it saw. Throws AnalysisFailedError (the switched
   * hosts go back) when the failures in this environment reach the limit, or when the very first
   * probe could not run at all: an analysis that cannot watch must not let the release go on.
   */
  async function analyse(release: Release, environment: string, analysis: Analysis, batchIndex: number) {
    const earlier = (await store.listEvents(release.id)).filter((e) => e.type === 'analysis.probe' && e.data?.environment === environment);
    const results = await probeAnalysis(analysis, analysisSources);
    for (const result of results) {
      await record(release.id, 'analysis.probe', { environment, batch: batchIndex + 1, check: result.check, ok: result.ok, status: result.status });
    }
    const failed = results.find((result) => !result.ok);
    if (!failed) return;
    const failures = earlier.filter((e) => e.data?.ok === false).length + results.filter((result) => !result.ok).length;
    const atStart = earlier.length === 0 && !failed.ran;
    if (atStart || failures >= analysis.failureLimit) {
      const reason = analysisFailureReason(failed, failures, analysis.failureLimit, atStart);
      logger.warn('the analysis failed; the switched hosts go back', { releaseId: release.id, environment, check: failed.check, status: failed.status });
      throw new AnalysisFailedError(reason);
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
        const { batches, pauses } = planEnvironment(resolved.hosts, env.strategy);
        environments.push({
          name: env.name,
          approval: env.approval !== undefined,
          bakeSeconds: env.bakeSeconds,
          batches,
          ...(pauses.length > 0 ? { pauses } : {}),
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
      const events = environments.map((env) => ({
        name: env.name,
        events: historyEventsOf(env, release.config.environments.find((e) => e.name === env.name)?.analysis?.intervalSeconds),
      }));
      const eventCount = events.reduce((sum, env) => sum + env.events, 0);
      if (eventCount > HISTORY_EVENT_BUDGET) {
        const perEnvironment = events.map((env) => `${env.name} about ${count(env.events, 'event')}`);
        throw new UnprocessableError(
          `the switch would take about ${count(eventCount, 'history event')} (${perEnvironment.join(', ')}), more than the ${HISTORY_EVENT_BUDGET.toLocaleString('en-US')} a release may use (a Step Functions execution holds at most 25,000): raise analysis.intervalSeconds, shorten bakeSeconds or the timed pauses, or use larger batches`,
        );
      }
      // Before the plan: a retry after the plan was saved answers at once, so the list is made first.
      const containment = containmentVerdict(await recordManifest(release), release.artifact.sha256, release.config.sharedPaths);
      if (containment.verdict === 'refused') {
        throw new UnsafeArtifactError(
          `the artifact could write outside its release folder, so nothing was sent to any host: ${containment.refusal}. ` +
          'Rebuild it from plain files, folders and symbolic links that stay inside it (as `slipway artifact push` packs a folder), upload it and open a new release',
        );
      }
      const plan = await store.savePlan({
        releaseId: release.id,
        app: release.app,
        environments,
        ...(containment.verdict === 'checked' ? { artifactChecked: release.artifact.sha256 } : {}),
      });
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
    wakeQueues: (limit?: number): Promise<number> => line.wakeQueues(limit),

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
        artifactChecked: (await planOf(release.id)).artifactChecked === release.artifact.sha256,
        artifactSize: release.artifact.size,
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

    /**
     * What follows a batch's switch, run again after each wait until it answers `pause` or `done`:
     * the bake, then a timed pause (`timed-pause`: the TimedPause task holds the pause on a token
     * until its end or the next probe, and a promote completes that token at once), with the
     * environment's analysis probed at each call through both. A manual pause answers `pause`: the
     * Pause task waits for a person. When each phase ends is computed once.
     */
    async watch(input: { releaseId: string; environment: string; batchIndex: number }): Promise<WatchOutcome> {
      const release = await requireRunning(input.releaseId);
      const env = environmentConfig(release, input.environment);
      const pause = (await environmentPlan(release.id, env.name)).pauses?.find((p) => p.afterBatch === input.batchIndex);
      const at = clock.now();
      const bakeEnds = new Date(at.getTime() + env.bakeSeconds * 1000);
      const { step } = await store.startStep({
        releaseId: release.id,
        key: stepKey('watch', env.name, input.batchIndex),
        kind: 'watch',
        environment: env.name,
        batchIndex: input.batchIndex,
        hosts: [],
        state: 'running',
        until: bakeEnds.toISOString(),
        ...(pause?.seconds ? { pauseUntil: new Date(bakeEnds.getTime() + pause.seconds * 1000).toISOString() } : {}),
        createdAt: at.toISOString(),
        updatedAt: at.toISOString(),
      });
      const current = at.toISOString();
      const over = pause ? await pauseIsOver(release.id, env.name, input.batchIndex) : false;
      const baking = current < step.until!;
      // A bake may last a day, longer than a lease: each look renews it past the bake's end.
      if (baking) await holdLock(release, env.name, Math.ceil((Date.parse(step.until!) - at.getTime()) / 1000) + LOCK_LEASE_SECONDS);
      const timedPause = !baking && step.pauseUntil !== undefined && !over && current < step.pauseUntil;
      if (env.analysis && (baking || timedPause)) await analyse(release, env.name, env.analysis, input.batchIndex);
      if (baking) return { next: 'wait', until: nextWake(at, step.until!, env.analysis?.intervalSeconds) };
      if (timedPause) {
        const until = nextWake(at, step.pauseUntil!, env.analysis?.intervalSeconds);
        // Step Functions takes whole seconds, at least one: the task ends at `until` or just after.
        return { next: 'timed-pause', until, seconds: Math.max(1, Math.ceil((Date.parse(until) - at.getTime()) / 1000)) };
      }
      if (step.pauseUntil !== undefined) await endPause(release.id, env.name, input.batchIndex);
      if (pause && pause.seconds === undefined && !over) return { next: 'pause', until: current };
      return { next: 'done', until: current };
    },

    /**
     * The Pause and TimedPause callback tasks: a canary's pause. The token waits in the pause step
     * until someone promotes the release (or cancels it), or, for a timed pause, until the task's
     * timeout sends the workflow back to Watch (each round of a timed pause hands the step a new
     * token). A pause promoted, skipped or due before it got here ends at once. A promote that
     * settles the step while this stores its token is answered either way: the promote sends to the
     * token the step held when it settled it, and a token stored too late gets the step's outcome.
     */
    async pause(input: { taskToken: string; releaseId: string; environment: string; batchIndex: number }) {
      const release = await requireRunning(input.releaseId);
      const pause = (await environmentPlan(release.id, input.environment)).pauses?.find((p) => p.afterBatch === input.batchIndex);
      const resumeAt = pause?.seconds === undefined ? undefined : (await store.getStep(release.id, stepKey('watch', input.environment, input.batchIndex)))?.pauseUntil;
      const due = resumeAt !== undefined && now() >= resumeAt;
      if (!pause || due || (await pauseIsOver(release.id, input.environment, input.batchIndex))) {
        await endPause(release.id, input.environment, input.batchIndex);
        await workflow.sendTaskSuccess(input.taskToken, {}).catch((error: unknown) => {
          // A promote answered this very token already (the task resumed on it after a restart).
          if (!(error instanceof StaleTaskTokenError)) throw error;
        });
        return;
      }
      const timed = resumeAt ? { resumeAt } : {};
      await holdPause(release, input.environment, input.batchIndex, pause, { taskToken: input.taskToken, ...timed });
    },

    /**
     * Records the environment live, once: the live record first, then the environment's status
     * (which marks it done), then, for the last environment, the release (live everywhere is
     * `succeeded`: a cancel from here on is refused; pruning is after-care), then the lock.
     */
    async completeEnvironment(input: { releaseId: string; environment: string }) {
      const ended = await requireRelease(input.releaseId);
      const last = ended.config.environments.at(-1)?.name === input.environment;
      // The last environment's completion is what made the release succeed: a retry of it (the answer
      // lost, say) must answer as the first did, not send the workflow down its failure path.
      if (ended.status === 'succeeded' && last && (await environmentState(ended.id, input.environment))?.status === 'succeeded') {
        await freeEnvironment(ended.app, input.environment, ended.id);
        return {};
      }
      const release = await requireRunning(input.releaseId);
      const state = await environmentState(release.id, input.environment);
      const target = targetOf(release);
      if (state?.status !== 'succeeded') {
        const live = await store.getEnvironmentLive(release.app, input.environment);
        if (live?.liveRelease?.id !== target) {
          await store.putEnvironmentLive(liveAfter(release, input.environment, live, now()));
          await record(release.id, 'environment.live', { environment: input.environment, version: release.version, release: target });
        }
        await setEnvironmentStatus(release, input.environment, 'succeeded');
      }
      if (last) {
        const { moved } = await advance(release.id, 'succeeded');
        if (moved) await record(release.id, 'release.succeeded', { version: release.version });
      }
      await freeEnvironment(release.app, input.environment, release.id);
      return {};
    },

    /** The indexes of this environment's batches whose switch was sent, newest first: what to put back. */
    async planRevert(input: { releaseId: string; environment: string; failure?: StageFailure }): Promise<{ batches: number[] }> {
      const release = await requireRelease(input.releaseId);
      // A failure of its own (not the release ending under it): a cancel from now on changes nothing.
      if (!isTerminal(release.status) && input.failure) await setEnvironmentFailure(release, input.environment, reasonOf(input.failure));
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
      await runCommandStep(input.taskToken, release, 'prune', 'all', hosts, {
        kind: 'prune',
        deployRoot: release.config.deployRoot,
        releaseId: release.id,
        keepReleases: release.config.keepReleases,
        protect: await protectedReleases(store, release),
      });
    },

    async finalize(input: { releaseId: string }) {
      const { release, moved } = await advance(input.releaseId, 'succeeded');
      if (moved) await record(release.id, 'release.succeeded', { version: release.version });
      await approvals.notifyOutcome(release, 'succeeded');
      return { status: release.status };
    },

    reconcileCommands: (minAgeSeconds?: number, limit?: number): Promise<number> => commands.reconcileCommands(minAgeSeconds, limit),

    commandFinished: (commandId: string): Promise<void> => commands.commandFinished(commandId),
  };
}
export type ReleaseStages = ReturnType<typeof createReleaseStages>;
