import { randomUUID } from 'node:crypto';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { streamSSE } from 'hono/streaming';
import { PAGE_HEADERS } from '../approval-pages.ts';
import type { Principal } from '../auth.ts';
import { IDEMPOTENCY_HEADER } from '../idempotency.ts';
import {
  isSlipwayError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../errors.ts';
import { parse } from '../schemas.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { apiRoutes, type ApiServices, type StreamEvent } from './routes.ts';

/** A comment line this often keeps proxies from closing a quiet stream. */
const SSE_KEEPALIVE_MS = 15_000;

const wantsEventStream = (c: Context) => /\btext\/event-stream\b/i.test(c.req.header('accept') ?? '');

export const MAX_BODY_BYTES = 1024 * 1024;
/**
 * Requests handled at once before more are refused with 503. An open costs tens of milliseconds of
 * the event loop here (issue 18): a deeper queue only turns into answers that come too late, or
 * never, for requests whose work went on anyway.
 */
export const DEFAULT_MAX_IN_FLIGHT_REQUESTS = 32;
/** What a refused request is told to wait before it tries again, in seconds. */
export const OVERLOAD_RETRY_AFTER_SECONDS = 1;
/** The approval page's form holds a decision and a short reason: anything bigger is not ours. */
export const MAX_FORM_BYTES = 16 * 1024;

/**
 * The HTTP API as one web-standard `fetch`: `hono/aws-lambda` runs it on Lambda (functions/api.ts),
 * `@hono/node-server` in the local dev server.
 */
export interface HttpApi {
  fetch(request: Request, env?: object): Response | Promise<Response>;
  /** Every method and path the router serves, in OpenAPI form (`{id}`); HEAD goes with GET. */
  routes(): { method: string; path: string }[];
}

interface AppEnv {
  /** On Lambda, what `hono/aws-lambda` hands over; on Node, the node-server's own bindings. */
  Bindings: { requestContext?: { requestId?: string } } | undefined;
  Variables: { requestId: string; principal?: Principal; body: string };
}

const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

const ASSET_HEADERS = {
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy':
    'default-src \'self\'; script-src \'self\'; style-src \'self\'; img-src \'self\' data:; connect-src \'self\'; frame-ancestors \'none\'; form-action \'self\'; base-uri \'none\'',
};

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  if (body === undefined) return new Response(null, { status, headers: { 'cache-control': 'no-store', ...headers } });
  return new Response(JSON.stringify(body), { status, headers: { ...JSON_HEADERS, ...headers } });
}

/** Hono's `:name` from OpenAPI's `{name}`. */
const honoPath = (path: string) => path.replace(/\{(\w+)\}/g, ':$1');

/** Query values as API Gateway hands them over: a repeated name's values joined by commas. */
function queryOf(c: Context): Record<string, string> {
  const query: Record<string, string> = {};
  for (const [name, values] of Object.entries(c.req.queries())) query[name] = values.join(',');
  return query;
}

/**
 * Reads the body once, answering `refuse()` past `maxBytes` without reading the rest. (hono's
 * bodyLimit rebuilds the Request, which fails for the node-server's own Request class when the
 * process's globals are left alone.)
 */
function readBody(maxBytes: number, refuse: () => Response): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (Number(c.req.header('content-length') ?? 0) > maxBytes) return refuse();
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = c.req.raw.body?.getReader();
    for (let read = await reader?.read(); reader && read && !read.done; read = await reader.read()) {
      size += read.value.byteLength;
      if (size > maxBytes) {
        // Released, not cancelled: cancelling would close the socket the answer goes out on.
        reader.releaseLock();
        return refuse();
      }
      chunks.push(read.value);
    }
    c.set('body', Buffer.concat(chunks).toString('utf8'));
    await next();
  };
}

const limitBody = readBody(MAX_BODY_BYTES, () => {
  throw new PayloadTooLargeError(`request bodies may be at most ${MAX_BODY_BYTES} bytes (1 MiB)`);
});
const limitForm = readBody(
  MAX_FORM_BYTES,
  () => new Response('<!doctype html><p>That form was too large; nothing was decided.</p>', { status: 413, headers: PAGE_HEADERS }),
);

async function jsonBody(c: Context<AppEnv>, optional: boolean): Promise<unknown> {
  const text = c.get('body');
  if (text.trim() === '') {
    if (optional) return {};
    throw new ValidationError('the request needs a JSON body', [{ field: '(body)', message: 'is empty' }]);
  }
  const contentType = c.req.header('content-type') ?? 'application/json';
  if (!/^application\/json\b/i.test(contentType)) {
    throw new UnsupportedMediaTypeError(`send the body as application/json, not ${contentType}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ValidationError(`the body is not valid JSON: ${reason}`, [{ field: '(body)', message: reason }]);
  }
}

export function createHttpApi(services: ApiServices): HttpApi {
  const { auth, logger } = services;
  const routes = apiRoutes(services);
  const app = new Hono<AppEnv>();

  const errorResponse = (error: unknown, c: Context<AppEnv>): Response => {
    const requestId = c.get('requestId');
    if (isSlipwayError(error)) {
      if (error.httpStatus >= 500) logger.error('request failed', { requestId, error });
      return json(error.httpStatus, { error: { code: error.code, message: error.message, details: error.details ?? null } });
    }
    logger.error('unexpected error', { requestId, error });
    return json(500, {
      error: { code: 'internal', message: `internal error; quote request id ${requestId} to the operators`, details: null },
    });
  };

  app.use(async (c, next) => {
    const started = Date.now();
    const requestId = c.env?.requestContext?.requestId ?? randomUUID();
    c.set('requestId', requestId);
    await next();
    c.res.headers.set('x-request-id', requestId);
    logger.info('request', {
      requestId,
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      principal: c.get('principal')?.name,
      ms: Date.now() - started,
    });
  });
  app.onError(errorResponse);

  // Load shedding: beyond capacity, an immediate 503 that nothing was done, never a late timeout.
  const maxInFlight = services.maxInFlightRequests ?? DEFAULT_MAX_IN_FLIGHT_REQUESTS;
  let inFlight = 0;
  app.use(async (c, next) => {
    if (c.req.path === '/healthz') return next();
    if (inFlight >= maxInFlight) {
      logger.warn('request refused: the API is at capacity', { requestId: c.get('requestId'), inFlight, maxInFlight });
      return json(
        503,
        {
          error: {
            code: 'overloaded',
            message: `the API is handling ${maxInFlight} requests already; nothing was done, try again in ${OVERLOAD_RETRY_AFTER_SECONDS} s`,
            details: null,
          },
        },
        { 'retry-after': String(OVERLOAD_RETRY_AFTER_SECONDS) },
      );
    }
    inFlight += 1;
    try {
      await next();
    } finally {
      inFlight -= 1;
    }
  });
  app.notFound((c) =>
    errorResponse(new NotFoundError(`no route ${c.req.method} ${c.req.path}; see the API reference at /openapi.json`), c),
  );

  app.get('/healthz', () => json(200, { ok: true }));
  let document: object | undefined;
  app.get('/openapi.json', () => {
    document ??= buildOpenApiDocument(routes);
    return new Response(JSON.stringify(document), { headers: { ...JSON_HEADERS, 'cache-control': 'no-cache' } });
  });

  const { assets } = services;
  if (assets) {
    // Hono routes HEAD as GET and drops the body: one lookup serves both.
    app.use(async (c, next) => {
      const asset = c.req.method === 'GET' || c.req.method === 'HEAD' ? assets(c.req.path) : undefined;
      if (!asset) return next();
      return new Response(asset.body, { headers: { ...ASSET_HEADERS, 'content-type': asset.contentType } });
    });
  }

  // The pages behind an approval link: no API token (the link is the credential), HTML in and out.
  app.get('/approvals/:approvalId', async (c) => {
    const { status, html } = await services.approvals.view(c.req.param('approvalId'), c.req.method as 'GET' | 'HEAD');
    return new Response(html, { status, headers: PAGE_HEADERS });
  });
  app.post('/approvals/:approvalId', limitForm, async (c) => {
    const form: Record<string, string> = {};
    for (const [name, value] of new URLSearchParams(c.get('body'))) form[name] = value;
    const { status, html } = await services.approvals.decideByLink(c.req.param('approvalId'), form);
    return new Response(html, { status, headers: PAGE_HEADERS });
  });

  const methodsByPath = new Map<string, string[]>();
  for (const route of routes) methodsByPath.set(route.path, [...(methodsByPath.get(route.path) ?? []), route.method]);
  const notAllowed = (path: string) => (c: Context<AppEnv>) => {
    throw new MethodNotAllowedError(`${c.req.path} takes ${methodsByPath.get(path)!.join(', ')}, not ${c.req.method}`);
  };

  for (const route of routes) {
    const refuseHead = notAllowed(route.path);
    const authenticate: MiddlewareHandler<AppEnv> = async (c, next) => {
      // Hono answers HEAD with the GET route; the JSON API has no HEAD.
      if (c.req.method === 'HEAD') refuseHead(c);
      const principal = await auth.authenticate(c.req.header('authorization'));
      c.set('principal', principal);
      auth.authorize(principal, route.permission);
      await next();
    };
    app.on(route.method, honoPath(route.path), limitBody, authenticate, async (c) => {
      const principal = c.get('principal')!;
      const params = route.params ? parse(route.params, c.req.param(), 'path parameter') : {};
      const query = queryOf(c);
      if (route.query) parse(route.query.schema, query, route.query.what);
      let body: unknown;
      if (route.body) {
        body = await jsonBody(c, route.body.optional ?? false);
        parse(route.body.schema, body, route.body.what);
      }
      if (route.events && services.eventStreams !== false && wantsEventStream(c)) {
        const controller = new AbortController();
        c.req.raw.signal?.addEventListener('abort', () => controller.abort(), { once: true });
        const events = route.events({
          params: params as Record<string, string>,
          query,
          body,
          principal,
          lastEventId: c.req.header('last-event-id'),
          signal: controller.signal,
        })[Symbol.asyncIterator]();
        // The first event is awaited here: a release that does not exist is a 404, not a stream.
        const first = await events.next();
        return streamSSE(c, async (stream) => {
          stream.onAbort(() => controller.abort());
          const keepalive = setInterval(() => void stream.write(': keepalive\n\n').catch(() => controller.abort()), SSE_KEEPALIVE_MS);
          const send = (event: StreamEvent) =>
            stream.writeSSE({ event: event.event, data: JSON.stringify(event.data), ...(event.id !== undefined ? { id: event.id } : {}) });
          try {
            for (let next = first; !next.done && !controller.signal.aborted; next = await events.next()) await send(next.value);
          } catch (error) {
            // The answer has begun (200): what went wrong is one last event, and the log.
            logger.error('event stream failed', { requestId: c.get('requestId'), error });
            await stream.writeSSE({ event: 'error', data: JSON.stringify({ message: 'the stream failed; reconnect with Last-Event-ID' }) });
          } finally {
            clearInterval(keepalive);
            controller.abort();
            await events.return?.(undefined);
          }
        });
      }
      const run = async () => {
        const result = await route.handle({ params: params as Record<string, string>, query, body, principal });
        return { status: route.success.status, body: result.body, ...(result.location ? { location: result.location } : {}) };
      };
      const key = route.idempotent && services.idempotency ? c.req.header(IDEMPOTENCY_HEADER) : undefined;
      const answer =
        key === undefined
          ? { ...(await run()), replayed: false }
          : await services.idempotency!.run({ caller: principal.name, route: route.operationId, key }, c.get('body'), run);
      const headers: Record<string, string> = answer.location ? { location: answer.location } : {};
      if (answer.replayed) headers['idempotent-replayed'] = 'true';
      return json(answer.status, answer.body ?? undefined, headers);
    });
  }
  // After every route: a known path with another method.
  for (const path of methodsByPath.keys()) app.all(honoPath(path), notAllowed(path));

  return {
    fetch: (request, env) => app.fetch(request, env as AppEnv['Bindings']),
    // Read back from the router itself (one entry per handler, so one route shows several times).
    routes: () =>
      [...new Set(app.routes.filter((route) => route.method !== 'ALL').map(({ method, path }) => `${method} ${path}`))].map((key) => {
        const [method, path] = key.split(' ') as [string, string];
        return { method, path: path.replace(/:(\w+)/g, '{$1}') };
      }),
  };
}
