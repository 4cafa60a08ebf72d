/**
 * EventBridge: SSM command status changes complete the waiting task; Step Functions executions that
 * fail outside their ASL still end their release. Plus the sweep every minute.
 */
export function createEventRules(
  commandStatus: sst.aws.Function,
  executionFailed: sst.aws.Function,
  sweep: sst.aws.Function,
  stateMachineArns: $util.Output<string>[],
) {
  const rule = (name: string, pattern: $util.Input<string>, target: sst.aws.Function) => {
    const eventRule = new aws.cloudwatch.EventRule(name, { eventPattern: pattern });
    new aws.cloudwatch.EventTarget(`${name}Target`, { rule: eventRule.name, arn: target.arn });
    new aws.lambda.Permission(`${name}Invoke`, {
      action: 'lambda:InvokeFunction',
      function: target.name,
      principal: 'events.amazonaws.com',
      sourceArn: eventRule.arn,
    });
  };
  rule(
    'CommandStatusRule',
    JSON.stringify({
      source: ['aws.ssm'],
      'detail-type': ['EC2 Command Status-change Notification'],
      // Only Slipway's kind of command: not every command anyone runs in the account.
      detail: { status: ['Success', 'Failed', 'Cancelled', 'TimedOut'], 'document-name': ['AWS-RunShellScript'] },
    }),
    commandStatus,
  );
  rule(
    'ExecutionFailedRule',
    $util.all(stateMachineArns).apply((arns) =>
      JSON.stringify({
        source: ['aws.states'],
        'detail-type': ['Step Functions Execution Status Change'],
        detail: { status: ['FAILED', 'TIMED_OUT', 'ABORTED'], stateMachineArn: arns },
      }),
    ),
    executionFailed,
  );
  new sst.aws.Cron('SweepSchedule', { schedule: 'rate(1 minute)', function: sweep.arn });
  // Retention (old release records, unused artifacts) needs no minute-by-minute care.
  new sst.aws.Cron('RetentionSchedule', { schedule: 'rate(6 hours)', function: sweep.arn, event: { retention: true } });
}
