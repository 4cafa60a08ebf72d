import { z } from 'zod';
import { HOST_STATUSES, RELEASE_STATUSES } from '../release.ts';
import { AppConfig, AppName, ArtifactSource, EnvironmentName, HostId, parseSshHost, PrincipalName, ReleaseId, Role, Sha256 } from '../schemas.ts';

/**
 * The schemas of the HTTP layer that schemas.ts does not hold: path parameters and the answers.
 * Path parameters are validated with these before a handler runs; the answers only describe what
 * the services return, for the OpenAPI document (the services' types are the source of their shape).
 */

export const AppPath = z.strictObject({ app: AppName });
export const ReleasePath = z.strictObject({ id: ReleaseId });
export const EnvironmentPath = z.strictObject({ app: AppName, env: EnvironmentName });
export const TokenPath = z.strictObject({ name: PrincipalName });
/** A host as releases name it: an instance id or folder name, or an SSH host's `user@host:port`. */
const AnyHost = z
  .string()
  .max(300)
  .refine((value) => HostId.safeParse(value).success || 'host' in parseSshHost(value), {
    message: 'must be a host as the release names it: an instance id, a folder name, or user@host:port',
  });
export const ReleaseHostPath = z.strictObject({ id: ReleaseId, host: AnyHost });
export const HostOutputQuery = z.strictObject({
  after: z.string().max(4096).optional().meta({ description: 'a position from an earlier answer (`next`, or a line\'s `position`): read on from there' }),
  waitSeconds: z.coerce.number().int().min(0).max(20).optional().meta({
    description: 'a long poll: wait up to this long for a first new line (API Gateway answers whole responses, so this is how to follow output there)',
  }),
});
export const ArtifactPath = z.strictObject({ app: AppName, sha256: Sha256 });
/** Approval links are checked by the approval service: a wrong one gets the same page as an unknown one. */
export const ApprovalLinkPath = z.strictObject({ approvalId: z.string().meta({ description: 'the secret id from an approver\'s mail' }) });

const FieldProblem = z.object({ field: z.string(), message: z.string() });

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'machine-readable, e.g. invalid_request, not_found, environment_locked' }),
      message: z.string().meta({ description: 'what went wrong and how to fix it, for people' }),
      details: z.union([z.array(FieldProblem), z.record(z.string(), z.unknown()), z.null()]).meta({
        description: 'for invalid_request the fields to fix; for some conflicts the record in the way; else null',
      }),
    }),
  })
  .meta({ title: 'Error' });

const ReleaseStatus = z.enum(RELEASE_STATUSES);
const Timestamp = z.string().meta({ description: 'ISO 8601, UTC' });

export const ReleaseAccepted = z.object({ id: ReleaseId, status: ReleaseStatus });

const StoredApp = z.object({ config: AppConfig, revision: z.number().int(), updatedAt: Timestamp, updatedBy: z.string() });

const EnvironmentView = z.looseObject({
  name: EnvironmentName,
  live: z.looseObject({}).nullable(),
  retained: z.array(z.looseObject({})),
  lock: z.looseObject({ holder: z.string(), leaseUntil: Timestamp }).nullable(),
});

export const AppView = StoredApp.extend({ environments: z.array(EnvironmentView) });
export const StoredAppBody = StoredApp;
export const AppList = z.object({ items: z.array(AppName) });

export const UploadTicket = z.object({
  key: z.string(),
  sha256: Sha256,
  uploadUrl: z.string().optional().meta({ description: 'a presigned PUT, absent when alreadyUploaded' }),
  uploadHeaders: z.record(z.string(), z.string()).optional(),
  expiresAt: Timestamp.optional(),
  alreadyUploaded: z.boolean(),
});
export const ArtifactBody = z.object({ key: z.string(), sha256: Sha256, size: z.number().int(), source: ArtifactSource.optional() });

export const DiffQuery = z.strictObject({ environment: EnvironmentName.meta({ description: 'the environment whose live release is compared' }) });
const ReleaseRef = z.object({ releaseId: ReleaseId, version: z.string() });
const PathList = z.array(z.string()).meta({ description: 'paths relative to the release folder (index.html, assets/app.js), sorted' });
export const ReleaseDiffBody = z.object({
  from: ReleaseRef.nullable().meta({ description: 'what the environment runs now (what it ran before, once this release is live); null for a first release' }),
  to: ReleaseRef,
  environment: EnvironmentName,
  files: z.object({ added: PathList, removed: PathList, changed: PathList }),
  bytes: z.number().int().meta({ description: 'bytes of the files added or changed' }),
  complete: z.boolean().meta({ description: 'false when a file list is missing or incomplete; reason says why' }),
  reason: z.string().optional(),
});

/** Strict: a step's output (stdout, stderr) is the host-output route's, never this answer's. */
const ReleaseHostStep = z
  .strictObject({
    exitCode: z.number().int().nullable().meta({ description: 'null when the host never ran it to an end (timed out, unreachable)' }),
    startedAt: Timestamp,
    endedAt: Timestamp,
  })
  .meta({ description: 'how the step ended and when; what it printed: GET /v1/releases/{id}/hosts/{host}/output' });
const ReleaseHost = z.strictObject({
  host: AnyHost,
  status: z.enum(HOST_STATUSES),
  steps: z.record(z.string(), ReleaseHostStep).meta({ description: 'by step kind (distribute, switch, revert, prune)' }),
});

const ReleaseSummary = z.looseObject({ id: ReleaseId, app: AppName, version: z.string(), status: ReleaseStatus, createdAt: Timestamp });
export const ReleasePage = z.object({ items: z.array(ReleaseSummary), nextCursor: z.string().optional() });
export const ReleaseView = ReleaseSummary.extend({
  pause: z
    .object({
      environment: EnvironmentName,
      step: z.number().int().meta({ description: 'the pause\'s index in the canary steps' }),
      batch: z.number().int().meta({ description: 'the batch it follows, from 1' }),
      pausedAt: Timestamp,
      resumeAt: Timestamp.optional().meta({ description: 'a timed pause goes on by itself then' }),
    })
    .optional()
    .meta({ description: 'while paused: where, since when, and until when for a timed pause' }),
  queuePosition: z.number().int().min(1).optional().meta({ description: 'while waiting in an environment\'s line: 1 is next' }),
  queuedFor: EnvironmentName.optional().meta({ description: 'the environment whose line it waits in' }),
  environments: z.array(
    z.looseObject({
      environment: EnvironmentName,
      status: ReleaseStatus,
      order: z.number().int().meta({ description: 'its place in the app\'s pipeline, from 0' }),
      hosts: z.array(ReleaseHost).meta({ description: 'each host that has started, by name' }),
    }),
  ),
  plan: z
    .array(
      z.object({
        name: EnvironmentName,
        approval: z.boolean(),
        bakeSeconds: z.number().int(),
        batches: z.array(z.array(z.string())).meta({ description: 'each batch\'s hosts, in the order they switch' }),
        pauses: z
          .array(z.object({ afterBatch: z.number().int().meta({ description: 'the batch it follows, from 0' }), step: z.number().int(), seconds: z.number().int().optional() }))
          .optional()
          .meta({ description: 'a canary\'s pauses; no seconds: it waits for a promote' }),
      }),
    )
    .optional()
    .meta({ description: 'every environment\'s planned batches, known from the start of the release (absent only before it is planned)' }),
  bakes: z
    .array(z.object({ environment: EnvironmentName, batch: z.number().int().meta({ description: 'the batch it follows, from 1' }), startedAt: Timestamp, until: Timestamp }))
    .optional()
    .meta({ description: 'each bake that has started, with when it ends' }),
  events: z.array(z.looseObject({ type: z.string(), at: Timestamp })),
});
export const ReleaseHistory = z.looseObject({}).meta({ description: 'the workflow execution, state by state' });

export const ApprovalDecision = z.object({
  environment: EnvironmentName,
  decision: z.enum(['approve', 'reject']),
  gate: z.string().meta({ description: 'the approval gate\'s status after this decision' }),
});

export const PrincipalBody = z.object({ name: z.string(), role: Role });
const TokenView = z.object({
  name: z.string(),
  role: Role,
  createdAt: Timestamp,
  createdBy: z.string(),
  expiresAt: Timestamp.optional(),
  lastUsedAt: Timestamp.optional(),
});
export const TokenList = z.object({ items: z.array(TokenView) });
export const CreatedToken = z.object({
  name: z.string(),
  role: Role,
  token: z.string().meta({ description: 'the secret, shown this once' }),
  createdAt: Timestamp,
  expiresAt: Timestamp.optional(),
});

export const AuditPage = z.object({
  items: z.array(z.looseObject({ action: z.string(), actor: z.string(), at: Timestamp })),
  nextCursor: z.string().optional(),
});
export const OutboxBody = z.object({ items: z.array(z.looseObject({})) });
export const Health = z.object({ ok: z.literal(true) });

const HostOutputLine = z.object({
  position: z.string().meta({ description: 'where a read resuming after this line starts (the SSE event id)' }),
  step: z.string(),
  environment: EnvironmentName,
  stream: z.enum(['stdout', 'stderr']),
  text: z.string(),
});
export const HostOutputBody = z
  .object({
    releaseId: ReleaseId,
    host: AnyHost,
    lines: z.array(HostOutputLine),
    next: z.string(),
    ended: z.boolean(),
    cutBytes: z.number().int().optional().meta({ description: 'bytes skipped: the output grew past the kept limit (the end is kept)' }),
  })
  .meta({ description: 'with Accept: text/event-stream, `line` events (id: the position) until an `end` event; resume with Last-Event-ID' });
export const ReleaseEventList = z
  .object({ items: z.array(z.looseObject({ type: z.string(), at: Timestamp })) })
  .meta({ description: 'with Accept: text/event-stream, a `release` event holding the whole release each time it changes, then `end`' });

const HostViewBody = z.object({
  host: AnyHost,
  current: z.object({ releaseId: ReleaseId, version: z.string() }).nullable(),
  expected: ReleaseId.nullable().meta({ description: 'the release the environment says is live' }),
  drift: z.boolean().meta({ description: 'not on expected, or did not answer the last scan' }),
  retained: z.array(ReleaseId),
  checkedAt: Timestamp.nullable(),
  source: z.enum(['scan', 'switch', 'revert']).nullable(),
  unreachable: z.string().optional(),
});
export const HostList = z.object({ items: z.array(HostViewBody) });
export const HostScanBody = z.object({ items: z.array(HostViewBody), scanned: z.number().int(), unreachable: z.number().int() });
