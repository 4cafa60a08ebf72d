/// <reference path="./.sst/platform/config.d.ts" />

/**
 * The AWS stack. This file only composes `infra/*.ts`, one file per concern; the permissions each
 * function gets are data in infra/permissions.ts (and tested).
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
    const { signingKey, adminToken, webhookSecret } = await import('./infra/secrets');
    const { email, sender } = await import('./infra/email');
    const { createFunctions } = await import('./infra/functions');
    const { createStateMachines } = await import('./infra/workflow');
    const { createEventRules } = await import('./infra/events');

    const identity = aws.getCallerIdentityOutput();
    const region = aws.getRegionOutput();
    // State machine ARNs are known by name before the machines exist, which breaks the cycle
    // functions -> machines -> functions.
    const machineArn = (name: string) =>
      $interpolate`arn:aws:states:${region.name}:${identity.accountId}:stateMachine:${$app.name}-${$app.stage}-${name}`;
    const releaseArn = machineArn('ReleaseStateMachine');
    const rollbackArn = machineArn('RollbackStateMachine');
    const refs = $util
      .all([
        region.name,
        identity.accountId,
        table.arn,
        bucket.arn,
        releaseArn,
        rollbackArn,
        email.nodes.identity.arn,
        email.nodes.configurationSet.arn,
      ])
      .apply(([regionName, account, tableArn, bucketArn, release, rollback, senderIdentityArn, senderConfigurationSetArn]) => ({
        region: regionName,
        account,
        tableArn,
        bucketArn,
        releaseStateMachineArn: release,
        rollbackStateMachineArn: rollback,
        senderIdentityArn,
        senderConfigurationSetArn,
      }));

    const api = new sst.aws.ApiGatewayV2('Api');
    const environment = {
      SLIPWAY_TABLE: table.name,
      SLIPWAY_BUCKET: bucket.name,
      SLIPWAY_RELEASE_STATE_MACHINE_ARN: releaseArn,
      SLIPWAY_ROLLBACK_STATE_MACHINE_ARN: rollbackArn,
      SLIPWAY_SENDER: sender,
      SLIPWAY_BASE_URL: api.url,
      SLIPWAY_SIGNING_KEY: signingKey.value,
      SLIPWAY_ADMIN_TOKEN: adminToken.value,
      SLIPWAY_WEBHOOK_SECRET: webhookSecret.value,
    };
    const functions = createFunctions(refs, environment);
    api.route('$default', functions.api.arn);
    const stageArns = $util.all(
      Object.fromEntries(Object.entries(functions.stages).map(([name, fn]) => [name, fn.arn])),
    ) as unknown as $util.Output<Record<string, string>>;
    const machines = createStateMachines(stageArns);
    createEventRules(functions.commandStatus, functions.executionFailed, functions.sweep, [machines.release.arn, machines.rollback.arn]);

    return { api: api.url, table: table.name, bucket: bucket.name, releaseStateMachine: machines.release.arn };
  },
});
