import { PAGE_HEADERS } from './approval-pages.ts';
import type { ApprovalService } from './approvals.ts';
import type { AppService } from './apps.ts';
import type { AuditLog } from './audit.ts';
import type { ArtifactService } from './artifacts.ts';
import type { AuthService, Permission, Principal } from './auth.ts';
import {
  isSlipwayError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  ValidationError,
} from './errors.ts';
import type { Logger } from './logger.ts';
import type { ReleaseService } from './releases.ts';

/**
 * The HTTP API, independent of how requests arrive: the Lambda handler turns API Gateway v2 events
 * into HttpRequest, the local dev server turns Node requests into those same events. One router.
 */
export interface HttpRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** Lower-case names. */
  headers: Record<string, string>;
  body?: string;
  requestId: string;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export const MAX_BODY_BYTES = 1024 * 1024;

export interface ApiServices {
  auth: AuthService;
  apps: AppService;
  artifacts: ArtifactService;
  releases: ReleaseService;
  approvals: ApprovalService;
  audit: AuditLog;
  logger: Logger;
  /** The local outbox; absent on AWS, where mail goes out through SES. */
  outbox?: { list(): Promise<unknown[]> };
  /**
   * Static files of the dashboard, by path ("/" is the page): called only for a GET or HEAD, so a
   * file is read on the first request for it, never at start.
   */
  assets?: (path: string) => { contentType: string; body: string } | undefined;
}

const ASSET_HEADERS = {
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy':
    'default-src \'self\'; script-src \'self\'; style-src \'self\'; img-src \'self\' data:; connect-src \'self\'; frame-ancestors \'none\'; form-action \'self\'; base-uri \'none\'',
};

/** Pages behind an approval link: no API token (the link is the credential), HTML in and out. */
interface PageRoute {
  methods: string[];
  pattern: string;
  handle: (params: Record<string, string>, request: HttpRequest) => Promise<{ status: number; html: string }>;
}

function pageRoutes({ approvals }: ApiServices): PageRoute[] {
  return [
    {
      methods: ['GET', 'HEAD'],
      pattern: '/approvals/:approvalId',
      handle: (params, request) => approvals.view(params.approvalId!, request.method as 'GET' | 'HEAD'),
    },
    {
      methods: ['POST'],
      pattern: '/approvals/:approvalId',
      handle: async (params, request) => {
        if (Buffer.byteLength(request.body ?? '', 'utf8') > 16 * 1024) {
          return { status: 413, html: '<!doctype html><p>That form was too large; nothing was decided.</p>' };
        }
        const form: Record<string, string> = {};
        for (const [name, value] of new URLSearchParams(request.body ?? '')) form[name] = value;
        return approvals.decideByLink(params.approvalId!, form);
      },
    },
  ];
}

interface RouteContext {
  request: HttpRequest;
  params: Record<string, string>;
  query: Record<string, string>;
  principal: Principal;
  json: () => unknown;
}

interface Route {
  method: string;
  pattern: string;
  permission: Permission;
  /** A `body` of undefined sends none (204). */
  handle: (context: RouteContext) => Promise<{ status: number; body?: unknown; headers?: Record<string, string> }>;
}

function routes(services: ApiServices): Route[] {
  const { auth, apps, artifacts, releases, approvals, audit, outbox } = services;
  return [
    ...(outbox
      ? [
          {
            method: 'GET',
            pattern: '/v1/outbox',
            permission: 'outbox:read' as const,
            handle: async () => ({ status: 200, body: { items: await outbox.list() } }),
          },
        ]
      : []),
    {
      method: 'POST',
      pattern: '/v1/apps/:app/environments/:env/rollback',
      permission: 'releases:rollback',
      handle: async ({ params, request, principal }) => ({
        status: 202,
        body: await releases.rollback(params.app!, params.env!, (request.body ?? '').trim() ? parseJsonBody(request) : {}, principal),
      }),
    },
    {
      method: 'POST',
      pattern: '/v1/releases/:id/cancel',
      permission: 'releases:cancel',
      handle: async ({ params, principal }) => ({ status: 202, body: await releases.cancel(params.id!, principal) }),
    },
    {
      method: 'GET',
      pattern: '/v1/me',
      permission: 'read',
      handle: async ({ principal }) => ({ status: 200, body: principal }),
    },
    {
      method: 'POST',
      pattern: '/v1/releases/:id/approvals',
      permission: 'releases:approve',
      handle: async ({ params, json, principal }) => ({
        status: 200,
        body: await approvals.decideByApi(params.id!, json(), principal),
      }),
    },
    {
      method: 'GET',
      pattern: '/v1/apps',
      permission: 'read',
      handle: async () => ({ status: 200, body: { items: await apps.list() } }),
    },
    {
      method: 'PUT',
      pattern: '/v1/apps/:app',
      permission: 'apps:write',
      handle: async ({ params, json, principal }) => ({
        status: 200,
        body: await apps.put(params.app!, json(), principal),
      }),
    },
    {
      method: 'GET',
      pattern: '/v1/apps/:app',
      permission: 'read',
      handle: async ({ params }) => ({ status: 200, body: await apps.view(params.app!) }),
    },
    {
      method: 'POST',
      pattern: '/v1/artifacts',
      permission: 'artifacts:write',
      handle: async ({ json, principal }) => ({
        status: 201,
        body: await artifacts.requestUpload(json(), principal),
      }),
    },
    {
      method: 'POST',
      pattern: '/v1/releases',
      permission: 'releases:open',
      handle: async ({ json, principal }) => ({ status: 202, body: await releases.open(json(), principal) }),
    },
    {
      method: 'GET',
      pattern: '/v1/releases',
      permission: 'read',
      handle: async ({ query }) => ({ status: 200, body: await releases.list(query) }),
    },
    {
      method: 'GET',
      pattern: '/v1/releases/:id',
      permission: 'read',
      handle: async ({ params }) => ({ status: 200, body: await releases.view(params.id!) }),
    },
    {
      method: 'GET',
      pattern: '/v1/releases/:id/history',
      permission: 'read',
      handle: async ({ params }) => ({ status: 200, body: await releases.history(params.id!) }),
    },
    {
      method: 'POST',
      pattern: '/v1/tokens',
      permission: 'tokens:write',
      handle: async ({ json, principal }) => {
        const created = await auth.createToken(json(), principal);
        return { status: 201, body: created, headers: { location: `/v1/tokens/${encodeURIComponent(created.name)}` } };
      },
    },
    {
      method: 'GET',
      pattern: '/v1/tokens',
      permission: 'tokens:read',
      handle: async () => ({ status: 200, body: await auth.listTokens() }),
    },
    {
      method: 'DELETE',
      pattern: '/v1/tokens/:name',
      permission: 'tokens:write',
      handle: async ({ params, principal }) => {
        await auth.revokeToken(params.name!, principal);
        return { status: 204 };
      },
    },
    {
      method: 'GET',
      pattern: '/v1/audit',
      permission: 'audit:read',
      handle: async ({ query }) => ({ status: 200, body: await audit.list(query) }),
    },
  ];
}

function match(pattern: string, path: string): Record<string, string> | undefined {
  const want = pattern.split('/');
  const have = path.split('/');
  if (want.length !== have.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const segment = want[i]!;
    if (segment.startsWith(':')) {
      let value: string;
      try {
        value = decodeURIComponent(have[i]!);
      } catch {
        return undefined;
      }
      params[segment.slice(1)] = value;
    } else if (segment !== have[i]) {
      return undefined;
    }
  }
  return params;
}

function parseJsonBody(request: HttpRequest): unknown {
  const body = request.body ?? '';
  if (body.trim() === '') {
    throw new ValidationError('the request needs a JSON body', [{ field: '(body)', message: 'is empty' }]);
  }
  const contentType = request.headers['content-type'] ?? 'application/json';
  if (!/^application\/json\b/i.test(contentType)) {
    throw new UnsupportedMediaTypeError(`send the body as application/json, not ${contentType}`);
  }
  try {
    return JSON.parse(body);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ValidationError(`the body is not valid JSON: ${reason}`, [
      { field: '(body)', message: reason },
    ]);
  }
}

const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

function jsonResponse(status: number, body: unknown, requestId: string, headers: Record<string, string> = {}): HttpResponse {
  if (body === undefined) {
    return { status, headers: { 'cache-control': 'no-store', ...headers, 'x-request-id': requestId }, body: '' };
  }
  return {
    status,
    headers: { ...JSON_HEADERS, ...headers, 'x-request-id': requestId },
    body: JSON.stringify(body),
  };
}

export function createHttpApi(services: ApiServices) {
  const table = routes(services);
  const pages = pageRoutes(services);
  const { auth, logger } = services;

  async function dispatch(request: HttpRequest): Promise<{ response: HttpResponse; principal?: Principal }> {
    const { method, path, requestId } = request;
    if (path === '/healthz' && method === 'GET') {
      return { response: jsonResponse(200, { ok: true }, requestId) };
    }
    const asset = method === 'GET' || method === 'HEAD' ? services.assets?.(path) : undefined;
    if (asset) {
      return {
        response: {
          status: 200,
          headers: { ...ASSET_HEADERS, 'content-type': asset.contentType, 'x-request-id': requestId },
          body: method === 'HEAD' ? '' : asset.body,
        },
      };
    }
    for (const route of pages) {
      const params = match(route.pattern, path);
      if (!params || !route.methods.includes(method)) continue;
      const { status, html } = await route.handle(params, request);
      return {
        response: {
          status,
          headers: { ...PAGE_HEADERS, 'x-request-id': requestId },
          body: method === 'HEAD' ? '' : html,
        },
      };
    }
    const candidates = table
      .map((route) => ({ route, params: match(route.pattern, path) }))
      .filter((c) => c.params !== undefined);
    if (candidates.length === 0)
      throw new NotFoundError(`no route ${method} ${path}; see the API reference in README.md`);
    const found = candidates.find((c) => c.route.method === method);
    if (!found) {
      const allowed = candidates.map((c) => c.route.method).join(', ');
      throw new MethodNotAllowedError(`${path} takes ${allowed}, not ${method}`);
    }
    if (Buffer.byteLength(request.body ?? '', 'utf8') > MAX_BODY_BYTES) {
      throw new PayloadTooLargeError(`request bodies may be at most ${MAX_BODY_BYTES} bytes (1 MiB)`);
    }
    const principal = await auth.authenticate(request.headers.authorization);
    auth.authorize(principal, found.route.permission);
    const result = await found.route.handle({
      request,
      params: found.params!,
      query: request.query,
      principal,
      json: () => parseJsonBody(request),
    });
    return { response: jsonResponse(result.status, result.body, requestId, result.headers), principal };
  }

  return {
    async handle(request: HttpRequest): Promise<HttpResponse> {
      const started = Date.now();
      let response: HttpResponse;
      let principal: Principal | undefined;
      try {
        ({ response, principal } = await dispatch(request));
      } catch (error) {
        if (isSlipwayError(error)) {
          const body = {
            error: { code: error.code, message: error.message, details: error.details ?? null },
          };
          response = jsonResponse(error.httpStatus, body, request.requestId);
          if (error.httpStatus >= 500)
            logger.error('request failed', { requestId: request.requestId, error });
        } else {
          logger.error('unexpected error', { requestId: request.requestId, error });
          response = jsonResponse(
            500,
            {
              error: {
                code: 'internal',
                message: `internal error; quote request id ${request.requestId} to the operators`,
                details: null,
              },
            },
            request.requestId,
          );
        }
      }
      logger.info('request', {
        requestId: request.requestId,
        method: request.method,
        path: request.path,
        status: response.status,
        principal: principal?.name,
        ms: Date.now() - started,
      });
      return response;
    },
  };
}
export type HttpApi = ReturnType<typeof createHttpApi>;
