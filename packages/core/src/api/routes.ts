import type { z } from 'zod';
import type { ApprovalService } from '../approvals.ts';
import type { AppService } from '../apps.ts';
import type { ArtifactService } from '../artifacts.ts';
import type { AuditLog } from '../audit.ts';
import type { HostInventory } from '../host-inventory.ts';
import type { HostOutputService } from '../host-output.ts';
import type { ReleaseFeed } from '../release-feed.ts';
import type { AuthService, Permission, Principal } from '../auth.ts';
import type { DiffService } from '../diffs.ts';
import type { Idempotency } from '../idempotency.ts';
import type { Logger } from '../logger.ts';
import type { ReleaseService } from '../releases.ts';
import {
  ApprovalRequestBody,
  AuditQuery,
  AppConfig,
  CreateArtifactRequest,
  CreateTokenRequest,
  ListReleasesQuery,
  OpenReleaseRequest,
  PromoteRequest,
  RollbackRequest,
} from '../schemas.ts';
import {
  AppList,
  AppPath,
  AppView,
  ApprovalDecision,
  ArtifactBody,
  ArtifactPath,
  AuditPage,
  CreatedToken,
  DiffQuery,
  EnvironmentPath,
  HostList,
  HostOutputBody,
  HostOutputQuery,
  HostScanBody,
  OutboxBody,
  PrincipalBody,
  ReleaseAccepted,
  ReleaseDiffBody,
  ReleaseHistory,
  ReleasePage,
  ReleaseEventList,
  ReleaseHostPath,
  ReleasePath,
  ReleaseView,
  StoredAppBody,
  TokenList,
  TokenPath,
  UploadTicket,
} from './schemas.ts';

export interface ApiServices {
  auth: AuthService;
  apps: AppService;
  artifacts: ArtifactService;
  releases: ReleaseService;
  diffs: DiffService;
  approvals: ApprovalService;
  audit: AuditLog;
  hostOutput: HostOutputService;
  hostInventory: HostInventory;
  releaseFeed: ReleaseFeed;
  /** A release's event log (JSON answer of the events route). */
  listEvents(releaseId: string): Promise<unknown[]>;
  logger: Logger;
  /**
   * Whether `Accept: text/event-stream` gets a stream. False on Lambda behind API Gateway, which
   * buffers a whole answer (a stream would end in a 504): there every route answers JSON, and
   * clients follow by long poll (`waitSeconds`) or, the dashboard, by polling.
   */
  eventStreams?: boolean;
  /** The local outbox; absent on AWS, where mail goes out through SES. */
  outbox?: { list(): Promise<unknown[]> };
  /**
   * Static files of the dashboard, by path ("/" is the page): called only for a GET or HEAD, so a
   * file is read on the first request for it, never at start.
   */
  assets?: (path: string) => { contentType: string; body: string } | undefined;
  /** Answers a retried request that names its Idempotency-Key with the first answer (routes marked `idempotent`). */
  idempotency?: Idempotency;
  /**
   * Requests the API handles at once; one more is answered 503 with Retry-After at once instead of
   * queueing until it times out (default DEFAULT_MAX_IN_FLIGHT_REQUESTS). /healthz is never refused.
   */
  maxInFlightRequests?: number;
}

/** Statuses a route may answer beyond those every authenticated route shares (401, 403, 500). */
export type ErrorStatus = 404 | 409 | 410 | 413 | 422 | 503;

export interface RouteInput {
  /** Already validated against the route's `params` schema. */
  params: Record<string, string>;
  /** Already validated against the route's `query` schema; passed on as received. */
  query: Record<string, string>;
  /** Already validated against the route's `body` schema; passed on as received. */
  body: unknown;
  principal: Principal;
}

/** One server-sent event; `id` is what a client sends back as Last-Event-ID to resume. */
export interface StreamEvent {
  event: string;
  id?: string | undefined;
  data: unknown;
}

/**
 * One authenticated JSON route: the table the router registers and the OpenAPI document describes,
 * so what is validated and what is documented are the same schemas.
 */
export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** In OpenAPI form, `/v1/apps/{app}`. */
  path: string;
  operationId: string;
  summary: string;
  permission: Permission;
  params?: z.ZodObject;
  query?: { schema: z.ZodObject; what: string };
  /** `optional`: an empty body stands for `{}`. `what` names the body in error messages. */
  body?: { schema: z.ZodType; what: string; optional?: boolean };
  success: {
    status: 200 | 201 | 202 | 204;
    description: string;
    schema?: z.ZodType;
  };
  errors: readonly ErrorStatus[];
  /** Takes an Idempotency-Key header: a retry with the same key and body gets the first answer and changes nothing. */
  idempotent?: boolean;
  /** `location`: where what a 201 created, or a 202 started, can be read. */
  handle(input: RouteInput): Promise<{ body?: unknown; location?: string }>;
  /**
   * With `Accept: text/event-stream`: the same resource as server-sent events, until the iterable
   * ends or the client goes (`signal`). `lastEventId` is the client's Last-Event-ID header.
   */
  events?(input: RouteInput & { lastEventId: string | undefined; signal: AbortSignal }): AsyncIterable<StreamEvent>;
}

const releaseLocation = (id: string) => `/v1/releases/${encodeURIComponent(id)}`;

export function apiRoutes(services: ApiServices): ApiRoute[] {
  const { auth, apps, artifacts, releases, diffs, approvals, audit, outbox, hostOutput, hostInventory, releaseFeed } = services;
  return [
    ...(outbox
      ? [
          {
            method: 'GET',
            path: '/v1/outbox',
            operationId: 'listOutbox',
            summary: 'Mails the local runtime would have sent (dev server only; they hold approval links)',
            permission: 'outbox:read',
            success: { status: 200, description: 'the mails, oldest first', schema: OutboxBody },
            errors: [],
            handle: async () => ({ body: { items: await outbox.list() } }),
          } satisfies ApiRoute,
        ]
      : []),
    {
      method: 'POST',
      path: '/v1/apps/{app}/environments/{env}/rollback',
      operationId: 'rollBack',
      summary: 'Switch an environment back to a retained release',
      permission: 'releases:rollback',
      params: EnvironmentPath,
      body: { schema: RollbackRequest, what: 'rollback request', optional: true },
      success: { status: 202, description: 'the rollback release, started', schema: ReleaseAccepted },
      errors: [404, 409, 422],
      handle: async ({ params, body, principal }) => {
        const started = await releases.rollback(params.app!, params.env!, body, principal);
        return { body: started, location: releaseLocation(started.id) };
      },
    },
    {
      method: 'POST',
      path: '/v1/releases/{id}/cancel',
      operationId: 'cancelRelease',
      summary: 'Cancel a release that is not live everywhere yet; switched hosts are put back',
      permission: 'releases:cancel',
      params: ReleasePath,
      success: { status: 202, description: 'the cancellation, started', schema: ReleaseAccepted },
      errors: [404, 409],
      handle: async ({ params, principal }) => {
        const cancelled = await releases.cancel(params.id!, principal);
        return { body: cancelled, location: releaseLocation(cancelled.id) };
      },
    },
    {
      method: 'POST',
      path: '/v1/releases/{id}/promote',
      operationId: 'promoteRelease',
      summary: 'Go on from a canary\'s pause; {"full": true} skips every pause still ahead',
      permission: 'releases:promote',
      params: ReleasePath,
      body: { schema: PromoteRequest, what: 'promote request', optional: true },
      success: { status: 202, description: 'the release, switching on', schema: ReleaseAccepted },
      errors: [404, 409],
      handle: async ({ params, body, principal }) => {
        const promoted = await releases.promote(params.id!, body, principal);
        return { body: promoted, location: releaseLocation(promoted.id) };
      },
    },
    {
      method: 'GET',
      path: '/v1/me',
      operationId: 'whoAmI',
      summary: 'The principal the token names, with its role',
      permission: 'read',
      success: { status: 200, description: 'the caller', schema: PrincipalBody },
      errors: [],
      handle: async ({ principal }) => ({ body: principal }),
    },
    {
      method: 'POST',
      path: '/v1/releases/{id}/approvals',
      operationId: 'decideApproval',
      summary: 'Approve or reject a release waiting at an approval gate, as the approver the token names',
      permission: 'releases:approve',
      params: ReleasePath,
      body: { schema: ApprovalRequestBody, what: 'approval' },
      success: { status: 200, description: 'the decision, recorded', schema: ApprovalDecision },
      errors: [404, 409, 422],
      handle: async ({ params, body, principal }) => ({ body: await approvals.decideByApi(params.id!, body, principal) }),
    },
    {
      method: 'GET',
      path: '/v1/apps',
      operationId: 'listApps',
      summary: 'The names of all apps',
      permission: 'read',
      success: { status: 200, description: 'app names', schema: AppList },
      errors: [],
      handle: async () => ({ body: { items: await apps.list() } }),
    },
    {
      method: 'PUT',
      path: '/v1/apps/{app}',
      operationId: 'putApp',
      summary: 'Create or update an app from its config (slipway apply <file>)',
      permission: 'apps:write',
      params: AppPath,
      body: { schema: AppConfig, what: 'app config' },
      success: { status: 200, description: 'the stored config with its new revision', schema: StoredAppBody },
      errors: [],
      handle: async ({ params, body, principal }) => ({ body: await apps.put(params.app!, body, principal) }),
    },
    {
      method: 'GET',
      path: '/v1/apps/{app}',
      operationId: 'getApp',
      summary: 'An app\'s config, and per environment its live release, retained releases and lock',
      permission: 'read',
      params: AppPath,
      success: { status: 200, description: 'the app', schema: AppView },
      errors: [404],
      handle: async ({ params }) => ({ body: await apps.view(params.app!) }),
    },
    {
      method: 'POST',
      path: '/v1/artifacts',
      operationId: 'requestArtifactUpload',
      summary: 'A presigned upload for a build, stored by content (sha256)',
      permission: 'artifacts:write',
      body: { schema: CreateArtifactRequest, what: 'artifact request' },
      success: { status: 201, description: 'where to PUT the bytes, unless this content is already stored', schema: UploadTicket },
      errors: [404, 413],
      handle: async ({ body, principal }) => {
        const ticket = await artifacts.requestUpload(body, principal);
        const { app, sha256 } = body as { app: string; sha256: string };
        return { body: ticket, location: `/v1/artifacts/${app}/${sha256}` };
      },
    },
    {
      method: 'GET',
      path: '/v1/artifacts/{app}/{sha256}',
      operationId: 'getArtifact',
      summary: 'An uploaded artifact, once its bytes are checked against its sha256',
      permission: 'read',
      params: ArtifactPath,
      success: { status: 200, description: 'the stored artifact', schema: ArtifactBody },
      errors: [404, 422],
      handle: async ({ params }) => {
        await apps.requireApp(params.app!);
        return { body: await artifacts.describe(params.app!, params.sha256!) };
      },
    },
    {
      method: 'POST',
      path: '/v1/releases',
      operationId: 'openRelease',
      summary: 'Open a release of an uploaded artifact; the workflow takes it from there',
      permission: 'releases:open',
      body: { schema: OpenReleaseRequest, what: 'release request' },
      success: { status: 202, description: 'the release, pending', schema: ReleaseAccepted },
      errors: [404, 409, 422],
      idempotent: true,
      handle: async ({ body, principal }) => {
        const opened = await releases.open(body, principal);
        return { body: opened, location: releaseLocation(opened.id) };
      },
    },
    {
      method: 'GET',
      path: '/v1/releases',
      operationId: 'listReleases',
      summary: 'Releases, newest first, by app and environment',
      permission: 'read',
      query: { schema: ListReleasesQuery, what: 'release query' },
      success: { status: 200, description: 'a page of releases; pass nextCursor as cursor for the next', schema: ReleasePage },
      errors: [404],
      handle: async ({ query }) => ({ body: await releases.list(query) }),
    },
    {
      method: 'GET',
      path: '/v1/releases/{id}',
      operationId: 'getRelease',
      summary: 'A release with its environments, hosts, approvals and events',
      permission: 'read',
      params: ReleasePath,
      success: { status: 200, description: 'the release', schema: ReleaseView },
      errors: [404],
      handle: async ({ params }) => ({ body: await releases.view(params.id!) }),
    },
    {
      method: 'GET',
      path: '/v1/releases/{id}/history',
      operationId: 'getReleaseHistory',
      summary: 'The workflow\'s execution of a release, state by state',
      permission: 'read',
      params: ReleasePath,
      success: { status: 200, description: 'the execution history', schema: ReleaseHistory },
      errors: [404],
      handle: async ({ params }) => ({ body: await releases.history(params.id!) }),
    },
    {
      method: 'GET',
      path: '/v1/releases/{id}/diff',
      operationId: 'getReleaseDiff',
      summary: 'The files a release adds, removes and changes against what an environment runs',
      permission: 'read',
      params: ReleasePath,
      query: { schema: DiffQuery, what: 'diff query' },
      success: { status: 200, description: 'the paths added, removed and changed, relative to the release folder', schema: ReleaseDiffBody },
      errors: [404],
      handle: async ({ params, query }) => ({ body: await diffs.diff(params.id!, query.environment!) }),
    },
    {
      method: 'GET',
      path: '/v1/releases/{id}/events',
      operationId: 'getReleaseEvents',
      summary: 'A release\'s event log; as server-sent events, the release each time it changes, until it ends',
      permission: 'read',
      params: ReleasePath,
      success: { status: 200, description: 'the events, oldest first', schema: ReleaseEventList },
      errors: [404],
      handle: async ({ params }) => ({ body: { items: await services.listEvents(params.id!) } }),
      events: ({ params, signal }) => releaseFeed.events(params.id!, signal),
    },
    {
      method: 'GET',
      path: '/v1/releases/{id}/hosts/{host}/output',
      operationId: 'getHostOutput',
      summary: 'What a host printed in this release\'s steps so far, live while a step runs',
      permission: 'read',
      params: ReleaseHostPath,
      query: { schema: HostOutputQuery, what: 'output query' },
      success: { status: 200, description: 'the lines from `after` on, in order, each with its stream and step', schema: HostOutputBody },
      errors: [404],
      handle: async ({ params, query }) => {
        const { after, waitSeconds } = HostOutputQuery.parse(query);
        const options = { ...(after ? { after } : {}), ...(waitSeconds ? { waitSeconds } : {}) };
        return { body: await hostOutput.read(params.id!, params.host!, options) };
      },
      events: ({ params, query, lastEventId, signal }) => hostOutput.events(params.id!, params.host!, lastEventId ?? query.after, signal),
    },
    {
      method: 'GET',
      path: '/v1/apps/{app}/environments/{env}/hosts',
      operationId: 'listHosts',
      summary: 'Every target host of an environment: the release it runs, the one expected, drift',
      permission: 'read',
      params: EnvironmentPath,
      success: { status: 200, description: 'the hosts, by name', schema: HostList },
      errors: [404],
      handle: async ({ params }) => ({ body: { items: await hostInventory.list(params.app!, params.env!) } }),
    },
    {
      method: 'POST',
      path: '/v1/apps/{app}/environments/{env}/hosts/scan',
      operationId: 'scanHosts',
      summary: 'Read `current` and `releases/` on every target host (a read-only command) and record it',
      permission: 'hosts:scan',
      params: EnvironmentPath,
      success: { status: 200, description: 'the hosts as scanned, with drift', schema: HostScanBody },
      errors: [404],
      handle: async ({ params, principal }) => {
        const { hosts, scanned, unreachable } = await hostInventory.scan(params.app!, params.env!, principal);
        return { body: { items: hosts, scanned, unreachable } };
      },
    },
    {
      method: 'POST',
      path: '/v1/tokens',
      operationId: 'createToken',
      summary: 'Make an API token; its secret is in this answer only',
      permission: 'tokens:write',
      body: { schema: CreateTokenRequest, what: 'token request' },
      success: { status: 201, description: 'the token with its secret', schema: CreatedToken },
      errors: [409],
      handle: async ({ body, principal }) => {
        const created = await auth.createToken(body, principal);
        return { body: created, location: `/v1/tokens/${encodeURIComponent(created.name)}` };
      },
    },
    {
      method: 'GET',
      path: '/v1/tokens',
      operationId: 'listTokens',
      summary: 'The tokens, never their secrets, with last use and expiry',
      permission: 'tokens:read',
      success: { status: 200, description: 'the tokens', schema: TokenList },
      errors: [],
      handle: async () => ({ body: await auth.listTokens() }),
    },
    {
      method: 'DELETE',
      path: '/v1/tokens/{name}',
      operationId: 'revokeToken',
      summary: 'Refuse a token from its next request on',
      permission: 'tokens:write',
      params: TokenPath,
      success: { status: 204, description: 'revoked' },
      errors: [404, 409],
      handle: async ({ params, principal }) => {
        await auth.revokeToken(params.name!, principal);
        return {};
      },
    },
    {
      method: 'GET',
      path: '/v1/audit',
      operationId: 'listAudit',
      summary: 'Who changed what, newest first',
      permission: 'audit:read',
      query: { schema: AuditQuery, what: 'audit query' },
      success: { status: 200, description: 'a page of audit entries', schema: AuditPage },
      errors: [],
      handle: async ({ query }) => ({ body: await audit.list(query) }),
    },
  ];
}
