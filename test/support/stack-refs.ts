import type { StackRefs } from '../../infra/permissions.ts';

/** The ARNs of a `prod` stage of the stack, as infra/ gets them at deploy: for tests of its IAM. */
export const STACK_REFS: StackRefs = {
  region: 'eu-west-1',
  account: '123456789012',
  tableArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/slipway-prod-Releases',
  bucketArn: 'arn:aws:s3:::slipway-prod-artifacts',
  releaseStateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:slipway-prod-ReleaseStateMachine',
  rollbackStateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:slipway-prod-RollbackStateMachine',
  senderIdentityArn: 'arn:aws:ses:eu-west-1:123456789012:identity/deploys@example.com',
  senderConfigurationSetArn: 'arn:aws:ses:eu-west-1:123456789012:configuration-set/sender',
  secretParameterArns: {
    SigningKey: 'arn:aws:ssm:eu-west-1:123456789012:parameter/slipway/prod/signing-key',
    AdminToken: 'arn:aws:ssm:eu-west-1:123456789012:parameter/slipway/prod/admin-token',
    WebhookSecret: 'arn:aws:ssm:eu-west-1:123456789012:parameter/slipway/prod/webhook-secret',
  },
  commandOutputLogGroupArn: 'arn:aws:logs:eu-west-1:123456789012:log-group:/slipway/slipway-prod/command-output',
};
