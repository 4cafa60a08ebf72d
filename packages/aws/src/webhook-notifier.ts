import { createHmac } from 'node:crypto';
import { type Clock, ConfigurationError, type Notifier, systemClock, type WebhookDelivery } from '@slipway/core';

/**
 * Signed webhook deliveries. Each attempt carries:
 *
 * - `X-Slipway-Delivery`: the delivery's id, the same on every retry (receivers dedupe on it);
 * - `X-Slipway-Timestamp`: unix seconds of this attempt;
 * - `X-Slipway-Signature`: `sha256=` + hex HMAC-SHA256, keyed by the webhook secret, of the bytes
 *   `${timestamp}.${body}`: the timestamp header's value, a dot, then the exact raw request body.
 *
 * A network error, a timeout, an HTTP 429 or 5xx is retried after each of `retryDelaysMs` in turn;
 * any other answer is final (a 4xx will not change by asking again; redirects are not followed).
 */
export interface WebhookNotifierOptions {
  /** The HMAC key (`SLIPWAY_WEBHOOK_SECRET`); at least 32 characters. */
  secret: string;
  /** How long one attempt may take before it counts as failed. */
  timeoutMs?: number;
  /** The waits before the second, third, ... attempt: at most `retryDelaysMs.length + 1` attempts. */
  retryDelaysMs?: readonly number[];
  clock?: Clock;
  sleep?: (ms: number) => Promise<void>;
}

const defaults = {
  timeoutMs: 5000,
  retryDelaysMs: [1000, 2000, 4000],
  clock: systemClock,
  sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
} satisfies Omit<Required<WebhookNotifierOptions>, 'secret'>;

export const MIN_WEBHOOK_SECRET_LENGTH = 32;

/** `sha256=<hex>` over `${timestamp}.${body}`: what a receiver recomputes to trust a delivery. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

type Attempt = { ok: true; httpStatus: number } | { ok: false; retryable: boolean; httpStatus?: number; error: string };

export function createWebhookNotifier(options: WebhookNotifierOptions): Notifier {
  const config = { ...defaults, ...options };
  if (typeof config.secret !== 'string' || config.secret.length < MIN_WEBHOOK_SECRET_LENGTH) {
    throw new ConfigurationError(`the webhook secret must be at least ${MIN_WEBHOOK_SECRET_LENGTH} characters`);
  }
  if (!Number.isFinite(config.timeoutMs) || config.timeoutMs <= 0) throw new ConfigurationError('the webhook timeout must be a positive number of milliseconds');

  async function attempt(url: string, body: string, deliveryId: string): Promise<Attempt> {
    const timestamp = String(Math.floor(config.clock.now().getTime() / 1000));
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'slipway',
          'x-slipway-delivery': deliveryId,
          'x-slipway-timestamp': timestamp,
          'x-slipway-signature': signWebhook(config.secret, timestamp, body),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(config.timeoutMs),
      });
      // The answer's body is not ours to keep (nor to record); drop it so the socket is freed.
      await response.body?.cancel().catch(() => undefined);
      if (response.status >= 200 && response.status < 300) return { ok: true, httpStatus: response.status };
      const retryable = response.status === 429 || response.status >= 500;
      const redirect = response.status >= 300 && response.status < 400 ? ' (redirects are not followed)' : '';
      return { ok: false, retryable, httpStatus: response.status, error: `the webhook answered HTTP ${response.status}${redirect}` };
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      // fetch says only "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND, a TLS error) is its cause.
      const reason = error instanceof Error ? (error.cause instanceof Error ? error.cause : error).message : String(error);
      return {
        ok: false,
        retryable: true,
        error: timedOut ? `the webhook did not answer within ${config.timeoutMs} ms` : `the webhook could not be reached: ${reason}`,
      };
    }
  }

  return {
    async post(url, payload, deliveryId): Promise<WebhookDelivery> {
      // One body for every attempt: each attempt signs it afresh with its own timestamp.
      const body = JSON.stringify(payload);
      for (let attempts = 1; ; attempts++) {
        const outcome = await attempt(url, body, deliveryId);
        if (outcome.ok) return { ok: true, deliveryId, attempts, httpStatus: outcome.httpStatus };
        const delay = config.retryDelaysMs[attempts - 1];
        if (!outcome.retryable || delay === undefined) {
          return {
            ok: false,
            deliveryId,
            attempts,
            ...(outcome.httpStatus === undefined ? {} : { httpStatus: outcome.httpStatus }),
            error: outcome.error,
          };
        }
        await config.sleep(delay);
      }
    },
  };
}

/**
 * Stands in when no webhook secret is configured: nothing goes out unsigned. Each release whose app
 * has a webhook records `notification.webhook_failed` naming the variable to set.
 */
export function createUnsignedWebhookRefusal(variable: string): Notifier {
  return {
    async post(_url, _payload, deliveryId) {
      return { ok: false, deliveryId, attempts: 0, error: `webhooks are not sent unsigned: set ${variable} (at least ${MIN_WEBHOOK_SECRET_LENGTH} characters)` };
    },
  };
}
