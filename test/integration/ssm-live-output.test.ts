import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { createSsmFleet, logStreamOf } from '@slipway/aws';
import type { Fleet, HostCommand, HostOutputRead } from '@slipway/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { localDynamo } from '../support/stand-ins.ts';
import { startWireFake, type WireReply, type WireRequest } from '../support/wire-fake.ts';

/**
 * Live output on AWS: SSM sends each host's output to CloudWatch Logs as the command runs
 * (CloudWatchOutputConfig), and the fleet follows the two log streams with GetLogEvents and its
 * forward tokens. A fake speaking SSM's and CloudWatch Logs' JSON protocols checks the wire; the
 * command's parts live in the real local DynamoDB.
 */
const LOG_GROUP = '/slipway/command-output';
/** Events per log stream, as the agent put them (one event may hold several lines). */
let streams: Record<string, string[]> = {};
let sendBodies: any[] = [];
let reads: any[] = [];
/** Events per GetLogEvents page: small, to prove the paging and the skip within a page. */
const PAGE = 2;

function respond({ target, body }: WireRequest): WireReply {
  if (target === 'AmazonSSM.SendCommand') {
    sendBodies.push(body);
    return { body: { Command: { CommandId: `ssm-${sendBodies.length}`, Comment: body.Comment, InstanceIds: body.InstanceIds } } };
  }
  if (target === 'Logs_20140328.GetLogEvents') {
    reads.push(body);
    const events = streams[body.logStreamName];
    if (!events || body.logGroupName !== LOG_GROUP) {
      return { status: 400, body: { __type: 'ResourceNotFoundException', message: 'The specified log stream does not exist.' }, errorType: 'ResourceNotFoundException' };
    }
    const start = body.nextToken ? Number(String(body.nextToken).slice(2)) : 0;
    const page = events.slice(start, start + PAGE);
    return {
      body: {
        events: page.map((message, i) => ({ timestamp: 1_767_225_600_000 + start + i, message, ingestionTime: 1_767_225_601_000 })),
        // CloudWatch answers the token it was given once there is nothing newer.
        nextForwardToken: `f/${start + page.length}`,
        nextBackwardToken: `b/${start}`,
      },
    };
  }
  return { status: 400, body: { __type: 'UnknownOperation' }, errorType: 'UnknownOperation' };
}

let fake: Awaited<ReturnType<typeof startWireFake>>;
let dynamo: Awaited<ReturnType<typeof localDynamo>>;
let fleet: Fleet;
let ssm: SSMClient;
let logs: CloudWatchLogsClient;

const command = (commandId: string, hosts: string[]): HostCommand => ({ commandId, hosts, script: { kind: 'scan', deployRoot: '/srv/shop' }, timeoutSeconds: 60 });
const texts = (read: HostOutputRead) => read.lines.map((line) => `${line.stream}:${line.text}`);

beforeAll(async () => {
  fake = await startWireFake(respond);
  ssm = new SSMClient(fake.clientOptions(1));
  logs = new CloudWatchLogsClient(fake.clientOptions(1));
  dynamo = await localDynamo();
  fleet = createSsmFleet({ ssm, logs, outputLogGroup: LOG_GROUP, documents: dynamo.client, tableName: dynamo.tableName });
});
afterAll(async () => {
  ssm.destroy();
  logs.destroy();
  await fake.close();
  await dynamo.close();
});
beforeEach(() => {
  streams = {};
  sendBodies = [];
  reads = [];
});

describe('live output from CloudWatch Logs', () => {
  it('asks SSM to send the output to the log group, and follows each host\'s streams with forward tokens', async () => {
    await fleet.send(command('c-live', ['i-1', 'i-2']));
    expect(sendBodies[0].CloudWatchOutputConfig).toEqual({ CloudWatchOutputEnabled: true, CloudWatchLogGroupName: LOG_GROUP });
    const stdout = logStreamOf('ssm-1', 'i-1', 'stdout');
    const stderr = logStreamOf('ssm-1', 'i-1', 'stderr');
    expect(stdout).toBe('ssm-1/i-1/aws-runShellScript/stdout');

    // Nothing printed yet: no stream, no lines, no error.
    const empty = await fleet.readOutput!('c-live', 'i-1', undefined);
    expect(empty).toMatchObject({ lines: [], ended: false });

    streams[stdout] = ['downloading\nunpacking\n', 'running healthCheck\n', 'waiting'];
    const first = await fleet.readOutput!('c-live', 'i-1', empty.next);
    expect(texts(first)).toEqual(['stdout:downloading', 'stdout:unpacking', 'stdout:running healthCheck', 'stdout:waiting']);
    const stdoutReads = reads.filter((r) => r.logStreamName === stdout);
    expect(stdoutReads.every((r) => r.logGroupName === LOG_GROUP && r.startFromHead === true)).toBe(true);

    streams[stdout]!.push('healthy\n');
    streams[stderr] = ['a warning\n'];
    const before = reads.length;
    const second = await fleet.readOutput!('c-live', 'i-1', first.next);
    expect(texts(second)).toEqual(['stdout:healthy', 'stderr:a warning']);
    // Read on from where the last read stopped: by token, never from the head again.
    expect(reads.slice(before).find((r) => r.logStreamName === stdout)).toMatchObject({ nextToken: 'f/3' });

    // Resuming after any stdout line gives the stdout lines after it, once (across pages, and the
    // lines of a page already read skipped), and every stderr line.
    const stdoutLines = [...first.lines, ...second.lines].filter((line) => line.stream === 'stdout');
    for (const [index, line] of stdoutLines.entries()) {
      const resumed = await fleet.readOutput!('c-live', 'i-1', line.position);
      expect(texts(resumed), `after ${line.text}`).toEqual([...stdoutLines.slice(index + 1).map((l) => `stdout:${l.text}`), 'stderr:a warning']);
    }
    const afterWarning = await fleet.readOutput!('c-live', 'i-1', second.lines[1]!.position);
    expect(afterWarning.lines).toEqual([]);
    // The other host's streams are its own.
    expect((await fleet.readOutput!('c-live', 'i-2', undefined)).lines).toEqual([]);
    expect(reads.at(-1).logStreamName).toBe('ssm-1/i-2/aws-runShellScript/stderr');
  });

  it('has no live output without a log group: a host\'s output is then what its step recorded', () => {
    const plain = createSsmFleet({ ssm, documents: dynamo.client, tableName: dynamo.tableName });
    expect(plain.readOutput).toBeUndefined();
  });
});
