import { type ApiServices, createHttpApi, createLogger, type Principal } from '@slipway/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createApiHandler } from '../../functions/api.ts';

/**
 * API Gateway HTTP APIs hand back an answer only once the function returned, so on Lambda the
 * routes that can stream answer JSON even when asked for text/event-stream; the dashboard then
 * polls and the CLI long-polls. The services are stand-ins: the subject is what the adapter answers.
 */
const admin: Principal = { name: 'admin', role: 'admin' };
const RELEASE = '01aaaaaaaaaaaaaaaaaaaaaaa1';

function services(eventStreams: boolean | undefined): ApiServices {
  return {
    auth: { authenticate: async () => admin, authorize: () => {} },
    logger: createLogger({ service: 'sse-test', level: 'error', write: () => {} }),
    listEvents: async () => [{ id: 'e1', type: 'release.opened', at: 't', actor: 'admin' }],
    releaseFeed: {
      async* events() {
        yield { event: 'end', id: '0', data: { id: RELEASE, status: 'succeeded' } };
      },
    },
    ...(eventStreams === undefined ? {} : { eventStreams }),
  } as unknown as ApiServices;
}

const context = { awsRequestId: 'sse-test', getRemainingTimeInMillis: () => 30_000 } as unknown as Context;

function event(path: string): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { host: 'abc123.execute-api.eu-west-1.amazonaws.com', authorization: 'Bearer slw_x', accept: 'text/event-stream' },
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: { method: 'GET', path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'sse-test' },
      requestId: 'r-1',
      routeKey: '$default',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    isBase64Encoded: false,
  };
}

const invoke = async (eventStreams: boolean | undefined) =>
  (await createApiHandler(async () => createHttpApi(services(eventStreams)))(event(`/v1/releases/${RELEASE}/events`), context)) as
  APIGatewayProxyStructuredResultV2 & { headers: Record<string, string> };

describe('event streams behind API Gateway', () => {
  it('answers JSON on Lambda even when asked for a stream', async () => {
    const result = await invoke(false);
    expect(result.statusCode).toBe(200);
    expect(result.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(String(result.body))).toEqual({ items: [{ id: 'e1', type: 'release.opened', at: 't', actor: 'admin' }] });
  });

  it('streams where answers are not buffered (the dev server)', async () => {
    const result = await invoke(undefined);
    expect(result.headers['content-type']).toBe('text/event-stream');
    const body = result.isBase64Encoded ? Buffer.from(String(result.body), 'base64').toString('utf8') : String(result.body);
    expect(body).toContain('event: end');
  });
});
