import type { AnalysisSources } from './analysis.ts';
import { createHttpApi } from './api/index.ts';
import { type AppDeps, createAppService } from './apps.ts';
import { createApprovalService } from './approvals.ts';
import { createArtifactService } from './artifacts.ts';
import { createAuditLog } from './audit.ts';
import { createAuthService } from './auth.ts';
import { createDiffService } from './diffs.ts';
import { NotFoundError } from './errors.ts';
import { createHostInventory } from './host-inventory.ts';
import { createHostOutput } from './host-output.ts';
import { createIdempotency } from './idempotency.ts';
import type { Clock, IdGenerator } from './ids.ts';
import type { Logger } from './logger.ts';
import type { ApprovalStore, ArtifactStore, AuditStore, Fleet, Mailer, Notifier, ReleaseStore, TokenStore, Workflow } from './ports.ts';
import { createReleaseFeed } from './release-feed.ts';
import { createReleaseService } from './releases.ts';
import { createRetention, type RetentionPolicy } from './retention.ts';
import { createReleaseStages } from './stages.ts';

/**
 * The port implementations a runtime brings: DynamoDB, S3, Step Functions, SSM and SES on Lambda;
 * the same clients against dynalite and s3rver, the local executor, fleet and outbox in the dev
 * server; in-memory fakes in tests (testing/harness.ts).
 */
export interface SlipwayAdapters {
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
  /** The mails sent, listed by the API (GET /v1/outbox); only where mail goes to an outbox. */
  outbox?: { list(): Promise<unknown[]> };
  /** The dashboard's static files by path, each read when first asked for (only the API serves them). */
  assets?: (path: string) => { contentType: string; body: string } | undefined;
  /** Refuses, when a config is applied, targets this runtime cannot reach (see AppDeps). */
  refuseTargets?: AppDeps['refuseTargets'];
}

/** What differs between deployments of the same adapters. */
export interface SlipwayConfig {
  /** Where approval links and the dashboard point; a function, as the dev server learns its port late. */
  baseUrl: () => string;
  /** Keys the CSRF tokens of approval pages. */
  signingKey: string;
  /** False where answers are buffered whole (Lambda behind API Gateway): no server-sent events there. */
  eventStreams?: boolean;
  /** How long records, artifacts and output are kept (defaults in retention.ts). */
  retention?: Partial<RetentionPolicy>;
  /** Requests the API handles at once before it answers 503 (default DEFAULT_MAX_IN_FLIGHT_REQUESTS). */
  maxInFlightRequests?: number;
}

/**
 * The one composition root: every use-case and the HTTP API, built from a runtime's adapters once
 * per Lambda cold start, dev server start or test. The runtimes only construct adapters and carry
 * requests and events to what this returns.
 */
export function composeSlipway(adapters: SlipwayAdapters, config: SlipwayConfig) {
  const { store, tokens, objects, workflow, fleet, clock, ids, logger } = adapters;
  const audit = createAuditLog({ store: adapters.auditStore, clock, ids, logger });
  const auth = createAuthService({ tokens, clock, audit, logger });
  const apps = createAppService({ store, clock, audit, ...(adapters.refuseTargets ? { refuseTargets: adapters.refuseTargets } : {}) });
  const artifacts = createArtifactService({ store, objects, apps, clock });
  const diffs = createDiffService({ store, objects });
  const approvals = createApprovalService({
    store,
    approvals: adapters.approvalStore,
    workflow,
    mailer: adapters.mailer,
    notifier: adapters.notifier,
    clock,
    ids,
    logger,
    baseUrl: config.baseUrl,
    signingKey: config.signingKey,
    audit,
    diffs,
  });
  const releases = createReleaseService({ store, apps, artifacts, approvals, workflow, clock, ids, logger, audit });
  const retention = createRetention({ store, objects, workflow, clock, logger, ...(config.retention ? { policy: config.retention } : {}) });
  const analysis = adapters.analysis ? { analysis: adapters.analysis } : {};
  const stages = fleet ? createReleaseStages({ store, fleet, workflow, objects, approvals, clock, ids, logger, ...analysis }) : undefined;
  // Without a fleet, output is what the steps recorded and the host list what switches recorded.
  const hostOutput = createHostOutput({ store, ...(fleet ? { fleet } : {}) });
  const hostInventory = createHostInventory({ store, apps, clock, ids, logger, ...(fleet ? { fleet } : {}) });
  const releaseFeed = createReleaseFeed({ store, view: (id) => releases.view(id) });
  const api = createHttpApi({
    idempotency: createIdempotency({ store, clock }),
    ...(config.maxInFlightRequests ? { maxInFlightRequests: config.maxInFlightRequests } : {}),
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
    ...(adapters.outbox ? { outbox: adapters.outbox } : {}),
    ...(adapters.assets ? { assets: adapters.assets } : {}),
    ...(config.eventStreams === undefined ? {} : { eventStreams: config.eventStreams }),
  });
  return { auth, apps, artifacts, releases, diffs, approvals, audit, retention, stages, api, hostOutput, hostInventory, releaseFeed };
}
export type Slipway = ReturnType<typeof composeSlipway>;
