import { IllegalTransitionError } from './errors.ts';
import type { AppConfig } from './schemas.ts';

export const RELEASE_STATUSES = [
  'pending',
  'distributing',
  'awaiting_approval',
  'switching',
  'paused',
  'succeeded',
  'failed',
  'rejected',
  'cancelled',
] as const;
export type ReleaseStatus = (typeof RELEASE_STATUSES)[number];

export const HOST_STATUSES = ['pending', 'distributed', 'switched', 'healthy', 'failed', 'reverted'] as const;
export type HostStatus = (typeof HOST_STATUSES)[number];

/**
 * The one table of legal moves. A release walks its environments in order, so after an
 * environment switches it may go back to distributing (or to an approval gate) for the next one.
 */
const RELEASE_TRANSITIONS: Record<ReleaseStatus, readonly ReleaseStatus[]> = {
  // A rollback has nothing to distribute: it goes from pending to its gate or straight to switching.
  pending: ['distributing', 'awaiting_approval', 'switching', 'failed', 'cancelled'],
  distributing: ['awaiting_approval', 'switching', 'failed', 'cancelled'],
  awaiting_approval: ['switching', 'rejected', 'failed', 'cancelled'],
  switching: ['distributing', 'awaiting_approval', 'paused', 'succeeded', 'failed', 'cancelled'],
  // A canary's pause between two batches: promoted (or its time up) it switches on; a cancel reverts.
  paused: ['switching', 'failed', 'cancelled'],
  succeeded: [],
  failed: [],
  rejected: [],
  cancelled: [],
};

const HOST_TRANSITIONS: Record<HostStatus, readonly HostStatus[]> = {
  pending: ['distributed', 'failed'],
  distributed: ['switched', 'failed'],
  switched: ['healthy', 'failed', 'reverted'],
  healthy: ['reverted'],
  failed: ['reverted'],
  reverted: [],
};

export function isTerminal(status: ReleaseStatus): boolean {
  return RELEASE_TRANSITIONS[status].length === 0;
}

export function canTransition(from: ReleaseStatus, to: ReleaseStatus): boolean {
  return RELEASE_TRANSITIONS[from].includes(to);
}

export function assertTransition(from: ReleaseStatus, to: ReleaseStatus): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to);
}

export function assertHostTransition(from: HostStatus, to: HostStatus): void {
  if (!HOST_TRANSITIONS[from].includes(to)) throw new IllegalTransitionError(from, to, 'host');
}

export interface ArtifactRef {
  key: string;
  sha256: string;
  size: number;
}

export interface Release {
  id: string;
  app: string;
  version: string;
  artifact: ArtifactRef;
  description: string;
  status: ReleaseStatus;
  /** The identity that opened it, as named by its API token. */
  openedBy: string;
  createdAt: string;
  updatedAt: string;
  /** The app config as it was when the release was opened: the release runs with exactly this. */
  config: AppConfig;
  /** Why it ended, when it did not succeed. */
  reason?: string;
  /** Set on a rollback: it switches one environment back to an earlier release already on its hosts. */
  rollback?: { environment: string; target: string; from: { id: string; version: string } };
}

export interface EnvironmentState {
  releaseId: string;
  app: string;
  environment: string;
  /** Position in the app's pipeline, from 0. */
  order: number;
  status: ReleaseStatus;
  startedAt?: string;
  endedAt?: string;
  /** Set when a failure here is being handled (its switched hosts are being put back): why. */
  failure?: string;
}

export interface HostStepOutput {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  startedAt: string;
  endedAt: string;
}

export interface HostState {
  releaseId: string;
  environment: string;
  host: string;
  status: HostStatus;
  updatedAt: string;
  steps: Record<string, HostStepOutput>;
}

/** A step's outcome on a host without what it printed (the host-output route reads that). */
export type HostStepSummary = Omit<HostStepOutput, 'stdout' | 'stderr'>;

/** A host as a release read shows it: its steps' outcomes, not their output. */
export interface HostSummary extends Omit<HostState, 'steps'> {
  steps: Record<string, HostStepSummary>;
}

/** Orders strings by code unit, as DynamoDB orders sort keys: the same on every runtime, whatever its locale. */
export const compareCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Orders by host name (compareCodeUnits). */
export const byHostName = (a: { host: string }, b: { host: string }) => compareCodeUnits(a.host, b.host);

/** The host without its steps' output; a step read without its text (a projection) comes out the same. */
export function hostSummaryOf(host: HostState): HostSummary {
  return {
    ...host,
    steps: Object.fromEntries(Object.entries(host.steps).map(([kind, { stdout: _out, stderr: _err, ...outcome }]) => [kind, outcome])),
  };
}

export interface ReleaseEvent {
  releaseId: string;
  /** Sortable: events come back in the order they happened. */
  id: string;
  at: string;
  type: string;
  actor: string;
  data?: Record<string, unknown>;
}

export interface EnvironmentLock {
  app: string;
  environment: string;
  holder: string;
  acquiredAt: string;
  leaseUntil: string;
}

/** What is live on an environment and what is kept on its hosts for rollback. */
export interface EnvironmentLive {
  app: string;
  environment: string;
  liveRelease?: { id: string; version: string; since: string };
  /** What was live before `liveRelease`: where a rollback goes back to unless told otherwise. */
  previousRelease?: { id: string; version: string };
  retained: { id: string; version: string }[];
}

/** The order an environment's status moves in; it never moves back, and an ended one never moves. */
const ENVIRONMENT_PROGRESS: Record<ReleaseStatus, number> = {
  pending: 0,
  distributing: 1,
  awaiting_approval: 2,
  switching: 3,
  // Between two batches of the switch: it moves back and forth with switching.
  paused: 3,
  succeeded: 4,
  failed: 4,
  rejected: 4,
  cancelled: 4,
};

export function environmentMayMove(from: ReleaseStatus, to: ReleaseStatus): boolean {
  if (from === to) return false;
  if (isTerminal(from)) return false;
  return ENVIRONMENT_PROGRESS[to] >= ENVIRONMENT_PROGRESS[from];
}
