import type { ApprovalService } from './approvals.ts';
import type { AppService } from './apps.ts';
import type { AuditLog } from './audit.ts';
import type { ArtifactService } from './artifacts.ts';
import type { Principal } from './auth.ts';
import { ConflictError, EnvironmentLockedError, IllegalTransitionError, NotFoundError, UnprocessableError } from './errors.ts';
import type { Clock, IdGenerator } from './ids.ts';
import type { Logger } from './logger.ts';
import type { EnvironmentLiveStore, EventStore, ExecutionKind, LockStore, Page, PlanStore, ReleaseRecordStore, Workflow } from './ports.ts';
import { OPEN_LOCK_LEASE_SECONDS } from './stages/environment-line.ts';
import { assertTransition, type EnvironmentState, type HostState, isTerminal, type Release, type ReleaseEvent } from './release.ts';
import { EnvironmentName, ListReleasesQuery, OpenReleaseRequest, parse, ReleaseId, RollbackRequest } from './schemas.ts';

/** The ports of the release table the release service uses. */
export type ReleaseServiceStore = ReleaseRecordStore &
  EventStore &
  Pick<LockStore, 'getLock' | 'acquireLock'> &
  Pick<EnvironmentLiveStore, 'getEnvironmentLive'> &
  Pick<PlanStore, 'getHostStates'>;

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

export interface ReleaseEnvironmentView extends Omit<EnvironmentState, 'releaseId' | 'app'> {
  hosts: Omit<HostState, 'releaseId' | 'environment'>[];
}

export interface ReleaseView extends Release {
  environments: ReleaseEnvironmentView[];
  /** Each approval gate: approvers, what they decided and when; never a link. */
  approvals: Awaited<ReturnType<ApprovalService['summary']>>;
  events: Omit<ReleaseEvent, 'releaseId'>[];
}

export function summarize({ config: _config, ...summary }: Release): ReleaseSummary {
  return summary;
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

  return {
    async open(body: unknown, actor: Principal): Promise<Pick<Release, 'id' | 'status'>> {
      const request = parse(OpenReleaseRequest, body, 'release request');
      const app = await apps.requireApp(request.app);
      const artifact = await artifacts.verify(request.app, request.artifact.sha256);

      const now = clock.now();
      const id = ids.next();
      if (!app.config.queue) {
        for (const env of app.config.environments) {
          const lock = await store.getLock(app.config.name, env.name);
          if (lock && lock.leaseUntil > now.toISOString()) {
            throw new EnvironmentLockedError(lock.app, lock.environment, lock.holder, lock.leaseUntil);
          }
        }
        // Every release of an app starts in its first environment: holding that lock from the open
        // on makes two racing opens start exactly one. The workflow renews it when it gets there.
        const first = app.config.environments[0]!;
        await store.acquireLock(
          {
            app: app.config.name,
            environment: first.name,
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
      await store.createRelease(release, environments);
      await record(release.id, 'release.opened', actor.name, {
        version: release.version,
        sha256: artifact.sha256,
        appRevision: app.revision,
      });

      const { executionId } = await workflow.startRelease({ releaseId: release.id, app: release.app });
      await record(release.id, 'workflow.started', 'slipway', { executionId });
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
      const { executionId } = await workflow.startRelease({ releaseId: id, app: app.config.name, kind: 'rollback' });
      await record(id, 'workflow.started', 'slipway', { executionId });
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
          // Nothing has reached a host while pending (a queued release waits here): stop it outright.
          // Later, the workflow itself must put back what it switched, so it is left to notice.
          if (release.status === 'pending') await workflow.stopRelease(releaseId, `cancelled by ${actor.name}`, executionKind(release));
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
      const release = await store.getRelease(releaseId);
      if (!release) throw new NotFoundError(`release ${releaseId} does not exist`);
      const [environments, hosts, events, gates] = await Promise.all([
        store.getEnvironmentStates(releaseId),
        store.getHostStates(releaseId),
        store.listEvents(releaseId),
        approvals.summary(releaseId),
      ]);
      return {
        ...release,
        environments: environments
          .sort((a, b) => a.order - b.order)
          .map(({ releaseId: _r, app: _a, ...env }) => ({
            ...env,
            hosts: hosts
              .filter((h) => h.environment === env.environment)
              .map(({ releaseId: _id, environment: _env, ...host }) => host),
          })),
        approvals: gates,
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
      const release = await this.view(id);
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
