import { randomUUID } from 'node:crypto';
import { type ApiServices, createHttpApi, createLogger, MAX_BODY_BYTES, type Principal, UnauthorizedError } from '@slipway/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createApiHandler } from '../../functions/api.ts';

/**
 * The API as Lambda runs it: API Gateway HTTP API (payload 2.0) events through functions/api.ts and
 * hono's Lambda adapter. The services are stand-ins; the subject is what reaches them and what goes back.
 */

const TOKEN = 'slw_lambda-test-token-0000000000';
const admin: Principal = { name: 'admin', role: 'admin' };
const received: unknown[] = [];

const services = {
  auth: {
    authenticate: async (header: string | undefined) => {
      if (header !== `Bearer ${TOKEN}`) throw new UnauthorizedError('unknown or expired token; ask an admin for a valid one');
      return admin;
    },
    authorize: () => {},
    createToken: async (body: { name: string; role: string }) => {
      received.push(body);
      return { ...body, token: 'slw_secret', createdAt: '2026-01-01T00:00:00.000Z' };
    },
  },
  audit: { list: async (query: unknown) => ({ items: [query] }) },
  logger: createLogger({ service: 'lambda-test', level: 'error', write: () => {} }),
  assets: (path: string) =>
    path === '/' ? { contentType: 'text/html; charset=utf-8', body: '<!doctype html><title>Slipway</title>' } : undefined,
} as unknown as ApiServices;

const handler = createApiHandler(async () => createHttpApi(services));
const context = { awsRequestId: 'lambda-test', getRemainingTimeInMillis: () => 30_000 } as unknown as Context;

interface EventOptions {
  query?: string;
  headers?: Record<string, string>;
  body?: string;
  base64?: boolean;
}

function event(method: string, path: string, options: EventOptions = {}) {
  const requestId = randomUUID();
  const body = options.body === undefined ? undefined : options.base64 ? Buffer.from(options.body).toString('base64') : options.body;
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: options.query ?? '',
    headers: { host: 'abc123.execute-api.eu-west-1.amazonaws.com', authorization: `Bearer ${TOKEN}`, ...options.headers },
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'lambda-test' },
      requestId,
      routeKey: '$default',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    ...(body === undefined ? {} : { body }),
    isBase64Encoded: options.base64 ?? false,
  } satisfies APIGatewayProxyEventV2;
}

type Result = APIGatewayProxyStructuredResultV2 & { headers: Record<string, string> };
const invoke = async (request: APIGatewayProxyEventV2) => (await handler(request, context)) as Result;

describe('the API on Lambda', () => {
  it('answers with API Gateway\'s request id and plain-text JSON', async () => {
    const request = event('GET', '/healthz');
    const result = await invoke(request);
    expect(result).toMatchObject({ statusCode: 200, body: '{"ok":true}', isBase64Encoded: false });
    expect(result.headers).toMatchObject({
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'x-request-id': request.requestContext.requestId,
    });
  });

  it('decodes a base64 body and answers 201 with a Location', async () => {
    const result = await invoke(
      event('POST', '/v1/tokens', { body: '{"name":"ci@example.com","role":"deployer"}', base64: true, headers: { 'content-type': 'application/json' } }),
    );
    expect(result.statusCode).toBe(201);
    expect(result.headers.location).toBe('/v1/tokens/ci%40example.com');
    expect(received.at(-1)).toEqual({ name: 'ci@example.com', role: 'deployer' });
  });

  it('refuses a body over 1 MiB before authenticating, and an unknown token', async () => {
    const huge = await invoke(event('POST', '/v1/tokens', { body: 'x'.repeat(MAX_BODY_BYTES + 1), headers: { 'content-type': 'application/json', authorization: 'Bearer nope' } }));
    expect(huge.statusCode).toBe(413);
    expect(JSON.parse(huge.body!).error.code).toBe('payload_too_large');
    const stranger = await invoke(event('GET', '/v1/audit', { headers: { authorization: 'Bearer slw_unknown-token-000000000000' } }));
    expect(stranger.statusCode).toBe(401);
    expect(JSON.parse(stranger.body!).error.message).toMatch(/^unknown or expired token/);
  });

  it('joins a repeated query parameter as API Gateway does, and validates it', async () => {
    const result = await invoke(event('GET', '/v1/audit', { query: 'limit=5&limit=6' }));
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body!).error.details.map((d: { field: string }) => d.field)).toEqual(['limit']);
    const ok = await invoke(event('GET', '/v1/audit', { query: 'limit=5' }));
    expect(JSON.parse(ok.body!)).toEqual({ items: [{ limit: '5' }] });
  });

  it('serves the dashboard to GET and HEAD, with its security headers', async () => {
    const page = await invoke(event('GET', '/'));
    expect(page).toMatchObject({ statusCode: 200, body: '<!doctype html><title>Slipway</title>', isBase64Encoded: false });
    expect(page.headers).toMatchObject({ 'content-type': 'text/html; charset=utf-8', 'x-frame-options': 'DENY', 'cache-control': 'no-cache' });
    const head = await invoke(event('HEAD', '/'));
    expect(head).toMatchObject({ statusCode: 200, body: '' });
    expect(head.headers['content-type']).toBe('text/html; charset=utf-8');
  });
});
