import { randomUUID } from 'node:crypto';

/** A thin client of the Slipway HTTP API for the CLI. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ApiClient {
  request<T>(method: string, path: string, body?: unknown): Promise<T>;
}

export interface ApiClientOptions {
  /** Tries of one request before its error is the answer (default 5). */
  attempts?: number;
  /** Waits between tries; the default backs off from 250 ms to 2 s, or waits what Retry-After says (at most 5 s). */
  sleep?: (ms: number) => Promise<void>;
}

/** Routes whose writes take an Idempotency-Key: a retry of them is answered, never done twice. */
const IDEMPOTENT_WRITES = new Set(['POST /v1/releases']);
const MAX_RETRY_AFTER_MS = 5000;

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Tries again what cannot have been done twice: a read, or an open sent with its Idempotency-Key,
 * when the connection dropped (the server may be busy starting hundreds of host scripts); and any
 * request the API refused at capacity (503 overloaded: nothing was done). Another write whose
 * connection dropped may have happened, so it is not sent again: its error says so.
 */
export function createApiClient(baseUrl: string, token: string, options: ApiClientOptions = {}): ApiClient {
  const attempts = options.attempts ?? 5;
  const sleep = options.sleep ?? pause;
  return {
    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      const idempotent = IDEMPOTENT_WRITES.has(`${method} ${path}`);
      const safeToResend = method === 'GET' || idempotent;
      // One key for every try of this one request.
      const headers: Record<string, string> = {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(idempotent ? { 'idempotency-key': randomUUID() } : {}),
      };
      for (let attempt = 1; ; attempt++) {
        const backoff = Math.min(250 * 2 ** (attempt - 1), 2000);
        let response: Response;
        try {
          response = await fetch(new URL(path, baseUrl), {
            method,
            headers,
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          });
        } catch (error) {
          if (safeToResend && attempt < attempts) {
            await sleep(backoff);
            continue;
          }
          const tail = safeToResend ? ` (tried ${attempt} times)` : '; it may have been done: look before sending it again';
          throw new ApiError(0, 'unreachable', `cannot reach Slipway at ${baseUrl}: ${(error as Error).message}${tail}`, null);
        }
        const text = await response.text();
        let parsed: unknown;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = undefined;
        }
        if (!response.ok) {
          const error = (parsed as { error?: { code?: string; message?: string; details?: unknown } })?.error;
          const code = error?.code ?? 'http_error';
          const again = response.status === 503 || (idempotent && code === 'idempotency_in_progress');
          if (again && attempt < attempts) {
            const retryAfter = Number(response.headers.get('retry-after'));
            await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, MAX_RETRY_AFTER_MS) : backoff);
            continue;
          }
          throw new ApiError(
            response.status,
            code,
            error?.message ?? `HTTP ${response.status}: ${text.slice(0, 200)}`,
            error?.details ?? null,
          );
        }
        return parsed as T;
      }
    },
  };
}
