import { hostStatements } from './permissions';

/**
 * What each managed host's instance role needs beyond AmazonSSMManagedInstanceCore: read the
 * artifacts it is told to fetch, and write its command output where Slipway reads it (the bucket,
 * and the log group it streams to as a command runs). Output by the
 * stack as a managed policy to attach to the hosts' role (README: "Deploy to AWS with SST").
 */
export function createHostPolicy(bucketArn: $util.Output<string>, commandOutputLogGroupArn: $util.Output<string>) {
  return new aws.iam.Policy('HostPolicy', {
    description: 'Slipway managed hosts: read artifacts, write Run Command output',
    policy: $util.all([bucketArn, commandOutputLogGroupArn]).apply(([bucket, logGroup]) =>
      JSON.stringify({
        Version: '2012-10-17',
        Statement: hostStatements(bucket, logGroup).map((statement) => ({ Effect: 'Allow', Action: statement.actions, Resource: statement.resources })),
      }),
    ),
  });
}
