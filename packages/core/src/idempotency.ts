import { createHash } from 'node:crypto';
import { SlipwayError, UnprocessableError, ValidationError } from './errors.ts';
import type { Clock } from './ids.ts';
import type { IdempotencyRecord, IdempotencyStore } from './ports.ts';

/** The request header a client names a retried request with (IETF draft "The Idempotency-Key HTTP Header Field"). */
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
/** Printable ASCII without spaces, as a UUID or a ULID is; long enough for any client's scheme. */
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
/** How long an answer is replayed: a client retries within minutes, a day covers an outage. */
const REPLAY_SECONDS = 24 * 60 * 60;
/** How long a claim holds a key while its request runs: past the API's own 30 s limit. */
const IN_PROGRESS_SECONDS = 60;

/** A request with the same Idempotency-Key is still being handled: retry after it is over. */
export class IdempotencyInProgressError extends SlipwayError {
  readonly httpStatus = 409;
  readonly code = 'idempotency_in_progress';
  override readonly retryable = true;
}

/** The same Idempotency-Key came with another body: a new request needs a new key. */
export class IdempotencyKeyReusedError extends UnprocessableError {
  override readonly code = 'idempotency_key_reused';
}

export interface IdempotentAnswer {
  status: number;
  body: unknown;
  location?: string;
}

export interface IdempotencyDeps {
  store: IdempotencyStore;
  clock: Clock;
}

/**
 * Runs a request at most once per Idempotency-Key of a caller on a route, and answers a retry with
 * the first answer. Powertools' idempotency is the reference: a key is claimed in progress by a
 * conditional write; the answer is stored once it succeeds; a request that fails forgets its claim,
 * so a retry runs it again; a claim whose request died is free once its in-progress window is over.
 */
export function createIdempotency({ store, clock }: IdempotencyDeps) {
  return {
    async run(
      scope: { caller: string; route: string; key: string },
      body: string,
      handle: () => Promise<IdempotentAnswer>,
    ): Promise<IdempotentAnswer & { replayed: boolean }> {
      if (!KEY_PATTERN.test(scope.key)) {
        throw new ValidationError(`the ${IDEMPOTENCY_HEADER} header must be 1 to 255 printable ASCII characters without spaces, a UUID say`, [
          { field: `(header) ${IDEMPOTENCY_HEADER}`, message: 'is not 1 to 255 printable ASCII characters without spaces' },
        ]);
      }
      const digest = (...parts: string[]) => createHash('sha256').update(parts.join('\u0000')).digest('hex');
      const key = digest(scope.caller, scope.route, scope.key);
      const requestHash = digest(body);
      const now = clock.now();
      const later = (seconds: number) => new Date(now.getTime() + seconds * 1000).toISOString();
      const claim = await store.claimIdempotencyKey(
        { key, requestHash, inProgressUntil: later(IN_PROGRESS_SECONDS), expiresAt: later(REPLAY_SECONDS) },
        now.toISOString(),
      );
      if (!claim.claimed) return replay(claim.record, requestHash);
      let answer: IdempotentAnswer;
      try {
        answer = await handle();
      } catch (error) {
        await store.releaseIdempotencyKey(key);
        throw error;
      }
      const stored: IdempotencyRecord['response'] = {
        status: answer.status,
        body: answer.body ?? null,
        ...(answer.location ? { location: answer.location } : {}),
      };
      await store.completeIdempotencyKey(key, stored, later(REPLAY_SECONDS));
      return { ...answer, replayed: false };
    },
  };
}

function replay(record: IdempotencyRecord, requestHash: string): IdempotentAnswer & { replayed: boolean } {
  if (record.requestHash !== requestHash) {
    throw new IdempotencyKeyReusedError(
      `this ${IDEMPOTENCY_HEADER} was used with another request body; send a new key for a new request`,
    );
  }
  if (record.status !== 'completed' || !record.response) {
    throw new IdempotencyInProgressError(
      `a request with this ${IDEMPOTENCY_HEADER} is still being handled; retry in a few seconds for its answer`,
    );
  }
  return { ...record.response, replayed: true };
}

export type Idempotency = ReturnType<typeof createIdempotency>;
