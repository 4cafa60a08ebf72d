import { approvalGates, type ApprovalService } from './approvals.ts';
import type { AppService } from './apps.ts';
import type { AuditLog } from './audit.ts';
import type { ArtifactService } from './artifacts.ts';
import type { Principal } from './auth.ts';
import { ConflictError, EnvironmentLockedError, IllegalTransitionError, NotFoundError, ReleaseEndedError, StaleTaskTokenError, UnprocessableError } from './errors.ts';
import type { Clock, IdGenerator } from './ids.ts';
import type { Logger } from './logger.ts';
import type { EnvironmentPlan } from './plan.ts';
import type { EnvironmentLiveStore, EventStore, ExecutionKind, LockStore, Page, ReleaseRecordStore, StepRecord, StepStore, WholeReleaseStore, Workflow } from './ports.ts';
import { OPEN_LOCK_LEASE_SECONDS } from './stages/environment-line.ts';
import { assertTransition, type EnvironmentState, type HostState, type HostStepSummary, type HostSummary, isTerminal, type Release, type ReleaseEvent } from './release.ts';
import { EnvironmentName, ListReleasesQuery, OpenReleaseRequest, parse, PromoteRequest, ReleaseId, RollbackRequest } from './schemas.ts';
import { FULL_PROMOTION_KEY } from './stages/context.ts';

/** The ports of the release table the release service uses. */
export type ReleaseServiceStore = ReleaseRecordStore &
  WholeReleaseStore &
  EventStore &
  Pick<StepStore, 'startStep' | 'getStep' | 'completeStep' | 'listSteps'> &
  Pick<LockStore, 'getLocks' | 'acquireLock' | 'listQueue' | 'leaveQueue'> &
  Pick<EnvironmentLiveStore, 'getEnvironmentLive'>;

export interface ReleaseDeps {
  approvals: ApprovalService;
  store: ReleaseServiceStore;
  apps: AppService;
  artifacts: ArtifactService;
  workflow: Workflow;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  audit: AuditLog;
}

export type ReleaseSummary = Omit<Release, 'config'>;

/**
 * A host at a glance: its status and its steps. Not `updatedAt` either: nothing shows it (the
 * steps' times say when), and at 40 bytes a host it was an eighth of a 500-host read.
 */
export interface ReleaseHostView extends Pick<HostState, 'host' | 'status'> {
  /**
   * By step kind (distribute, switch, revert, prune): how each ended and when, without what it
   * printed. The output is the host-output route's (GET /v1/releases/{id}/hosts/{host}/output): a
   * 500-host release carried every host's output tails in every read, and in every live update of
   * every open page.
   */
  steps: Record<string, HostStepSummary>;
}

export interface ReleaseEnvironmentView extends Omit<EnvironmentState, 'releaseId' | 'app'> {
  hosts: ReleaseHostView[];
}

/** Where a paused release stands: its environment, the canary step, since when, until when (timed). */
export interface PauseView {
  environment: string;
  /** The index of the pause in the environment's canary steps. */
  step: number;
  /** The batch it follows, from 1. */
  batch: number;
  pausedAt: string;
  /** A timed pause goes on by itself then. */
  resumeAt?: string;
}

/** A bake that has started: after which batch (from 1), and when it ends. */
export interface BakeView {
  environment: string;
  batch: number;
  startedAt: string;
  until: string;
}

export interface ReleaseView extends Release {
  /**
   * Every environment's batches as Prepare planned them, from the start of the release (absent only
   * in the moment before Prepare runs), so a page can draw batches that have not run yet.
   */
  plan?: EnvironmentPlan[];
  /** Each bake that has started, for a countdown. */
  bakes?: BakeView[];
  /** While `paused`. */
  pause?: PauseView;
  /** While waiting in an environment's line (an app with `queue: true`): 1 is next. */
  queuePosition?: number;
  /** The environment whose line it waits in. */
  queuedFor?: string;
  environments: ReleaseEnvironmentView[];
  /** Each approval gate: approvers, what they decided and when; never a link. */
  approvals: ReturnType<typeof approvalGates>;
  events: Omit<ReleaseEvent, 'releaseId'>[];
}

export function summarize({ config: _config, ...summary }: Release): ReleaseSummary {
  return summary;
}

/** Field by field, so a field added to a host or its steps stays out of the read until chosen. */
function hostView({ host, status, steps }: HostSummary): ReleaseHostView {
  return {
    host,
    status,
    steps: Object.fromEntries(
      Object.entries(steps).map(([kind, { exitCode, startedAt, endedAt }]) => [kind, { exitCode, startedAt, endedAt }]),
    ),
  };
}

/** The state machine a record runs on: a rollback has its own. */
export function executionKind(release: Pick<Release, 'rollback'>): ExecutionKind {
  return release.rollback ? 'rollback' : 'release';
}

export function createReleaseService(deps: ReleaseDeps) {
  const { store, apps, artifacts, workflow, clock, ids, logger, approvals } = deps;

  async function record(releaseId: string, type: string, actor: string, data?: Record<string, unknown>) {
    await store.appendEvent({ releaseId, id: ids.next(), at: clock.now().toISOString(), type, actor, data });
  }

  /**
   * Starts a just-recorded release's execution. The release exists from here on whatever happens, so
   * a failure to start is not the caller's failure: answering it with an error would make a client
   * that retries open a second release. It is logged and noted on the release, and the Sweep starts
   * the execution (startOrphans), exactly as after a crash between the record and the start.
   */
  async function startWorkflow(releaseId: string, app: string, kind?: 'rollback') {
    let executionId: string;
    try {
      ({ executionId } = await workflow.startRelease({ releaseId, app, ...(kind ? { kind } : {}) }));
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      logger.error('the workflow did not start; the sweep starts it', { releaseId, app, error: reason });
      await record(releaseId, 'workflow.start_deferred', 'slipway', { reason }).catch(() => undefined);
      return;
    }
    await record(releaseId, 'workflow.started', 'slipway', { executionId }).catch((error: unknown) =>
      logger.error('the workflow started but its event was not recorded', { releaseId, executionId, error }));
  }

  /** The pause step a paused release waits in, if any. */
  async function runningPause(releaseId: string): Promise<StepRecord | undefined> {
    return (await store.listSteps(releaseId)).find((step) => step.kind === 'pause' && step.state === 'running');
  }

  /** Completes (or fails) the task waiting on a step's token; a token no task waits on is fine. */
  async function tellTask(taskToken: string | undefined, send: (token: string) => Promise<void>) {
    if (!taskToken) return;
    try {
      await send(taskToken);
    } catch (error) {
      if (!(error instanceof StaleTaskTokenError)) throw error;
    }
  }

  /**
   * A cancelled release stops waiting at its pause: the Pause (or TimedPause) task fails at once, and
   * the workflow goes on to put back every host it switched.
   */
  async function endPauses(release: Release, why: string) {
    const pause = await runningPause(release.id);
    if (!pause) return;
    const { settled, step } = await store.completeStep(release.id, pause.key, { status: 'failed', error: ReleaseEndedError.name, cause: why }, clock.now().toISOString());
    if (settled) await tellTask(step.taskToken, (token) => workflow.sendTaskFailure(token, ReleaseEndedError.name, why));
  }

  /**
   * A cancelled release leaves every line it waits in, wherever it stands in it (not only at the
   * front): its EnterEnvironment task fails at once and the releases behind it move up.
   */
  async function leaveLines(release: Release, why: string) {
    if (!release.config.queue) return;
    for (const env of release.config.environments) {
      const waiter = (await store.listQueue(release.app, env.name)).find((w) => w.releaseId === release.id);
      if (!waiter) continue;
      await store.leaveQueue(release.app, env.name, release.id);
      await tellTask(waiter.taskToken, (token) => workflow.sendTaskFailure(token, ReleaseEndedError.name, `release ${release.id} ${why}`));
      await record(release.id, 'environment.left_line', 'slipway', { environment: env.name });
    }
  }

  /** Where the release waits in line, if it does: the first environment whose line holds it. */
  async function queuePlace(release: Release): Promise<{ queuePosition: number; queuedFor: string } | undefined> {
    if (!release.config.queue || isTerminal(release.status)) return undefined;
    for (const env of release.config.environments) {
      const line = await store.listQueue(release.app, env.name);
      const index = line.findIndex((w) => w.releaseId === release.id);
      if (index < 0) continue;
      // Ended releases still at the head are cleared on the next wake-up: they do not count.
      const ahead = await store.getReleases(line.slice(0, index).map((w) => w.releaseId));
      return { queuePosition: ahead.filter((r) => !isTerminal(r.status)).length + 1, queuedFor: env.name };
    }
    return undefined;
  }

  function pauseView(release: Release, steps: StepRecord[]): PauseView | undefined {
    if (release.status !== 'paused') return undefined;
    const pause = steps.find((step) => step.kind === 'pause' && step.state === 'running');
    if (!pause) return undefined;
    return {
      environment: pause.environment,
      step: pause.canaryStep ?? 0,
      batch: (pause.batchIndex ?? 0) + 1,
      pausedAt: pause.createdAt,
      ...(pause.pauseUntil ? { resumeAt: pause.pauseUntil } : {}),
    };
  }

  return {
    /**
     * Goes on from a canary's pause, at once: the waiting Pause (or TimedPause) task completes, the
     * release switches on. `full` skips every pause still ahead. Recorded in the release's events and
     * the audit log. Exactly once: the pause step is settled by one conditional write, which a
     * second promote, the end of a timed pause and a cancel race for; only the call that settles it
     * goes on (and records), the others are told the pause already ended.
     */
    async promote(id: string, body: unknown, actor: Principal): Promise<Pick<Release, 'id' | 'status'>> {
      const releaseId = parse(ReleaseId, id, 'release id');
      const request = parse(PromoteRequest, body ?? {}, 'promote request');
      const release = await store.getRelease(releaseId);
      if (!release) throw new NotFoundError(`release ${releaseId} does not exist`);
      const pause = release.status === 'paused' ? await runningPause(releaseId) : undefined;
      if (!pause) {
        throw new ConflictError(`release ${releaseId} is ${release.status}, not paused, so there is nothing to promote; promote it while it says paused`);
      }
      const at = clock.now().toISOString();
      const batch = (pause.batchIndex ?? 0) + 1;
      const { settled, step } = await store.completeStep(releaseId, pause.key, { status: 'succeeded', output: {} }, at);
      if (!settled) {
        const how = step.state === 'failed' ? 'the release was cancelled' : 'promoted by someone else, or its time was up';
        throw new ConflictError(
          `release ${releaseId}'s pause in ${pause.environment} after batch ${batch} ended a moment ago (${how}), so there is nothing to promote; read the release to see where it is`,
        );
      }
      // Before the task hears: the next pause looks for it once the workflow gets there.
      if (request.full) {
        await store.startStep({ releaseId, key: FULL_PROMOTION_KEY, kind: 'promote', environment: pause.environment, hosts: [], state: 'succeeded', createdAt: at, updatedAt: at });
      }
      const details = { environment: pause.environment, step: pause.canaryStep ?? 0, batch, full: request.full };
      await record(releaseId, 'release.promoted', actor.name, details);
      await deps.audit.record('release.promoted', actor.name, `releases/${releaseId}`, { app: release.app, version: release.version, ...details });
      await tellTask(step.taskToken, (token) => workflow.sendTaskSuccess(token, {}));
      // Back to switching at once (the workflow would say so at its next batch anyway).
      const env = (await store.getEnvironmentStates(releaseId)).find((state) => state.environment === pause.environment);
      if (env?.status === 'paused') {
        await store.putEnvironmentState({ ...env, status: 'switching' }, 'paused').catch((error: unknown) => {
          if (!(error instanceof ConflictError)) throw error;
        });
      }
      try {
        const moved = await store.updateReleaseStatus(releaseId, 'paused', 'switching', at);
        logger.info('release promoted', { releaseId, by: actor.name, full: request.full });
        return { id: releaseId, status: moved.status };
      } catch (error) {
        // The workflow (or a cancel) moved it meanwhile: it says where it is.
        if (!(error instanceof ConflictError)) throw error;
        const now = (await store.getRelease(releaseId))!;
        return { id: releaseId, status: now.status };
      }
    },

    async open(body: unknown, actor: Principal): Promise<Pick<Release, 'id' | 'status'>> {
      const request = parse(OpenReleaseRequest, body, 'release request');
      // Both reads at once; an unknown app is the answer even when the artifact is missing too.
      const verifying = artifacts.verify(request.app, request.artifact.sha256);
      verifying.catch(() => undefined);
      const app = await apps.requireApp(request.app);
      const artifact = await verifying;

      const now = clock.now();
      const id = ids.next();
      if (!app.config.queue) {
        const [first, ...others] = app.config.environments;
        // The first environment's lock is checked by taking it below; the others are only looked at
        // (one batched read), first: a refused open takes no lock.
        if (others.length > 0) {
          const held = (await store.getLocks(app.config.name, app.config.environments.map((env) => env.name)))
            .find((lock) => lock.leaseUntil > now.toISOString());
          if (held) throw new EnvironmentLockedError(held.app, held.environment, held.holder, held.leaseUntil);
        }
        // Every release of an app starts in its first environment: holding that lock from the open
        // on makes two racing opens start exactly one. The workflow renews it when it gets there.
        await store.acquireLock(
          {
            app: app.config.name,
            environment: first!.name,
            holder: id,
            acquiredAt: now.toISOString(),
            leaseUntil: new Date(now.getTime() + OPEN_LOCK_LEASE_SECONDS * 1000).toISOString(),
          },
          now.toISOString(),
        );
      }

      const release: Release = {
        id,
        app: app.config.name,
        version: request.version,
        artifact,
        description: request.description,
        status: 'pending',
        openedBy: actor.name,
        createdAt: now.toISOString(),
        updatedAt: now.toISOString(),
        config: app.config,
      };
      const environments: EnvironmentState[] = app.config.environments.map((env, order) => ({
        releaseId: release.id,
        app: release.app,
        environment: env.name,
        order,
        status: 'pending',
      }));
      const opened: ReleaseEvent = {
        releaseId: release.id,
        id: ids.next(),
        at: now.toISOString(),
        type: 'release.opened',
        actor: actor.name,
        data: { version: release.version, sha256: artifact.sha256, appRevision: app.revision },
      };
      await store.openRelease(release, environments, [opened]);

      await startWorkflow(release.id, release.app);
      logger.info('release opened', { releaseId: release.id, app: release.app, version: release.version });
      return { id: release.id, status: release.status };
    },

    /**
     * Switches an environment back to a release still retained on its hosts: its own record, event
     * log and execution (rollback.asl.json), holding the environment's lock. Nothing is downloaded.
     */
    async rollback(appName: string, environmentName: string, body: unknown, actor: Principal): Promise<Pick<Release, 'id' | 'status'>> {
      const request = parse(RollbackRequest, body ?? {}, 'rollback request');
      const environment = parse(EnvironmentName, environmentName, 'environment');
      const app = await apps.requireApp(appName);
      const env = app.config.environments.find((e) => e.name === environment);
      if (!env) throw new NotFoundError(`app ${app.config.name} has no environment ${environment}`);
      const live = await store.getEnvironmentLive(app.config.name, environment);
      if (!live?.liveRelease) {
        throw new UnprocessableError(`nothing is live on ${environment} yet, so there is nothing to roll back`);
      }
      const current = live.liveRelease;
      const candidates = live.retained.filter((r) => r.id !== current.id);
      // By default, back to what was live before the current release (not merely the next one kept).
      const wanted = request.toRelease ?? live.previousRelease?.id;
      const target = wanted ? candidates.find((r) => r.id === wanted) : candidates[0];
      if (!target && !request.toRelease && live.previousRelease) {
        const kept = candidates.map((r) => `${r.id} (${r.version})`).join(', ') || 'none';
        throw new UnprocessableError(
          `release ${live.previousRelease.id} (${live.previousRelease.version}), live on ${environment} before the current one, is no longer retained on its hosts; name one with toRelease: ${kept}`,
          { details: { live: current, previous: live.previousRelease, retained: candidates } },
        );
      }
      if (!target) {
        const kept = candidates.map((r) => `${r.id} (${r.version})`).join(', ') || 'none';
        throw new UnprocessableError(
          request.toRelease === current.id
            ? `release ${current.id} is already live on ${environment}`
            : request.toRelease
              ? `release ${request.toRelease} is not retained on ${environment} (pruned, or never live there); retained: ${kept}`
              : `no earlier release is retained on ${environment}`,
          { details: { live: current, retained: candidates } },
        );
      }
      const targetRelease = await store.getRelease(target.id);
      if (!targetRelease) throw new UnprocessableError(`release ${target.id} has no record any more`);

      const now = clock.now();
      const id = ids.next();
      await store.acquireLock(
        {
          app: app.config.name,
          environment,
          holder: id,
          acquiredAt: now.toISOString(),
          leaseUntil: new Date(now.getTime() + OPEN_LOCK_LEASE_SECONDS * 1000).toISOString(),
        },
        now.toISOString(),
      );
      const { approval, ...withoutApproval } = env;
      const rollback: Release = {
        id,
        app: app.config.name,
        version: target.version,
        artifact: targetRelease.artifact,
        description: `rollback of ${environment} from ${current.version} to ${target.version} by ${actor.name}`,
        status: 'pending',
        openedBy: actor.name,
        createdAt: now.toISOString(),
        updatedAt: now.toISOString(),
        // The rollback runs with today's config for this one environment; its gate only if it asks for one.
        config: { ...app.config, environments: [approval?.forRollback ? env : withoutApproval] },
        rollback: { environment, target: target.id, from: { id: current.id, version: current.version } },
      };
      await store.createRelease(rollback, [{ releaseId: id, app: app.config.name, environment, order: 0, status: 'pending' }]);
      await record(id, 'rollback.opened', actor.name, { environment, from: current, to: target });
      await deps.audit.record('release.rollback_opened', actor.name, `apps/${app.config.name}/environments/${environment}`, { release: id, app: app.config.name, environment, from: { id: current.id, version: current.version }, to: { id: target.id, version: target.version } });
      await startWorkflow(id, app.config.name, 'rollback');
      logger.info('rollback opened', { releaseId: id, app: app.config.name, environment, to: target.id });
      return { id, status: rollback.status };
    },

    /**
     * Cancels a running release. The workflow notices at its next step (an open approval gate closes
     * at once), puts the hosts it switched in the current environment back, and frees its locks.
     */
    async cancel(id: string, actor: Principal): Promise<Pick<Release, 'id' | 'status'>> {
      const releaseId = parse(ReleaseId, id, 'release id');
      for (let attempt = 0; ; attempt++) {
        const release = await store.getRelease(releaseId);
        if (!release) throw new NotFoundError(`release ${releaseId} does not exist`);
        if (release.status === 'succeeded') {
          throw new ConflictError(
            `release ${releaseId} is already live in every environment, so there is nothing to cancel; roll an environment back instead (slipway rollback ${release.app} <environment>)`,
          );
        }
        if (isTerminal(release.status)) throw new IllegalTransitionError(release.status, 'cancelled');
        const failing = (await store.getEnvironmentStates(releaseId)).find((env) => env.failure && !isTerminal(env.status));
        if (failing) {
          throw new ConflictError(
            `release ${releaseId} already failed in ${failing.environment} and is putting its hosts back (${failing.failure}); it will end as failed`,
          );
        }
        assertTransition(release.status, 'cancelled');
        try {
          const cancelled = await store.updateReleaseStatus(releaseId, release.status, 'cancelled', clock.now().toISOString(), `cancelled by ${actor.name}`);
          await record(releaseId, 'release.cancelled', actor.name, { from: release.status });
          await deps.audit.record('release.cancelled', actor.name, `releases/${releaseId}`, { app: release.app, version: release.version, from: release.status });
          await approvals.cancelGates(cancelled, actor.name);
          await endPauses(cancelled, `cancelled by ${actor.name}`);
          // Nothing has reached a host while pending (a queued release waits here): stop it outright.
          // Later, the workflow itself must put back what it switched, so it is left to notice.
          if (release.status === 'pending') await workflow.stopRelease(releaseId, `cancelled by ${actor.name}`, executionKind(release));
          // Out of every line it waits in, wherever it stands (its task, if any still waits, hears why).
          await leaveLines(cancelled, `cancelled by ${actor.name}`);
          logger.info('release cancelled', { releaseId, by: actor.name });
          return { id: releaseId, status: cancelled.status };
        } catch (error) {
          // The workflow moved the release meanwhile: look again.
          if (attempt >= 3 || error instanceof IllegalTransitionError) throw error;
        }
      }
    },

    async view(id: string): Promise<ReleaseView> {
      const releaseId = parse(ReleaseId, id, 'release id');
      // The release's own partition in one read, its approval gates with it.
      const whole = await store.readWholeRelease(releaseId);
      if (!whole) throw new NotFoundError(`release ${releaseId} does not exist`);
      const { release, plan, environments, hosts, events, steps } = whole;
      const pause = pauseView(release, steps);
      const place = await queuePlace(release);
      // A watch step's `until` is its bake's end (its start when the environment does not bake).
      const bakes = steps
        .filter((step) => step.kind === 'watch' && step.until && step.until > step.createdAt)
        .map((step) => ({
          environment: step.environment,
          batch: (step.batchIndex ?? 0) + 1,
          startedAt: step.createdAt,
          until: step.until!,
        }));
      return {
        ...release,
        ...(plan ? { plan: plan.environments } : {}),
        ...(bakes.length > 0 ? { bakes } : {}),
        ...(pause ? { pause } : {}),
        ...(place ?? {}),
        environments: environments
          .sort((a, b) => a.order - b.order)
          .map(({ releaseId: _r, app: _a, ...env }) => ({
            ...env,
            hosts: hosts.filter((h) => h.environment === env.environment).map(hostView),
          })),
        approvals: approvalGates(whole.approvals),
        events: events.map(({ releaseId: _id, ...event }) => event),
      };
    },

    /**
     * Starts the workflow of recent releases still `pending` without one: what a crash between
     * recording a release and starting its execution leaves behind. Starting is idempotent by id.
     */
    async startOrphans(limit = 50, minAgeSeconds = 30): Promise<string[]> {
      const { items } = await store.listReleases({ limit });
      // A release younger than that may be between its record and its start: the opener starts it.
      const settled = new Date(clock.now().getTime() - minAgeSeconds * 1000).toISOString();
      const started: string[] = [];
      for (const release of items) {
        if (release.createdAt > settled) continue;
        // A rollback runs on its own state machine: look for its execution there and start it there.
        const kind = executionKind(release);
        if (release.status !== 'pending' || (await workflow.releaseHistory(release.id, kind))) continue;
        const { executionId } = await workflow.startRelease({ releaseId: release.id, app: release.app, kind });
        await record(release.id, 'workflow.started', 'slipway', { executionId, recovered: true });
        logger.warn('started the workflow of a release left pending', { releaseId: release.id, kind });
        started.push(release.id);
      }
      return started;
    },

    async history(id: string) {
      const releaseId = parse(ReleaseId, id, 'release id');
      const release = await store.getRelease(releaseId);
      if (!release) throw new NotFoundError(`release ${releaseId} does not exist`);
      const history = await workflow.releaseHistory(release.id, executionKind(release));
      if (!history) throw new NotFoundError(`release ${release.id} has no workflow execution yet`);
      return history;
    },

    async list(query: Record<string, string | undefined>): Promise<Page<ReleaseSummary>> {
      const filter = parse(ListReleasesQuery, query, 'release query');
      if (filter.app) await apps.requireApp(filter.app);
      const page = await store.listReleases(filter);
      return {
        items: page.items.map(summarize),
        ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
      };
    },
  };
}
export type ReleaseService = ReturnType<typeof createReleaseService>;
