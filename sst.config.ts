/// <reference path="./.sst/platform/config.d.ts" />

/**
 * The AWS stack. This file only composes `infra/*.ts`, one file per concern. The state machines,
 * stage functions, SES identity, EventBridge rule and least-privilege IAM arrive with the AWS issue;
 * until then the API function's cold start stops with a ConfigurationError naming
 * SLIPWAY_RELEASE_STATE_MACHINE_ARN, which is honest rather than half-working.
 */
export default $config({
  app(input) {
    return {
      name: 'slipway',
      removal: input?.stage === 'prod' ? 'retain' : 'remove',
      protect: input?.stage === 'prod',
      home: 'aws',
    };
  },
  async run() {
    const { table, bucket } = await import('./infra/storage');
    const { api } = await import('./infra/api');
    return { api: api.url, table: table.name, bucket: bucket.name };
  },
});
