import { hostStatements } from './permissions';

/**
 * What each managed host's instance role needs beyond AmazonSSMManagedInstanceCore: read the
 * artifacts it is told to fetch, and write its command output where Slipway reads it. Output by the
 * stack as a managed policy to attach to the hosts' role (README: "Deploy to AWS with SST").
 */
export function createHostPolicy(bucketArn: $util.Output<string>) {
  return new aws.iam.Policy('HostPolicy', {
    description: 'Slipway managed hosts: read artifacts, write Run Command output',
    policy: bucketArn.apply((arn) =>
      JSON.stringify({
        Version: '2012-10-17',
        Statement: hostStatements(arn).map((statement) => ({ Effect: 'Allow', Action: statement.actions, Resource: statement.resources })),
      }),
    ),
  });
}
