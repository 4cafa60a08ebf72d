/**
 * Every failure Slipway reports on purpose is a SlipwayError. Its `name` is the contract with the
 * state machine's Retry/Catch `ErrorEquals`, its `httpStatus` the contract with API callers.
 * Anything else is a bug: logged in full and answered as an opaque 500.
 */
export interface FieldProblem {
  field: string;
  message: string;
}

interface SlipwayErrorOptions {
  cause?: unknown;
  details?: unknown;
}

export abstract class SlipwayError extends Error {
  abstract readonly httpStatus: number;
  /** Short machine-readable code for API clients, e.g. `not_found`. */
  abstract readonly code: string;
  /** Whether the same call may succeed if tried again unchanged. */
  readonly retryable: boolean = false;
  readonly details: unknown;

  constructor(message: string, options: SlipwayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.details = options.details;
  }
}

export class ValidationError extends SlipwayError {
  readonly httpStatus = 400;
  readonly code = 'invalid_request';
  declare readonly details: FieldProblem[];

  constructor(message: string, problems: FieldProblem[], options: { cause?: unknown } = {}) {
    super(message, { ...options, details: problems });
  }
}

export class UnauthorizedError extends SlipwayError {
  readonly httpStatus = 401;
  readonly code = 'unauthorized';
}

export class ForbiddenError extends SlipwayError {
  readonly httpStatus = 403;
  readonly code = 'forbidden';
}

export class NotFoundError extends SlipwayError {
  readonly httpStatus = 404;
  readonly code = 'not_found';
}

export class MethodNotAllowedError extends SlipwayError {
  readonly httpStatus = 405;
  readonly code = 'method_not_allowed';
}

/** Someone else changed the record first; re-read and decide again. */
export class ConflictError extends SlipwayError {
  readonly httpStatus = 409;
  readonly code = 'conflict';
}

export class EnvironmentLockedError extends SlipwayError {
  readonly httpStatus = 409;
  readonly code = 'environment_locked';

  constructor(
    readonly app: string,
    readonly environment: string,
    readonly holder: string,
    readonly leaseUntil: string,
  ) {
    super(
      `environment ${environment} of app ${app} is locked by release ${holder} (lease until ${leaseUntil}); ` +
      'wait for it to finish, cancel it, or set "queue": true in the app config to wait in line',
      { details: { app, environment, holder, leaseUntil } },
    );
  }
}

export class IllegalTransitionError extends SlipwayError {
  readonly httpStatus = 409;
  readonly code = 'illegal_transition';

  constructor(
    readonly from: string,
    readonly to: string,
    subject = 'release',
  ) {
    super(`a ${subject} in status ${from} cannot move to ${to}`, { details: { from, to } });
  }
}

export class PayloadTooLargeError extends SlipwayError {
  readonly httpStatus = 413;
  readonly code = 'payload_too_large';
}

export class UnsupportedMediaTypeError extends SlipwayError {
  readonly httpStatus = 415;
  readonly code = 'unsupported_media_type';
}

/** Well-formed, but not allowed in the current state of things. */
export class UnprocessableError extends SlipwayError {
  readonly httpStatus = 422;
  readonly code: string = 'unprocessable';
}

export class ArtifactMissingError extends UnprocessableError {
  override readonly code = 'artifact_missing';
}

export class ArtifactMismatchError extends UnprocessableError {
  override readonly code = 'artifact_mismatch';
}

/** The artifact could make a host write outside its release folder (containment.ts): it never becomes one. */
export class UnsafeArtifactError extends UnprocessableError {
  override readonly code = 'unsafe_artifact';
}

/** The environment is locked and the app queues: wait and try again (the workflow retries this). */
export class EnvironmentBusyError extends SlipwayError {
  readonly httpStatus = 409;
  readonly code = 'environment_busy';
  override readonly retryable = true;
}

/** One or more hosts failed a command; the message names them and quotes their output. */
export class HostCommandFailedError extends SlipwayError {
  readonly httpStatus = 500;
  readonly code = 'host_command_failed';
}

/** The release already ended (failed, cancelled, ...): the workflow stops doing work for it. */
export class ReleaseEndedError extends SlipwayError {
  readonly httpStatus = 409;
  readonly code = 'release_ended';
}

/** A callback token that no task waits on any more (completed, timed out, or from before a restart). */
export class StaleTaskTokenError extends SlipwayError {
  readonly httpStatus = 410;
  readonly code = 'stale_task_token';
}

/** An approver said no: the gate ends and the release is rejected. */
export class ApprovalRejectedError extends SlipwayError {
  readonly httpStatus = 409;
  readonly code = 'approval_rejected';
}

/** Nobody decided before the approval's timeout. */
export class ApprovalTimedOutError extends SlipwayError {
  readonly httpStatus = 409;
  readonly code = 'approval_timed_out';
}

/**
 * The analysis of a switched environment failed (its failures reached the limit, or it could not run
 * at the start): the switched hosts go back. The message is the release's reason.
 */
export class AnalysisFailedError extends SlipwayError {
  readonly httpStatus = 409;
  readonly code = 'analysis_failed';
}

/** A dependency (store, object storage) failed in a way that may pass. */
export class DependencyUnavailableError extends SlipwayError {
  readonly httpStatus = 503;
  readonly code = 'unavailable';
  override readonly retryable = true;
}

/** Configuration is read once at the edge; this names what to fix before anything starts. */
export class ConfigurationError extends SlipwayError {
  readonly httpStatus = 500;
  readonly code = 'configuration';
}

/**
 * The error names the state machine may match on, with whether a Retry is worthwhile.
 * ASL files take their `ErrorEquals` from this list (checked by a test).
 */
export const ERROR_NAMES = {
  ValidationError: { retryable: false },
  NotFoundError: { retryable: false },
  ConflictError: { retryable: true },
  EnvironmentLockedError: { retryable: false },
  EnvironmentBusyError: { retryable: true },
  HostCommandFailedError: { retryable: false },
  ReleaseEndedError: { retryable: false },
  ApprovalRejectedError: { retryable: false },
  ApprovalTimedOutError: { retryable: false },
  AnalysisFailedError: { retryable: false },
  IllegalTransitionError: { retryable: false },
  ArtifactMissingError: { retryable: false },
  ArtifactMismatchError: { retryable: false },
  DependencyUnavailableError: { retryable: true },
  ConfigurationError: { retryable: false },
} as const satisfies Record<string, { retryable: boolean }>;

export type SlipwayErrorName = keyof typeof ERROR_NAMES;

export function isSlipwayError(error: unknown): error is SlipwayError {
  return error instanceof SlipwayError;
}
