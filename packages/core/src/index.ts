import type { AnalysisSources } from './analysis.ts';
import { type AppDeps, createAppService } from './apps.ts';
import { createAuditLog } from './audit.ts';
import { createArtifactService } from './artifacts.ts';
import { createAuthService } from './auth.ts';
import { createDiffService } from './diffs.ts';
import { createIdempotency } from './idempotency.ts';
import { createHttpApi } from './api/index.ts';
import type { Clock, IdGenerator } from './ids.ts';
import type { Logger } from './logger.ts';
import { createApprovalService } from './approvals.ts';
import type { ApprovalStore, ArtifactStore, AuditStore, Fleet, Mailer, Notifier, ReleaseStore, TokenStore, Workflow } from './ports.ts';
import { createReleaseStages } from './stages.ts';
import { createReleaseService } from './releases.ts';
import { createRetention, type RetentionPolicy } from './retention.ts';
import { createHostInventory } from './host-inventory.ts';
import { createHostOutput } from './host-output.ts';
import { createReleaseFeed } from './release-feed.ts';
import { NotFoundError } from './errors.ts';

export * from './analysis.ts';
export * from './approval-pages.ts';
export * from './approvals.ts';
export * from './apps.ts';
export * from './artifacts.ts';
export * from './audit.ts';
export * from './auth.ts';
export * from './diffs.ts';
export * from './errors.ts';
export * from './host-inventory.ts';
export * from './host-output.ts';
export * from './release-feed.ts';
export * from './api/index.ts';
export * from './ids.ts';
export * from './idempotency.ts';
export * from './logger.ts';
export { type ArtifactManifest, diffManifests, type ManifestDiff, type ManifestEntry, manifestOf } from './manifest.ts';
export * from './notifications.ts';
export * from './ports.ts';
export * from './release.ts';
export * from './releases.ts';
export * from './retention.ts';
export * from './schemas.ts';

export interface SlipwayDeps {
  store: ReleaseStore;
  tokens: TokenStore;
  objects: ArtifactStore;
  approvalStore: ApprovalStore;
  /** The audit log of who changed what (GET /v1/audit). */
  auditStore: AuditStore;
  workflow: Workflow;
  /** Absent where no stage runs (the API Lambda): then `stages` is undefined. */
  fleet?: Fleet;
  /** What environments' analyses ask (stages only); an analysis with no source fails safe. */
  analysis?: AnalysisSources;
  mailer: Mailer;
  notifier: Notifier;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  baseUrl: () => string;
  signingKey: string;
  outbox?: { list(): Promise<unknown[]> };
  /** The dashboard's static files by path, each read when first asked for (only the API serves them). */
  assets?: (path: string) => { contentType: string; body: string } | undefined;
  /** Refuses, when a config is applied, targets this runtime cannot reach (see AppDeps). */
  refuseTargets?: AppDeps['refuseTargets'];
  /** False where answers are buffered whole (Lambda behind API Gateway): no server-sent events there. */
  eventStreams?: boolean;
  /** How long records, artifacts and output are kept (defaults in retention.ts). */
  retention?: Partial<RetentionPolicy>;
  /** Requests the API handles at once before it answers 503 (default DEFAULT_MAX_IN_FLIGHT_REQUESTS). */
  maxInFlightRequests?: number;
}

/** Wires the use-cases once per runtime (Lambda cold start, dev server, test). */
export function createSlipway(deps: SlipwayDeps) {
  const { store, tokens, objects, workflow, fleet, clock, ids, logger } = deps;
  const audit = createAuditLog({ store: deps.auditStore, clock, ids, logger });
  const auth = createAuthService({ tokens, clock, audit, logger });
  const apps = createAppService({ store, clock, audit, ...(deps.refuseTargets ? { refuseTargets: deps.refuseTargets } : {}) });
  const artifacts = createArtifactService({ store, objects, apps, clock });
  const diffs = createDiffService({ store, objects });
  const approvals = createApprovalService({
    store,
    approvals: deps.approvalStore,
    workflow,
    mailer: deps.mailer,
    notifier: deps.notifier,
    clock,
    ids,
    logger,
    baseUrl: deps.baseUrl,
    signingKey: deps.signingKey,
    audit,
    diffs,
  });
  const releases = createReleaseService({ store, apps, artifacts, approvals, workflow, clock, ids, logger, audit });
  const retention = createRetention({ store, objects, workflow, clock, logger, ...(deps.retention ? { policy: deps.retention } : {}) });
  const analysis = deps.analysis ? { analysis: deps.analysis } : {};
  const stages = fleet ? createReleaseStages({ store, fleet, workflow, objects, approvals, clock, ids, logger, ...analysis }) : undefined;
  // Without a fleet, output is what the steps recorded and the host list what switches recorded.
  const hostOutput = createHostOutput({ store, ...(fleet ? { fleet } : {}) });
  const hostInventory = createHostInventory({ store, apps, clock, ids, logger, ...(fleet ? { fleet } : {}) });
  const releaseFeed = createReleaseFeed({ store, view: (id) => releases.view(id) });
  const api = createHttpApi({
    idempotency: createIdempotency({ store, clock }),
    ...(deps.maxInFlightRequests ? { maxInFlightRequests: deps.maxInFlightRequests } : {}),
    auth,
    hostOutput,
    hostInventory,
    releaseFeed,
    async listEvents(id) {
      if (!(await store.getRelease(id))) throw new NotFoundError(`no release ${id}`);
      return (await store.listEvents(id)).map(({ releaseId: _releaseId, ...event }) => event);
    },
    apps,
    artifacts,
    releases,
    diffs,
    approvals,
    audit,
    logger,
    ...(deps.outbox ? { outbox: deps.outbox } : {}),
    ...(deps.assets ? { assets: deps.assets } : {}),
    ...(deps.eventStreams === undefined ? {} : { eventStreams: deps.eventStreams }),
  });
  return { auth, apps, artifacts, releases, diffs, approvals, audit, retention, stages, api, hostOutput, hostInventory, releaseFeed };
}
export type Slipway = ReturnType<typeof createSlipway>;
export * from './host-scripts.ts';
export * from './plan.ts';
export * from './stages.ts';
export * from './stage-inputs.ts';
export * from './stage-table.ts';
export * from './steps.ts';
