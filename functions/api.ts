import middy from '@middy/core';
import { fromApiGatewayEvent, loadAwsRuntime, toApiGatewayResult } from '@slipway/aws';
import type { HttpApi } from '@slipway/core';
import { dashboardAssets } from '@slipway/dashboard';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

/**
 * The HTTP API and the dashboard: API Gateway HTTP API v2 events in, structured results out.
 * The local dev server calls this same handler with events it builds from Node requests.
 */
export function createApiHandler(loadApi: () => Promise<HttpApi>) {
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>().handler(async (event) => {
    const api = await loadApi();
    return toApiGatewayResult(await api.handle(fromApiGatewayEvent(event)));
  });
}

let runtime: Promise<HttpApi> | undefined;

// The dashboard's files are copied next to this bundle (infra/handlers.ts) and read on first request.
export const handler = createApiHandler(() => {
  runtime ??= loadAwsRuntime(process.env, { assets: dashboardAssets() }).then((slipway) => slipway.api);
  return runtime;
});
