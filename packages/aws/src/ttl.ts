import { withoutKeys } from './table.ts';

/**
 * Items that expire by themselves carry `ttl`: the table's TTL attribute (infra/storage.ts), in
 * epoch seconds. AWS deletes an item some time (usually within days) after that moment; the local
 * DynamoDB ignores it. Nothing may rely on the deletion happening, only on it being allowed: a
 * reader still checks `expiresAt` itself.
 *
 * How long each kind of item outlives its use, in days (an item not listed never expires):
 */
export const TTL_DAYS = {
  /** An API token with `expiresAt`, and its name claim: a week past its expiry. */
  tokenAfterExpiry: 7,
  /** An approval link: a month past its expiry, so a late click still gets "expired", not "unknown". */
  approvalLinkAfterExpiry: 30,
  /** A one-time notification claim: longer than any release waits for its outcome mail. */
  notificationClaim: 400,
  /**
   * A host command's SSM parts (`CMDPARTS#`), from when it was sent: the outcome is kept on the step
   * record, and no command runs for longer than a day, so these serve nobody after a month.
   */
  commandParts: 30,
  /** An Idempotency-Key's record, past its `expiresAt` (a day after the request): a day more. */
  idempotencyAfterExpiry: 1,
} as const;

const DAY_SECONDS = 86_400;

/** The `ttl` value for `plusDays` after the ISO time `iso`: whole epoch seconds. */
export function epochSeconds(iso: string, plusDays = 0): number {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new RangeError(`cannot compute a ttl from ${JSON.stringify(iso)}: not a date`);
  return Math.floor(ms / 1000) + plusDays * DAY_SECONDS;
}

/** The domain object of an item: without its key attributes and without `ttl`, which is storage's business. */
export function fromItem<T>(item: Record<string, unknown>): T {
  const { ttl: _ttl, ...rest } = withoutKeys<Record<string, unknown>>(item);
  return rest as T;
}
