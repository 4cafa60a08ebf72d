import type { ArtifactManifest } from './manifest.ts';
import type {
  EnvironmentLive,
  EnvironmentLock,
  EnvironmentState,
  HostState,
  HostStatus,
  HostStepOutput,
  HostSummary,
  Release,
  ReleaseEvent,
  ReleaseStatus,
} from './release.ts';
import type { HostScript } from './host-scripts.ts';
import type { ReleasePlan } from './plan.ts';
import type { AppConfig, ArtifactSource, EnvironmentConfig, Role } from './schemas.ts';

/**
 * The small ports the domain needs. Adapters (DynamoDB, S3, Step Functions, the local stand-ins)
 * implement them and translate their own failures into the domain errors in errors.ts.
 */

export interface StoredApp {
  config: AppConfig;
  /** Increases by one with every write; guards against lost updates. */
  revision: number;
  updatedAt: string;
  updatedBy: string;
}

export interface Page<T> {
  items: T[];
  nextCursor?: string;
}

export interface ListReleasesFilter {
  app?: string;
  environment?: string;
  limit: number;
  cursor?: string;
  /** Oldest first instead of newest first (retention walks from the oldest). */
  oldestFirst?: boolean;
}

export interface ArtifactRecord {
  app: string;
  sha256: string;
  key: string;
  size: number;
  requestedBy: string;
  requestedAt: string;
  /** Set once the stored object was hashed and matched; tied to the object's ETag. */
  verified?: { etag: string; at: string };
  /** The git commit it was built from, as the pusher said (the last push that said so). */
  source?: ArtifactSource;
}

/** App configs, each with a revision that guards against lost updates. */
export interface AppStore {
  /** Writes the config; with `expectedRevision`, fails with ConflictError if someone wrote first. */
  putApp(config: AppConfig, actor: string, now: string, expectedRevision?: number): Promise<StoredApp>;
  getApp(name: string): Promise<StoredApp | undefined>;
  /** Every app's name, in name order. */
  listApps(): Promise<string[]>;
}

/** Release records and each one's per-environment state. Reads are consistent: a stage reads, then writes. */
export interface ReleaseRecordStore {
  /** Creates the release and its per-environment records; ConflictError if the id is taken. */
  createRelease(release: Release, environments: EnvironmentState[]): Promise<void>;
  getRelease(id: string): Promise<Release | undefined>;
  /** Several releases in one read, in `ids` order; ids with no release are left out. */
  getReleases(ids: string[]): Promise<Release[]>;
  /** Moves the status only if it is still `from` (compare-and-set); ConflictError otherwise. */
  updateReleaseStatus(
    id: string,
    from: ReleaseStatus,
    to: ReleaseStatus,
    now: string,
    reason?: string,
  ): Promise<Release>;
  /** Newest first (release ids sort by creation), unless `oldestFirst`. */
  listReleases(filter: ListReleasesFilter): Promise<Page<Release>>;

  /** In environment-name order. */
  getEnvironmentStates(releaseId: string): Promise<EnvironmentState[]>;
  /**
   * Writes the state whole. With `expectedStatus`, only while the stored status is still that one
   * (compare-and-set): ConflictError otherwise, so a stale writer cannot move an environment back.
   */
  putEnvironmentState(state: EnvironmentState, expectedStatus?: ReleaseStatus): Promise<void>;
}

/** Everything the release view shows of one release, read together. */
export interface WholeRelease {
  release: Release;
  /** Once Prepare stored it. */
  plan?: ReleasePlan;
  /** In environment-name order. */
  environments: EnvironmentState[];
  /** Each host with its steps' outcomes but not their output, by environment then host. */
  hosts: HostSummary[];
  /** In event-id order. */
  events: ReleaseEvent[];
  /** In key order. */
  steps: StepRecord[];
  /** Its approval gates as recorded: they live with the release (on DynamoDB, in its partition). */
  approvals: ApprovalRecords;
}

/** A release's approval requests, by environment, and its approvers' decisions, by environment then approver. */
export interface ApprovalRecords {
  requests: ApprovalRequest[];
  decisions: ApprovalDecision[];
}

/**
 * A release written and read whole: what the API's open and read cost. On DynamoDB every item of a
 * release shares its partition, so opening is one batch plus the conditional release item, and
 * reading is one query where the single-purpose ports above make one call each.
 */
export interface WholeReleaseStore {
  /**
   * Creates the release, its environments and its first events: the environments and events first,
   * the release item last and once (ConflictError if the id is taken), so a crash in between leaves
   * nothing that lists or reads as a release.
   */
  openRelease(release: Release, environments: EnvironmentState[], events: ReleaseEvent[]): Promise<void>;
  /** The release with its plan, environments, hosts, events, steps and approval records; undefined when there is no release item. */
  readWholeRelease(id: string): Promise<WholeRelease | undefined>;
}

/** Deleting a release with everything recorded under it, in every port (retention). */
export interface ReleasePurge {
  /** Deletes a release and everything recorded under it (environments, hosts, events, plan, steps). */
  deleteRelease(id: string): Promise<void>;
}

/** Each release's event log. */
export interface EventStore {
  /** Stores the event; an event id stored before is left as it is (a retried append). */
  appendEvent(event: ReleaseEvent): Promise<void>;
  /** In event-id order: the order they happened. */
  listEvents(releaseId: string): Promise<ReleaseEvent[]>;
}

/** One lock per environment, leased, and the line of releases waiting for it. */
export interface LockStore {
  /**
   * Takes the environment lock for `holder`, or renews it if `holder` already has it, or takes over
   * a lease that ran out. Throws EnvironmentLockedError naming the current holder otherwise.
   */
  acquireLock(lock: EnvironmentLock, now: string): Promise<void>;
  /** Frees the lock if `holder` has it; freeing a lock one does not hold changes nothing. */
  releaseLock(app: string, environment: string, holder: string): Promise<void>;
  getLock(app: string, environment: string): Promise<EnvironmentLock | undefined>;
  /** The locks of several environments of one app in one read, in `environments` order; free ones are left out. */
  getLocks(app: string, environments: string[]): Promise<EnvironmentLock[]>;

  /**
   * Puts the release in the environment's line (an app with `queue: true`), or, when it is in line
   * already, hands its place the new callback token. `created` says which. The line is ordered by
   * release id: the order the releases were opened.
   */
  joinQueue(waiter: QueueWaiter): Promise<{ created: boolean }>;
  /** The environment's line, first first, at most `limit` (all when absent). */
  listQueue(app: string, environment: string, limit?: number): Promise<QueueWaiter[]>;
  /** Takes the release out of the environment's line; a release not in it changes nothing. */
  leaveQueue(app: string, environment: string, releaseId: string): Promise<void>;
  /** Environments someone waits for, each once, at most `limit` waiters looked at: what the sweep wakes. */
  listQueuedEnvironments(limit: number): Promise<{ app: string; environment: string }[]>;
}

/** One host's part of a finished command: its step output, and the status it moves to (none leaves it). */
export interface HostOutcome {
  host: string;
  status?: HostStatus;
  output: HostStepOutput;
}

/** The plan a release runs (hosts per batch per environment) and each host's state and output. */
export interface PlanStore {
  /** Stores the plan once; a second call returns the plan stored first. */
  savePlan(plan: ReleasePlan): Promise<ReleasePlan>;
  getPlan(releaseId: string): Promise<ReleasePlan | undefined>;

  /**
   * Creates hosts' records in `pending` if they do not exist yet; existing ones are left alone, so
   * entering again never moves a host back. Two calls at once (two entries) create each host once.
   */
  ensureHostStates(releaseId: string, environment: string, hosts: string[], now: string): Promise<void>;
  /**
   * A finished command's outcome on many hosts at once: each host's step output (the last write of a
   * step wins), and its status where one is given (a host with no record yet gets one), in batches
   * rather than two writes a host. Not atomic: a failure part-way leaves some hosts written, and the
   * same call again writes them all.
   */
  recordHostOutcomes(releaseId: string, environment: string, step: string, outcomes: HostOutcome[], now: string): Promise<void>;
  /** Each host with its step outputs, by environment then host. */
  getHostStates(releaseId: string): Promise<HostState[]>;
  /** What `step` printed on one host of `environment`, as recorded when it ended; undefined when it was not. */
  getHostOutput(releaseId: string, environment: string, host: string, step: string): Promise<HostStepOutput | undefined>;
}

/** The steps the workflow waits on (host commands, bakes, approvals): the host-command protocol's records. */
export interface StepStore {
  /** Creates the step if it is new; otherwise returns the one already there, untouched. */
  startStep(step: StepRecord): Promise<{ created: boolean; step: StepRecord }>;
  /** Hands a running step a new callback token; undefined if the step is no longer running. */
  replaceStepToken(releaseId: string, key: string, taskToken: string, now: string): Promise<StepRecord | undefined>;
  /**
   * Records the outcome if the step is still running (compare-and-set); returns the step as it now
   * stands, and whether this call settled it (false: it had settled before, maybe this very moment).
   */
  completeStep(releaseId: string, key: string, outcome: StepOutcome, now: string): Promise<{ settled: boolean; step: StepRecord }>;
  getStep(releaseId: string, key: string): Promise<StepRecord | undefined>;
  getStepByCommand(commandId: string): Promise<StepRecord | undefined>;
  /** In key order. */
  listSteps(releaseId: string): Promise<StepRecord[]>;
  /** Host-command steps still running, oldest first: what the reconciling sweep checks. */
  listRunningCommandSteps(limit: number): Promise<StepRecord[]>;
}

/** What is live on each environment, and what its hosts keep for rollback. */
export interface EnvironmentLiveStore {
  getEnvironmentLive(app: string, environment: string): Promise<EnvironmentLive | undefined>;
  putEnvironmentLive(live: EnvironmentLive): Promise<void>;
}

/** Which artifacts were asked for (and verified), by app and sha256. */
export interface ArtifactRecordStore {
  /** Writes the record whole, replacing one with the same app and sha256. */
  putArtifactRecord(record: ArtifactRecord): Promise<void>;
  getArtifactRecord(app: string, sha256: string): Promise<ArtifactRecord | undefined>;
  /** In sha256 order. */
  listArtifactRecords(app: string): Promise<ArtifactRecord[]>;
  deleteArtifactRecord(app: string, sha256: string): Promise<void>;
}

/** What a host was last seen running: from a scan of the host, or from a switch or revert that ended on it. */
export interface HostRecord {
  app: string;
  environment: string;
  host: string;
  /** The release `current` points to; null when the host has none (or it points outside releases/). */
  current: { releaseId: string; version: string } | null;
  /** The release folders on the host, newest first, as last seen. */
  retained: string[];
  checkedAt: string;
  /** What told us: a scan reads the host; a switch or revert knows where it left `current`. */
  source: 'scan' | 'switch' | 'revert';
  /** Set when the last scan got no answer from the host: why. */
  unreachable?: string;
}

/** The last known state of each host of an environment. */
export interface HostInventoryStore {
  /** Writes each record whole, replacing the host's previous one. */
  putHostRecords(records: HostRecord[]): Promise<void>;
  /** In host order. */
  listHostRecords(app: string, environment: string): Promise<HostRecord[]>;
}

/**
 * One `Idempotency-Key` of one caller on one route (`key` is a digest of the three, never the raw
 * header). Powertools' idempotency is the model: claimed in progress by a conditional write,
 * completed with the answer to replay, deleted when the request failed so a retry runs again.
 */
export interface IdempotencyRecord {
  key: string;
  /** A digest of the request body: the same key with another body is a client bug, not a retry. */
  requestHash: string;
  status: 'in_progress' | 'completed';
  /** A claim still in progress after this (its handler died) may be taken over. */
  inProgressUntil: string;
  /** After this the record counts as absent (and the table's TTL may delete it). */
  expiresAt: string;
  response?: { status: number; body: unknown; location?: string };
}

export interface IdempotencyStore {
  /**
   * Claims the key in progress when no live record holds it (none, an expired one, or an abandoned
   * claim as of `now`); otherwise answers the record that holds it, unchanged.
   */
  claimIdempotencyKey(claim: Omit<IdempotencyRecord, 'status' | 'response'>, now: string): Promise<{ claimed: true } | { claimed: false; record: IdempotencyRecord }>;
  /** Stores the answer to replay; the record keeps its key and request hash. */
  completeIdempotencyKey(key: string, response: NonNullable<IdempotencyRecord['response']>, expiresAt: string): Promise<void>;
  /** Forgets a claim whose request failed, so a retry runs again. */
  releaseIdempotencyKey(key: string): Promise<void>;
}

/**
 * Everything the release table holds, as one object: what the runtimes wire. Each service and stage
 * declares the small ports above that it uses, so a test hands it only those.
 */
export type ReleaseStore = AppStore &
  ReleaseRecordStore &
  WholeReleaseStore &
  ReleasePurge &
  EventStore &
  LockStore &
  PlanStore &
  StepStore &
  EnvironmentLiveStore &
  ArtifactRecordStore &
  IdempotencyStore &
  HostInventoryStore;

/** A release waiting in line for an environment's lock, parked on its EnterEnvironment callback token. */
export interface QueueWaiter {
  app: string;
  environment: string;
  releaseId: string;
  /** Completing it lets the release in (never shown in a URL, a log line or an email). */
  taskToken: string;
  /** When it first joined the line. */
  since: string;
}

/**
 * `watch`: what follows a batch's switch (its bake, its timed pause), `pause`: a canary's pause
 * (its token waits for a person), `promote`: a person said go on (one batch, or `all` of them).
 */
export type StepKind = 'distribute' | 'switch' | 'revert' | 'prune' | 'bake' | 'approval' | 'watch' | 'pause' | 'promote';

export interface StepOutcome {
  status: 'succeeded' | 'failed';
  /** Passed to the waiting task on success, or its error and cause on failure. */
  output?: Record<string, unknown>;
  error?: string;
  cause?: string;
}

/**
 * One unit of work the workflow waits on: a host command, a bake, an approval. The record holds the
 * callback token of the task waiting on it (a secret: never logged, never shown) and its outcome,
 * which makes every stage idempotent: a retried or resumed task finds the step and does not redo it.
 */
export interface StepRecord extends Partial<StepOutcome> {
  releaseId: string;
  key: string;
  kind: StepKind;
  environment: string;
  batchIndex?: number;
  hosts: string[];
  commandId?: string;
  taskToken?: string;
  state: 'running' | 'succeeded' | 'failed';
  createdAt: string;
  updatedAt: string;
  /** For bakes and watches: when the bake ends. */
  until?: string;
  /** For watches with a timed pause, and timed pauses: when the pause ends by itself. */
  pauseUntil?: string;
  /** For pauses: the canary step it is (its index in the strategy's steps). */
  canaryStep?: number;
}

export interface StoredToken {
  /** Unique among live tokens: the principal's name, and the handle to list and revoke it by. */
  name: string;
  role: Role;
  createdAt: string;
  createdBy: string;
  /** Absent: the token does not expire. */
  expiresAt?: string;
  /** When the token last authenticated, to within a minute (see TOKEN_TOUCH_INTERVAL_MS). */
  lastUsedAt?: string;
  /** Set on revocation. The record stays so the same secret can never be stored again. */
  revokedAt?: string;
}

/**
 * Tokens are stored only as their hash; the store never sees a token itself. A token's name is
 * claimed before its hash is stored, so two live tokens never share a name.
 */
export interface TokenStore {
  /**
   * Claims `token.name` and stores the token under `hash`. Throws ConflictError when a live
   * token (or one being created right now) has the name. Storing the same hash and name again is a
   * no-op, so a retry is safe. With `replace`, a token holding the name is revoked and the name
   * passes to this one (the bootstrap admin token, when its secret changes).
   */
  createToken(hash: string, token: StoredToken, options?: { replace?: boolean }): Promise<void>;
  /** The record under `hash`, revoked or not; undefined if there is none. */
  getToken(hash: string): Promise<StoredToken | undefined>;
  /** Live (not revoked) tokens by name, expired ones included. */
  listTokens(): Promise<StoredToken[]>;
  /** Revokes the live token named `name` at once and frees the name; undefined if there is none. */
  revokeToken(name: string, at: string): Promise<StoredToken | undefined>;
  /** Sets `lastUsedAt` to `at` unless it is already at or after `notBefore`; revoked tokens stay as they are. */
  touchToken(hash: string, at: string, notBefore: string): Promise<void>;
}

export type AuditAction =
  'app.config_changed' |
  'token.created' |
  'token.revoked' |
  'approval.decided' |
  'release.cancelled' |
  'release.promoted' |
  'release.rollback_opened';

/** One line of the audit log: who changed what. Never holds a secret. */
export interface AuditEntry {
  /** Time-sortable (a ULID): newest first is descending id order. */
  id: string;
  at: string;
  /** The principal's name (an approver's email for a decision by link). */
  actor: string;
  action: AuditAction;
  /** What changed, as an API path without /v1: `apps/shop`, `tokens/ops`, `releases/<id>`. */
  subject: string;
  details: Record<string, unknown>;
}

export interface AuditStore {
  /** Stores the entry; an id stored before is left as it is. */
  append(entry: AuditEntry): Promise<void>;
  /** Newest first; `cursor` is the `nextCursor` of the page before. */
  list(query: { limit: number; cursor?: string }): Promise<Page<AuditEntry>>;
}

export interface StoredObject {
  size: number;
  etag: string;
}

export interface PresignedUpload {
  url: string;
  /** Headers the uploader must send with the PUT (they are part of the signature). */
  headers: Record<string, string>;
  expiresAt: string;
}

export interface ArtifactStore {
  presignUpload(
    key: string,
    sha256: string,
    size: number,
    expiresInSeconds: number,
  ): Promise<PresignedUpload>;
  /** A short-lived GET URL hosts use to fetch the artifact when they cannot read it themselves. */
  presignDownload(key: string, expiresInSeconds: number): Promise<string>;
  /**
   * Where a host may read the object with its own credentials (its instance role, `aws s3 cp`):
   * `s3://bucket/key` and the bucket's region for real S3; nothing for a store hosts cannot reach
   * that way (a local stand-in), whose hosts use the presigned URL alone.
   */
  locationOf?(key: string): Promise<{ s3Uri?: string; region?: string }>;
  head(key: string): Promise<StoredObject | undefined>;
  /**
   * The sha256 (hex) of the stored bytes when the store itself verified it on upload (S3's
   * full-object checksum); undefined when it keeps none (the local stand-in), and the bytes must be read.
   */
  storedSha256(key: string): Promise<string | undefined>;
  /** Removes the object, and its manifest; removing one that is not there is not an error. */
  delete(key: string): Promise<void>;
  /** The stored bytes, streamed (read once, never held whole). */
  read(key: string): Promise<AsyncIterable<Uint8Array>>;
  /** The file manifest recorded for the object at `key`, if one was. */
  getManifest(key: string): Promise<ArtifactManifest | undefined>;
  putManifest(key: string, manifest: ArtifactManifest): Promise<void>;
}

/**
 * Which state machine runs a release: release.asl.json, or rollback.asl.json for a record with
 * `rollback` set. Both name their executions by release id (ids are unique across both).
 */
export type ExecutionKind = 'release' | 'rollback';

export interface ReleaseExecutionInput {
  releaseId: string;
  app: string;
  /** Which state machine runs it; `release` when absent. */
  kind?: ExecutionKind;
}

/** Runs the release state machine: Step Functions on AWS, the local executor on one machine. */
export interface Workflow {
  /** Idempotent by release id: a retried start never runs two executions. */
  startRelease(input: ReleaseExecutionInput): Promise<{ executionId: string }>;
  /** Completes a waiting task. Throws StaleTaskTokenError when no task waits on the token. */
  sendTaskSuccess(taskToken: string, output: Record<string, unknown>): Promise<void>;
  sendTaskFailure(taskToken: string, error: string, cause: string): Promise<void>;
  /** Tells a waiting task its work is still going (host tasks fail after 10 minutes without one). */
  sendTaskHeartbeat(taskToken: string): Promise<void>;
  /**
   * Stops a release's execution outright: only for one that has not touched a host yet; no execution
   * is not an error. Pass `kind` from the record: without it each state machine is looked at in turn.
   */
  stopRelease(releaseId: string, cause: string, kind?: ExecutionKind): Promise<void>;
  /**
   * The execution behind a release and its history, oldest event first; undefined if none started.
   * Pass `kind` from the record: without it each state machine is looked at in turn.
   */
  releaseHistory(releaseId: string, kind?: ExecutionKind): Promise<ExecutionHistory | undefined>;
  /** Drops what the workflow keeps of an ended release's execution, where it keeps anything (locally). */
  forget?(releaseId: string): Promise<void>;
}

export interface ExecutionHistory {
  executionId: string;
  /** As Step Functions names them: RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE. */
  status: string;
  startedAt: string;
  stoppedAt?: string;
  events: WorkflowEvent[];
}

export interface WorkflowEvent {
  at: string;
  type: string;
  state?: string;
  /** The Map iteration, for states inside one. */
  index?: number;
  error?: string;
  cause?: string;
}

export type Targets = EnvironmentConfig['targets'];

export type InvocationStatus = 'success' | 'failed' | 'timed_out' | 'interrupted';

export interface HostInvocation {
  host: string;
  status: InvocationStatus;
  exitCode: number | null;
  stdout: string;
  stderr: string;
  startedAt: string;
  endedAt: string;
}

export interface HostCommand {
  /** Ours, not the fleet's: sending the same id twice runs the command once. */
  commandId: string;
  hosts: string[];
  script: HostScript;
  timeoutSeconds: number;
}

/** A host the targets name that cannot take a command now, and why (SSM's PingStatus, say). */
export interface UnreachableHost {
  host: string;
  reason: string;
}

export interface ResolvedTargets {
  /** The hosts that can take a command now, in a stable order. */
  hosts: string[];
  /** Hosts the targets name that cannot: planning them would only fail the release later. */
  unreachable: UnreachableHost[];
}

/**
 * The hosts: SSM Run Command on AWS, folders on one machine. When a command finishes on every host,
 * the fleet reports it through the command-status callback (an EventBridge event on AWS).
 */
export interface Fleet {
  resolveTargets(targets: Targets): Promise<ResolvedTargets>;
  send(command: HostCommand): Promise<void>;
  /**
   * `finished` once every host has an outcome, and then `invocations` holds every host. Until then
   * `invocations` holds some of the hosts that have one (a fleet may stop looking at the first part
   * of the command still running).
   */
  results(commandId: string): Promise<{ finished: boolean; invocations: HostInvocation[] }>;
  /**
   * What one host of a command has printed so far, from `from` (a position this method gave out;
   * undefined: the start). Optional: a fleet that cannot read output while a command runs leaves it
   * out, and a host's output is then what `results` recorded when the step ended.
   */
  readOutput?(commandId: string, host: string, from: string | undefined): Promise<HostOutputRead>;
  /** How often a live reader may call `readOutput` again (the fleet's own quotas); 250 ms when absent. */
  outputPollMs?: number;
}

/** One line a host printed, and the position just after it (where a later read resumes). */
export interface HostOutputLine {
  stream: 'stdout' | 'stderr';
  text: string;
  position: string;
}

export interface HostOutputRead {
  /** Whole lines only while the command runs; the last unterminated line too once it ended. */
  lines: HostOutputLine[];
  /** Where the next read starts: after the last line here, or `from` when there is none. */
  next: string;
  /**
   * True once the host's run is over and every line of it was read. A fleet that cannot tell (its
   * output arrives apart from the outcome) answers false, and the step's settling says it.
   */
  ended: boolean;
  /** Bytes skipped because the output grew past the kept limit (the start is cut, the end kept). */
  cutBytes?: number;
}

export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'timed_out' | 'cancelled';

/** The gate of one environment of one release. */
export interface ApprovalRequest {
  releaseId: string;
  environment: string;
  approvers: string[];
  required: number;
  allowSelfApproval: boolean;
  status: ApprovalStatus;
  requestedAt: string;
  expiresAt: string;
  decidedAt?: string;
}

/** One approver's personal link. Stored under the hash of its id: the id itself is the credential. */
export interface ApprovalLink {
  releaseId: string;
  environment: string;
  approver: string;
  expiresAt: string;
  usedAt?: string;
}

export interface ApprovalDecision {
  releaseId: string;
  environment: string;
  approver: string;
  decision: 'approve' | 'reject';
  reason: string;
  at: string;
  via: 'link' | 'api';
}

export interface ApprovalStore {
  /** Creates the request once; a second call returns the one stored first. */
  createRequest(request: ApprovalRequest): Promise<{ created: boolean; request: ApprovalRequest }>;
  getRequest(releaseId: string, environment: string): Promise<ApprovalRequest | undefined>;
  listRequests(releaseId: string): Promise<ApprovalRequest[]>;
  /** Pending requests whose expiry is at or before `now`, oldest first. */
  listDueRequests(now: string): Promise<ApprovalRequest[]>;
  /** Moves a pending request to its outcome; false if it was no longer pending. */
  settleRequest(releaseId: string, environment: string, status: Exclude<ApprovalStatus, 'pending'>, at: string): Promise<boolean>;

  putLink(idHash: string, link: ApprovalLink): Promise<void>;
  getLink(idHash: string): Promise<ApprovalLink | undefined>;
  /** Marks the link used if it is unused; false if it was used already. */
  useLink(idHash: string, at: string): Promise<boolean>;

  /** Records one approver's decision once; false if that approver had decided already. */
  recordDecision(decision: ApprovalDecision): Promise<boolean>;
  listDecisions(releaseId: string, environment: string): Promise<ApprovalDecision[]>;

  /**
   * Claims a one-time notification (a mail, a webhook call); false if it was claimed before, unless
   * that claim was given back with a retry time at or before `at` (then this claim takes its place).
   */
  claimNotification(key: string, at: string): Promise<boolean>;
  /**
   * Gives back the claim made at `claimedAt` because its notification could not go (SES refused the
   * mail, say): from `retryAt` on, the next claim wins and tries again. A newer claim is left alone.
   */
  deferNotification(key: string, claimedAt: string, retryAt: string): Promise<void>;
}

export interface Mail {
  to: string[];
  subject: string;
  text: string;
  html: string;
}

/** SES on AWS, an outbox of .eml files on one machine. */
export interface Mailer {
  send(mail: Mail): Promise<void>;
}

/** How one webhook delivery went, after its retries. Never carries the secret or a signature. */
export interface WebhookDelivery {
  ok: boolean;
  /** The `X-Slipway-Delivery` id, the same on every attempt. */
  deliveryId: string;
  attempts: number;
  /** The last answer's HTTP status; absent when none came (network error, timeout). */
  httpStatus?: number;
  /** Why the last attempt failed, when not ok. */
  error?: string;
}

/**
 * Signed JSON POSTs to an app's webhook, for chat tools and CI. Transient failures are retried; the
 * answer says how it went and is never thrown, so a failing webhook cannot fail a release.
 */
export interface Notifier {
  post(url: string, payload: Record<string, unknown>, deliveryId: string): Promise<WebhookDelivery>;
}

/** One HTTP probe of an analysis: the status the URL answered, or a throw when it could not be asked. */
export interface HttpProbe {
  get(url: string, timeoutSeconds: number): Promise<{ status: number }>;
}

export type AlarmState = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';

/**
 * The alarms an analysis watches (CloudWatch DescribeAlarms on AWS, a stand-in locally). Names it
 * does not know are left out of the answer.
 */
export interface AlarmMonitor {
  describe(names: string[]): Promise<{ name: string; state: AlarmState }[]>;
}
