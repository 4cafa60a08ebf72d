import type {
  EnvironmentLive,
  EnvironmentLock,
  EnvironmentState,
  HostState,
  Release,
  ReleaseEvent,
  ReleaseStatus,
} from './release.ts';
import type { AppConfig, Role } from './schemas.ts';

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
}

export interface ReleaseStore {
  /** Writes the config; with `expectedRevision`, fails with ConflictError if someone wrote first. */
  putApp(config: AppConfig, actor: string, now: string, expectedRevision?: number): Promise<StoredApp>;
  getApp(name: string): Promise<StoredApp | undefined>;
  listApps(): Promise<string[]>;

  /** Creates the release and its per-environment records; ConflictError if the id is taken. */
  createRelease(release: Release, environments: EnvironmentState[]): Promise<void>;
  getRelease(id: string): Promise<Release | undefined>;
  /** Moves the status only if it is still `from`; ConflictError otherwise. */
  updateReleaseStatus(
    id: string,
    from: ReleaseStatus,
    to: ReleaseStatus,
    now: string,
    reason?: string,
  ): Promise<Release>;
  listReleases(filter: ListReleasesFilter): Promise<Page<Release>>;

  getEnvironmentStates(releaseId: string): Promise<EnvironmentState[]>;
  putEnvironmentState(state: EnvironmentState): Promise<void>;
  putHostState(state: HostState): Promise<void>;
  getHostStates(releaseId: string): Promise<HostState[]>;

  appendEvent(event: ReleaseEvent): Promise<void>;
  listEvents(releaseId: string): Promise<ReleaseEvent[]>;

  /**
   * Takes the environment lock for `holder`, or renews it if `holder` already has it, or takes over
   * a lease that ran out. Throws EnvironmentLockedError naming the current holder otherwise.
   */
  acquireLock(lock: EnvironmentLock, now: string): Promise<void>;
  /** Frees the lock if `holder` has it; freeing a lock one does not hold changes nothing. */
  releaseLock(app: string, environment: string, holder: string): Promise<void>;
  getLock(app: string, environment: string): Promise<EnvironmentLock | undefined>;

  getEnvironmentLive(app: string, environment: string): Promise<EnvironmentLive | undefined>;
  putEnvironmentLive(live: EnvironmentLive): Promise<void>;

  putArtifactRecord(record: ArtifactRecord): Promise<void>;
  getArtifactRecord(app: string, sha256: string): Promise<ArtifactRecord | undefined>;
}

export interface StoredToken {
  name: string;
  role: Role;
  createdAt: string;
  createdBy: string;
}

/** Tokens are stored only as their hash; the store never sees a token itself. */
export interface TokenStore {
  putToken(hash: string, token: StoredToken, options?: { onlyIfAbsent?: boolean }): Promise<void>;
  getToken(hash: string): Promise<StoredToken | undefined>;
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
  head(key: string): Promise<StoredObject | undefined>;
  /** The sha256 (hex) of the stored bytes, computed or read from a checksum the store verified. */
  sha256Of(key: string): Promise<string>;
}

export interface ReleaseExecutionInput {
  releaseId: string;
  app: string;
}

/** Runs the release state machine: Step Functions on AWS, the local executor on one machine. */
export interface Workflow {
  /** Idempotent by release id: a retried start never runs two executions. */
  startRelease(input: ReleaseExecutionInput): Promise<{ executionId: string }>;
}
