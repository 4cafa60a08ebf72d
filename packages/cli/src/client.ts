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

export function createApiClient(baseUrl: string, token: string): ApiClient {
  return {
    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      let response: Response;
      try {
        response = await fetch(new URL(path, baseUrl), {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      } catch (error) {
        throw new ApiError(
          0,
          'unreachable',
          `cannot reach Slipway at ${baseUrl}: ${(error as Error).message}`,
          null,
        );
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
        throw new ApiError(
          response.status,
          error?.code ?? 'http_error',
          error?.message ?? `HTTP ${response.status}: ${text.slice(0, 200)}`,
          error?.details ?? null,
        );
      }
      return parsed as T;
    },
  };
}
