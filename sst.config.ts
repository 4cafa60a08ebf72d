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
    const { table, bucket, commandOutputLogs } = await import('./infra/storage');
    const { secretParameterArns, secretParameterNames } = await import('./infra/secrets');
    const { email, sender } = await import('./infra/email');
    const { createFunctions } = await import('./infra/functions');
    const { createStateMachines } = await import('./infra/workflow');
    const { createEventRules } = await import('./infra/events');
    const { createHostPolicy } = await import('./infra/hosts');

    const identity = aws.getCallerIdentityOutput();
    const region = aws.getRegionOutput();
    // State machine ARNs are known by name before the machines exist, which breaks the cycle
    // functions -> machines -> functions.
    const machineArn = (name: string) =>
      $interpolate`arn:aws:states:${region.name}:${identity.accountId}:stateMachine:${$app.name}-${$app.stage}-${name}`;
    const releaseArn = machineArn('ReleaseStateMachine');
    const rollbackArn = machineArn('RollbackStateMachine');
    // Pulumi's `all` types at most eight outputs in a tuple: the secrets' ARNs come in a second one.
    const arns = $util.all([
      region.name,
      identity.accountId,
      table.arn,
      bucket.arn,
      releaseArn,
      rollbackArn,
      email.nodes.identity.arn,
      email.nodes.configurationSet.arn,
    ]);
    const refs = $util
      .all([arns, secretParameterArns, commandOutputLogs.arn])
      .apply(([stack, secretArns, logGroupArn]) => {
        const [regionName, account, tableArn, bucketArn, release, rollback, senderIdentity, senderConfigurationSet] = stack;
        return {
          region: regionName,
          account,
          tableArn,
          bucketArn,
          releaseStateMachineArn: release,
          rollbackStateMachineArn: rollback,
          senderIdentityArn: senderIdentity,
          senderConfigurationSetArn: senderConfigurationSet,
          secretParameterArns: secretArns,
          commandOutputLogGroupArn: logGroupArn,
        };
      });

    const api = new sst.aws.ApiGatewayV2('Api');
    // Shared by every function; no secret: each function gets the names of the SSM parameters it
    // may read (infra/handlers.ts FUNCTION_SECRETS), and reads the values itself.
    const environment = {
      SLIPWAY_TABLE: table.name,
      SLIPWAY_BUCKET: bucket.name,
      SLIPWAY_OUTPUT_LOG_GROUP: commandOutputLogs.name,
      SLIPWAY_RELEASE_STATE_MACHINE_ARN: releaseArn,
      SLIPWAY_ROLLBACK_STATE_MACHINE_ARN: rollbackArn,
      SLIPWAY_SENDER: sender,
      SLIPWAY_BASE_URL: api.url,
    };
    const functions = createFunctions(refs, environment, secretParameterNames);
    api.route('$default', functions.api.arn);
    const stageArns = $util.all(
      Object.fromEntries(Object.entries(functions.stages).map(([name, fn]) => [name, fn.arn])),
    ) as unknown as $util.Output<Record<string, string>>;
    const machines = createStateMachines(stageArns);
    createEventRules(functions.commandStatus, functions.executionFailed, functions.sweep, [machines.release.arn, machines.rollback.arn]);

    const hostPolicy = createHostPolicy(bucket.arn, commandOutputLogs.arn);

    return {
      api: api.url,
      table: table.name,
      bucket: bucket.name,
      releaseStateMachine: machines.release.arn,
      // Attach to the managed hosts' instance role, with AmazonSSMManagedInstanceCore.
      hostPolicy: hostPolicy.arn,
    };
  },
});
