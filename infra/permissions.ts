/**
 * Least privilege, as data: what each function may do, given the ARNs of what the stack creates.
 * A plain module (no SST globals) so a test can read every statement and refuse wildcards.
 */
import { STAGE_NAMES, STAGES, type StagePort } from '../packages/core/src/stage-table.ts';
import { FUNCTION_SECRETS, type SecretName } from './handlers.js';

export interface Statement {
  actions: string[];
  resources: string[];
  conditions?: { test: string; variable: string; values: string[] }[];
}

export interface StackRefs {
  region: string;
  account: string;
  tableArn: string;
  bucketArn: string;
  releaseStateMachineArn: string;
  rollbackStateMachineArn: string;
  senderIdentityArn: string;
  /** SST's Email attaches a configuration set to the identity: SendEmail must be granted on it too. */
  senderConfigurationSetArn: string;
  /** The SSM SecureString parameter of each secret (infra/secrets.ts). */
  secretParameterArns: Record<SecretName, string>;
  /** The log group hosts stream Run Command output to as it runs (`arn:aws:logs:...:log-group:<name>`). */
  commandOutputLogGroupArn: string;
}

/** Actions AWS only grants on "*" (no resource-level permissions); each is named here, none else may use "*". */
export const RESOURCE_WILDCARD_ONLY = new Set([
  'ssm:ListCommands',
  'ssm:ListCommandInvocations',
  'ssm:GetCommandInvocation',
  'ssm:DescribeInstanceInformation',
  'states:SendTaskSuccess',
  'states:SendTaskFailure',
  'states:SendTaskHeartbeat',
]);

/** Hosts must carry this tag to receive commands: SendCommand is limited to them. */
export const MANAGED_HOST_TAG = { key: 'SlipwayManaged', value: 'true' };

const table = (r: StackRefs): Statement => ({
  actions: [
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
    'dynamodb:DeleteItem',
    'dynamodb:Query',
    'dynamodb:BatchGetItem',
    'dynamodb:BatchWriteItem',
  ],
  resources: [r.tableArn, `${r.tableArn}/index/*`],
});
const taskCallbacks: Statement = { actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'], resources: ['*'] };
/** The sweep tells waiting host tasks their command still runs, so HeartbeatSeconds does not fire. */
const taskHeartbeats: Statement = { actions: ['states:SendTaskHeartbeat'], resources: ['*'] };
const readArtifacts = (r: StackRefs): Statement => ({ actions: ['s3:GetObject'], resources: [`${r.bucketArn}/artifacts/*`] });
const sendMail = (r: StackRefs): Statement => ({ actions: ['ses:SendEmail'], resources: [r.senderIdentityArn, r.senderConfigurationSetArn] });
/** An approval mail shows what the release changes: the file lists Prepare stored. */
const readFileLists = (r: StackRefs): Statement[] => [
  { actions: ['s3:GetObject'], resources: [`${r.bucketArn}/manifests/*`] },
  // A list not made (an artifact from before lists existed): without ListBucket, S3 answers 403 instead of 404.
  { actions: ['s3:ListBucket'], resources: [r.bucketArn] },
];
const commandResults: Statement = {
  actions: ['ssm:ListCommandInvocations', 'ssm:GetCommandInvocation', 'ssm:ListCommands', 'ssm:DescribeInstanceInformation'],
  resources: ['*'],
};
/** The full tail of a failed host's output, which SSM's own answers cut short, is read from S3. */
const readCommandOutput = (r: StackRefs): Statement[] => [
  { actions: ['s3:GetObject'], resources: [`${r.bucketArn}/command-output/*`] },
  // Without ListBucket, S3 answers a missing object (a host with no stderr) with 403, not 404.
  { actions: ['s3:ListBucket'], resources: [r.bucketArn] },
];
const sendCommands = (r: StackRefs): Statement[] => [
  {
    actions: ['ssm:SendCommand'],
    resources: [`arn:aws:ssm:${r.region}::document/AWS-RunShellScript`],
  },
  {
    // EC2 instances and SSM hybrid managed instances (mi-*, on-premises), each only with the tag.
    actions: ['ssm:SendCommand'],
    resources: [`arn:aws:ec2:${r.region}:${r.account}:instance/*`, `arn:aws:ssm:${r.region}:${r.account}:managed-instance/*`],
    conditions: [{ test: 'StringEquals', variable: `ssm:resourceTag/${MANAGED_HOST_TAG.key}`, values: [MANAGED_HOST_TAG.value] }],
  },
  { actions: ['s3:PutObject'], resources: [`${r.bucketArn}/command-output/*`] },
];
/**
 * Reading the secrets a function is granted (infra/handlers.ts FUNCTION_SECRETS), on exactly their
 * parameters. No kms:Decrypt: they are encrypted with the AWS managed key `aws/ssm`, whose key
 * policy lets every principal of the account decrypt through Parameter Store; who may read is
 * decided by ssm:GetParameter alone.
 */
const readSecrets = (r: StackRefs, fn: string): Statement[] => {
  const granted = FUNCTION_SECRETS[fn] ?? [];
  return granted.length === 0 ? [] : [{ actions: ['ssm:GetParameter'], resources: granted.map((secret) => r.secretParameterArns[secret]) }];
};
const executions = (r: StackRefs): string[] =>
  [r.releaseStateMachineArn, r.rollbackStateMachineArn].map((arn) => `${arn.replace(':stateMachine:', ':execution:')}:*`);

/**
 * What a managed host (its instance role) needs, besides AmazonSSMManagedInstanceCore: the
 * artifacts it downloads and the Run Command output it writes to the bucket.
 */
export function hostStatements(bucketArn: string, commandOutputLogGroupArn: string): Statement[] {
  const logGroup = /^arn:aws:logs:([^:]*):([^:]*):log-group:/.exec(commandOutputLogGroupArn);
  return [
    { actions: ['s3:GetObject'], resources: [`${bucketArn}/artifacts/*`] },
    { actions: ['s3:PutObject'], resources: [`${bucketArn}/command-output/*`] },
    // The SSM agent streams output as it runs (CloudWatchOutputConfig): it looks the group up, then
    // makes a stream per command, host and stream, and writes to it.
    { actions: ['logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents'], resources: [`${commandOutputLogGroupArn}:*`] },
    { actions: ['logs:DescribeLogGroups'], resources: [`arn:aws:logs:${logGroup?.[1] ?? '*'}:${logGroup?.[2] ?? '*'}:log-group:*`] },
  ];
}

/**
 * What each port a stage declares (core's stage table, `uses`) needs. The webhook secret of
 * `outcomeWebhooks` is granted through FUNCTION_SECRETS (infra/handlers.ts), like every secret.
 */
const portStatements = (r: StackRefs): Record<StagePort, Statement[]> => ({
  releaseStore: [table(r)],
  taskCallbacks: [taskCallbacks],
  mail: [sendMail(r), ...readFileLists(r)],
  outcomeWebhooks: [],
  hostInventory: [{ actions: ['ssm:DescribeInstanceInformation'], resources: ['*'] }],
  hostCommands: [...sendCommands(r), commandResults],
  artifactDownloads: [readArtifacts(r)],
  artifactManifests: [
    readArtifacts(r),
    { actions: ['s3:GetObject', 's3:PutObject'], resources: [`${r.bucketArn}/manifests/*`] },
    // A manifest not made yet: without ListBucket, S3 answers 403 instead of 404.
    { actions: ['s3:ListBucket'], resources: [r.bucketArn] },
  ],
  // Reading alarm states only; which alarms an environment watches is the app config's business.
  alarms: [{ actions: ['cloudwatch:DescribeAlarms'], resources: [`arn:aws:cloudwatch:${r.region}:${r.account}:alarm:*`] }],
});

/** Every function of the stack and the statements it gets. */
export function permissions(r: StackRefs): Record<string, Statement[]> {
  const byPort = portStatements(r);
  const stages = Object.fromEntries(STAGE_NAMES.map((name) => [name, STAGES[name].uses.flatMap((port) => byPort[port])]));
  const byFunction: Record<string, Statement[]> = {
    ...stages,
    Api: [
      table(r),
      taskCallbacks,
      { actions: ['s3:PutObject', 's3:GetObject'], resources: [`${r.bucketArn}/artifacts/*`] },
      // The diff reads the file lists Prepare stored; an open that had to read an artifact S3 keeps
      // no checksum of (uploaded without one) stores its file list from that same read.
      { actions: ['s3:GetObject', 's3:PutObject'], resources: [`${r.bucketArn}/manifests/*`] },
      // HeadObject of an artifact not uploaded yet: without ListBucket, S3 answers 403 instead of 404.
      { actions: ['s3:ListBucket'], resources: [r.bucketArn] },
      { actions: ['states:StartExecution'], resources: [r.releaseStateMachineArn, r.rollbackStateMachineArn] },
      // StopExecution: cancelling a release still pending stops its execution outright.
      { actions: ['states:DescribeExecution', 'states:GetExecutionHistory', 'states:StopExecution'], resources: executions(r) },
      // The host scan (POST .../hosts/scan) is a read-only command on the hosts, sent and read here.
      ...sendCommands(r),
      commandResults,
      ...readCommandOutput(r).filter((statement) => !statement.actions.includes('s3:ListBucket')),
      // Live host output: the streams SSM writes each host's output to as it runs.
      { actions: ['logs:GetLogEvents'], resources: [`${r.commandOutputLogGroupArn}:log-stream:*`] },
    ],
    CommandStatus: [table(r), taskCallbacks, commandResults, ...readCommandOutput(r), sendMail(r)],
    // Retention deletes artifacts nothing uses any more (the bucket keeps the old version for 30 days).
    // It also starts releases a crash left pending without an execution (StartExecution, DescribeExecution).
    Sweep: [
      table(r),
      taskCallbacks,
      taskHeartbeats,
      commandResults,
      ...readCommandOutput(r),
      sendMail(r),
      ...readFileLists(r),
      { actions: ['s3:DeleteObject'], resources: [`${r.bucketArn}/artifacts/*`, `${r.bucketArn}/manifests/*`] },
      { actions: ['states:StartExecution'], resources: [r.releaseStateMachineArn, r.rollbackStateMachineArn] },
      { actions: ['states:DescribeExecution', 'states:GetExecutionHistory'], resources: executions(r) },
    ],
    // It ends the release the way RecordFailure does (recordFailure), outside the state machine.
    ExecutionFailed: STAGES.RecordFailure.uses.flatMap((port) => byPort[port]),
  };
  return Object.fromEntries(Object.entries(byFunction).map(([fn, statements]) => [fn, [...statements, ...readSecrets(r, fn)]]));
}
