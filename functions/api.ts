import middy from '@middy/core';
import { loadAwsRuntime } from '@slipway/aws';
import type { HttpApi } from '@slipway/core';
import { dashboardAssets } from '@slipway/dashboard';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { Hono } from 'hono';
import { handle } from 'hono/aws-lambda';

/**
 * The HTTP API and the dashboard: API Gateway HTTP API v2 events in, structured results out, by
 * hono's Lambda adapter. The local dev server runs the same app on Node (@hono/node-server).
 */
export function createApiHandler(loadApi: () => Promise<HttpApi>) {
  // The runtime loads on the first request (secrets, clients), so the app is reached through it.
  const app = new Hono().all('*', async (c) => (await loadApi()).fetch(c.req.raw, c.env as object));
  const lambda = handle(app);
  // hono declares its own copy of the event types (body: string | null where aws-lambda says undefined).
  type HonoEvent = Parameters<typeof lambda>[0];
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>().handler(
    async (event, context) => (await lambda(event as unknown as HonoEvent, context)) as APIGatewayProxyStructuredResultV2,
  );
}

let runtime: Promise<HttpApi> | undefined;

// The dashboard's files are copied next to this bundle (infra/handlers.ts) and read on first request.
export const handler = createApiHandler(() => {
  runtime ??= loadAwsRuntime(process.env, { assets: dashboardAssets() }).then((slipway) => slipway.api);
  return runtime;
});
