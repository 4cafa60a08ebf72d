import { bucket, table } from './storage';

/** API Gateway HTTP API in front of the one API handler (functions/api.ts). */
export const api = new sst.aws.ApiGatewayV2('Api');

api.route('$default', {
  handler: 'functions/api.handler',
  runtime: 'nodejs22.x',
  architecture: 'arm64',
  link: [table, bucket],
  environment: {
    SLIPWAY_TABLE: table.name,
    SLIPWAY_BUCKET: bucket.name,
  },
});
