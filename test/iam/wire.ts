import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import {
  type AttributedCall,
  createCallAttribution,
  createCloudWatchAlarmMonitor,
  createDocumentClient,
  createS3Client,
  createSsmFleet,
  createStepFunctionsWorkflow,
  recordCalls,
} from '@slipway/aws';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '@slipway/local';
import type { StackRefs } from '../../infra/permissions.ts';
import { localDynamo, localS3 } from '../support/stand-ins.ts';
import { startWireFake, type WireReply, type WireRequest } from '../support/wire-fake.ts';
import { PORT_CALLERS } from './callers.ts';

/** The table the SSM fleet keeps its command parts in, here: the test maps it to the stack's table. */
export const WIRE_TABLE = 'slipway-wire';

const notFound = (what: string): WireReply => ({ status: 400, body: { __type: what, message: 'not found' }, errorType: what });

/** Step Functions as the JSON protocol answers; the execution `r-rollback` exists only on the rollback machine. */
const stepFunctions = (refs: StackRefs) => ({ target, body }: WireRequest): WireReply => {
  const operation = target.replace('AWSStepFunctions.', '');
  const releaseExecutions = refs.releaseStateMachineArn.replace(':stateMachine:', ':execution:');
  if (body?.executionArn === `${releaseExecutions}:r-rollback`) return notFound('ExecutionDoesNotExist');
  switch (operation) {
    case 'StartExecution':
      return { body: { executionArn: `${String(body.stateMachineArn).replace(':stateMachine:', ':execution:')}:${body.name}`, startDate: 1 } };
    case 'DescribeExecution':
      return { body: { executionArn: body.executionArn, status: 'SUCCEEDED', startDate: 1, stopDate: 2 } };
    case 'GetExecutionHistory':
      return { body: { events: [{ id: 1, type: 'ExecutionStarted', timestamp: 1 }] } };
    case 'StopExecution':
      return { body: { stopDate: 2 } };
    default:
      return { body: {} };
  }
};

/**
 * SSM Run Command as the JSON protocol answers. Every instance is online; of each command the first
 * host succeeds and any other fails (so its whole output is read from the bucket). A SendCommand whose
 * Comment names `c-lost` is carried out but its answer lost (a 500), as after a crash.
 */
function systemsManager(outputBucket: string) {
  const sent: { CommandId: string; Comment: string; InstanceIds: string[] }[] = [];
  const ourId = (ssmCommandId: string) => sent.find((c) => c.CommandId === ssmCommandId)?.Comment.split(' ')[1];
  return ({ target, body }: WireRequest): WireReply => {
    switch (target.replace('AmazonSSM.', '')) {
      case 'SendCommand': {
        const command = { CommandId: `ssm-${sent.length + 1}`, Comment: body.Comment, InstanceIds: body.InstanceIds };
        sent.push(command);
        if (String(body.Comment).includes(' c-lost ')) return { status: 500, body: { __type: 'InternalServerError', message: 'lost' }, errorType: 'InternalServerError' };
        return { body: { Command: command } };
      }
      case 'ListCommands':
        return { body: { Commands: sent } };
      case 'ListCommandInvocations': {
        const hosts = sent.find((c) => c.CommandId === body.CommandId)?.InstanceIds ?? [];
        const url = (host: string, stream: string) =>
          `https://s3.eu-west-1.amazonaws.com/${outputBucket}/command-output/${ourId(body.CommandId)}/${body.CommandId}/${host}/awsrunShellScript/0.awsrunShellScript/${stream}`;
        return {
          body: {
            CommandInvocations: hosts.map((host, index) => ({
              CommandId: body.CommandId,
              InstanceId: host,
              Status: index === 0 ? 'Success' : 'Failed',
              CommandPlugins: [
                {
                  Name: 'aws:runShellScript',
                  ResponseCode: index === 0 ? 0 : 23,
                  Output: 'the start of the output',
                  OutputS3BucketName: outputBucket,
                  StandardOutputUrl: url(host, 'stdout'),
                  StandardErrorUrl: url(host, 'stderr'),
                },
              ],
            })),
          },
        };
      }
      case 'GetCommandInvocation':
        return { body: { CommandId: body.CommandId, InstanceId: body.InstanceId, Status: 'Failed', ResponseCode: 23, StandardOutputContent: 'out' } };
      case 'DescribeInstanceInformation': {
        const filter = (body.Filters ?? []).find((f: { Key: string }) => f.Key === 'InstanceIds');
        const ids: string[] = filter?.Values ?? ['i-0a1b2c3d4e5f60718', 'mi-0123456789abcdef0'];
        return { body: { InstanceInformationList: ids.map((InstanceId) => ({ InstanceId, PingStatus: 'Online' })) } };
      }
      // CloudWatch Logs, on the same fake: a host's stream with one line in it.
      case 'Logs_20140328.GetLogEvents':
        return { body: { events: [{ timestamp: 1, message: 'a line\n', ingestionTime: 1 }], nextForwardToken: body.nextToken ?? 'f/1' } };
      default:
        return notFound('UnknownOperation');
    }
  };
}

/**
 * Every method of the Workflow and Fleet ports, run once (or once per path that sends something
 * else) through the real AWS adapters against the wire fake, with the call recorder on their
 * clients; then each recorded call is handed to every function PORT_CALLERS names for its method.
 * The SSM fleet's own DynamoDB calls (its command parts) come along the same way.
 */
export async function recordPortCalls(refs: StackRefs): Promise<AttributedCall[]> {
  const byMethod: AttributedCall[] = [];
  const recorder = createCallAttribution((call) => byMethod.push(call));
  const sfnFake = await startWireFake(stepFunctions(refs), 'application/x-amz-json-1.0');
  const outputBucket = refs.bucketArn.replace('arn:aws:s3:::', '');
  const ssmFake = await startWireFake(systemsManager(outputBucket));
  const dynamo = await localDynamo(WIRE_TABLE);
  // The bucket hosts write command output to: a failed host's stdout is there, its (empty) stderr is not.
  const output = await localS3(outputBucket);
  const cloudwatchFake = await startWireFake(
    ({ body }) => ({ body: { MetricAlarms: (body.AlarmNames as string[]).map((AlarmName) => ({ AlarmName, StateValue: 'OK' })), CompositeAlarms: [] } }),
    'application/x-amz-json-1.0',
  );
  const cloudwatch = new CloudWatchClient(cloudwatchFake.clientOptions(1));
  recordCalls(cloudwatch, recorder.recordCall);
  const sfn = new SFNClient(sfnFake.clientOptions(1));
  const ssm = new SSMClient(ssmFake.clientOptions(1));
  const logs = new CloudWatchLogsClient(ssmFake.clientOptions(1));
  recordCalls(sfn, recorder.recordCall);
  recordCalls(ssm, recorder.recordCall);
  recordCalls(logs, recorder.recordCall);
  const outputLogGroup = refs.commandOutputLogGroupArn.replace(/^arn:aws:logs:[^:]*:[^:]*:log-group:/, '');
  const connection = {
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    endpoints: { dynamodb: dynamo.endpoint, s3: output.endpoint },
    recordCall: recorder.recordCall,
  };
  const documents = createDocumentClient(connection);
  const objects = createS3Client(connection);
  try {
    const workflow = createStepFunctionsWorkflow(sfn, refs.releaseStateMachineArn, refs.rollbackStateMachineArn);
    const fleet = createSsmFleet({ ssm, documents, tableName: WIRE_TABLE, outputBucket, s3: objects, logs, outputLogGroup });
    const run = (method: string, work: () => Promise<unknown>) => recorder.within(method, work);

    await run('workflow.startRelease', async () => {
      await workflow.startRelease({ releaseId: 'r-release', app: 'shop' });
      await workflow.startRelease({ releaseId: 'r-rollback', app: 'shop', kind: 'rollback' });
    });
    await run('workflow.releaseHistory', async () => {
      await workflow.releaseHistory('r-release', 'release');
      // A record that does not say its kind: the release machine first, then the rollback machine.
      await workflow.releaseHistory('r-rollback');
    });
    await run('workflow.stopRelease', async () => {
      await workflow.stopRelease('r-release', 'cancelled by admin', 'release');
      await workflow.stopRelease('r-rollback', 'cancelled by admin');
    });
    await run('workflow.sendTaskSuccess', () => workflow.sendTaskSuccess('token-1', { hosts: 2 }));
    await run('workflow.sendTaskFailure', () => workflow.sendTaskFailure('token-2', 'HostCommandFailedError', 'the switch failed'));
    await run('workflow.sendTaskHeartbeat', () => workflow.sendTaskHeartbeat('token-3'));
    await run('fleet.resolveTargets', async () => {
      await fleet.resolveTargets({ tags: { Role: 'web' } });
      await fleet.resolveTargets({ hosts: ['i-0a1b2c3d4e5f60718', 'mi-0123456789abcdef0'] });
    });
    // An EC2 instance and an SSM hybrid managed instance (on premises).
    const hosts = ['i-0a1b2c3d4e5f60718', 'mi-0123456789abcdef0'];
    const script = { kind: 'prune', deployRoot: '/srv/shop', releaseId: 'r-release', keepReleases: 3, protect: [] } as const;
    await run('fleet.send', async () => {
      await fleet.send({ commandId: 'c-1', hosts, script, timeoutSeconds: 600 });
      // Sent, but the answer lost: the retry finds it by its Comment instead of sending it again.
      await fleet.send({ commandId: 'c-lost', hosts, script, timeoutSeconds: 600 }).catch(() => undefined);
      await fleet.send({ commandId: 'c-lost', hosts, script, timeoutSeconds: 600 });
    });
    await output.client.send(
      new PutObjectCommand({ Bucket: outputBucket, Key: 'command-output/c-1/ssm-1/mi-0123456789abcdef0/awsrunShellScript/0.awsrunShellScript/stdout', Body: 'all of it' }),
    );
    await run('alarms.describe', () => createCloudWatchAlarmMonitor(cloudwatch).describe(['shop/5xx', 'shop-latency']));
    await run('fleet.readOutput', async () => {
      await fleet.readOutput!('c-1', 'i-0a1b2c3d4e5f60718', undefined);
    });
    await run('fleet.results', async () => {
      await fleet.results('c-1');
      // Wired without the bucket (or when reading it fails), a failed host's output comes from SSM.
      await createSsmFleet({ ssm, documents, tableName: WIRE_TABLE, outputBucket }).results('c-1');
    });
  } finally {
    sfn.destroy();
    ssm.destroy();
    cloudwatch.destroy();
    logs.destroy();
    documents.destroy();
    objects.destroy();
    await Promise.all([sfnFake.close(), ssmFake.close(), cloudwatchFake.close(), dynamo.close(), output.close()]);
  }

  const calls: AttributedCall[] = [];
  for (const call of byMethod) {
    const callers = PORT_CALLERS[call.fn];
    if (!callers) throw new Error(`a wire call outside any port method: ${call.fn} ${call.action} ${call.resource}`);
    for (const fn of callers) calls.push({ ...call, fn, note: `via ${call.fn}${call.note ? `; ${call.note}` : ''}` });
  }
  return calls;
}
