import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { createDynamoReleaseStore, createS3ArtifactStore, createSsmFleet } from '@slipway/aws';
import {
  createReleaseStages,
  DependencyUnavailableError,
  createUlidGenerator,
  type Fleet,
  type HostCommand,
  type Release,
  type ReleaseStore,
  silentLogger,
  systemClock,
  UnprocessableError,
  type Workflow,
} from '@slipway/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { shopConfig } from '../support/fixtures.ts';
import { localDynamo, localS3 } from '../support/stand-ins.ts';
import { startWireFake, type WireReply, type WireRequest } from '../support/wire-fake.ts';

/**
 * No local SSM exists: a fake speaking SSM's JSON protocol checks the wire requests; the recorded
 * parts live in the real local DynamoDB, and command output in the real local S3.
 */
type Call = { target: string; body: any };
let calls: Call[] = [];
const sent: { CommandId: string; Comment: string; InstanceIds: string[] }[] = [];
interface Invocation {
  Status: string;
  ResponseCode?: number;
  StandardOutputContent?: string;
  StandardErrorContent?: string;
  StatusDetails?: string;
}
let invocations: Record<string, Invocation> = {};
let preexisting: { CommandId: string; Comment: string }[] = [];
let throttle = 0;
/** SSM takes the command but its answer never arrives (a 500, as after a timeout). */
let loseAnswer = false;
/** How many invocations the fake answers a page (SSM may answer fewer than MaxResults). */
let invocationPage = 50;
/** The bucket the fake says each command wrote its output to (OutputS3BucketName). */
let outputBucket = 'slipway-output';
type Instance = { InstanceId: string; PingStatus: string; tags?: Record<string, string> };
let instances: Instance[] = [];

const SUMMARY_LIMIT = 2500;
const ssmCount = (target: string) => calls.filter((c) => c.target === target).length;

/** A plugin's Output as the listing gives it: stdout, then stderr after SSM's separator, cut to 2,500. */
function summary(invocation: Invocation): string {
  const stderr = invocation.StandardErrorContent ? `\n----------ERROR-------\n${invocation.StandardErrorContent}` : '';
  return `${invocation.StandardOutputContent ?? ''}${stderr}`.slice(0, SUMMARY_LIMIT);
}

function listInvocations(body: any): WireReply {
  const command = sent.find((c) => c.CommandId === body.CommandId);
  const all = (command?.InstanceIds ?? []).filter((host) => invocations[`${body.CommandId}/${host}`]);
  const start = Number(body.NextToken ?? 0);
  const page = all.slice(start, start + Math.min(body.MaxResults ?? 50, invocationPage));
  const url = (host: string, stream: string) =>
    `https://s3.eu-west-1.amazonaws.com/${outputBucket}/command-output/${commandOf(body.CommandId)}/${body.CommandId}/${host}/awsrunShellScript/0.awsrunShellScript/${stream}`;
  return {
    body: {
      CommandInvocations: page.map((host) => {
        const found = invocations[`${body.CommandId}/${host}`]!;
        return {
          CommandId: body.CommandId,
          InstanceId: host,
          Status: found.Status,
          StatusDetails: found.StatusDetails ?? found.Status,
          RequestedDateTime: 1_767_225_600,
          ...(body.Details
            ? {
                CommandPlugins: [
                  {
                    Name: 'aws:runShellScript',
                    Status: found.Status,
                    ResponseCode: found.ResponseCode ?? -1,
                    ResponseStartDateTime: 1_767_225_600,
                    ResponseFinishDateTime: 1_767_225_605,
                    Output: summary(found),
                    OutputS3BucketName: outputBucket,
                    StandardOutputUrl: url(host, 'stdout'),
                    StandardErrorUrl: url(host, 'stderr'),
                  },
                ],
              }
            : {}),
        };
      }),
      ...(start + page.length < all.length ? { NextToken: String(start + page.length) } : {}),
    },
  };
}
/** Our command id, from a part's Comment ("slipway <id> part <n>"). */
const commandOf = (ssmCommandId: string) => [...sent, ...preexisting].find((c) => c.CommandId === ssmCommandId)?.Comment.split(' ')[1];

function respond({ target: fullTarget, body }: WireRequest): WireReply {
  const target = fullTarget.replace('AmazonSSM.', '');
  calls.push({ target, body });
  if (target === 'SendCommand' && throttle > 0) {
    throttle -= 1;
    return { status: 400, body: { __type: 'ThrottlingException', message: 'Rate exceeded' }, errorType: 'ThrottlingException' };
  }
  if (target === 'SendCommand') {
    const command = { CommandId: `ssm-${sent.length + 1}`, Comment: body.Comment, InstanceIds: body.InstanceIds };
    sent.push(command);
    if (loseAnswer) return { status: 500, body: { __type: 'InternalServerError', message: 'lost' }, errorType: 'InternalServerError' };
    return { body: { Command: command } };
  }
  if (target === 'ListCommands') return { body: { Commands: [...preexisting, ...sent] } };
  if (target === 'ListCommandInvocations') return listInvocations(body);
  if (target === 'GetCommandInvocation') {
    const found = invocations[`${body.CommandId}/${body.InstanceId}`];
    if (!found) return { status: 400, body: { __type: 'InvocationDoesNotExist', message: 'not yet' }, errorType: 'InvocationDoesNotExist' };
    return {
      body: {
        CommandId: body.CommandId,
        InstanceId: body.InstanceId,
        StatusDetails: found.Status,
        ...found,
        StandardOutputContent: (found.StandardOutputContent ?? '').slice(0, 24_000),
        StandardErrorContent: (found.StandardErrorContent ?? '').slice(0, 8_000),
        ExecutionStartDateTime: '2026-01-01T00:00:00Z',
        ExecutionEndDateTime: '2026-01-01T00:00:05Z',
      },
    };
  }
  if (target === 'DescribeInstanceInformation') {
    const filters: { Key: string; Values: string[] }[] = body.Filters ?? [];
    const matching = instances.filter((instance) =>
      filters.every(({ Key, Values }) =>
        Key === 'InstanceIds' ? Values.includes(instance.InstanceId) : Values.includes(instance.tags?.[Key.replace(/^tag:/, '')] ?? ''),
      ),
    );
    // Two to a page, to prove the paging.
    const start = Number(body.NextToken ?? 0);
    const page = matching.slice(start, start + 2).map(({ InstanceId, PingStatus }) => ({ InstanceId, PingStatus }));
    return { body: { InstanceInformationList: page, ...(start + 2 < matching.length ? { NextToken: String(start + 2) } : {}) } };
  }
  return { status: 400, body: { __type: 'UnknownOperation' }, errorType: 'UnknownOperation' };
}

let fake: Awaited<ReturnType<typeof startWireFake>>;
let dynamo: Awaited<ReturnType<typeof localDynamo>>;
let s3: Awaited<ReturnType<typeof localS3>>;
let ssm: SSMClient;
let fleet: Fleet;
let store: ReleaseStore;

beforeAll(async () => {
  fake = await startWireFake(respond);
  ssm = new SSMClient(fake.clientOptions(1));
  dynamo = await localDynamo();
  s3 = await localS3('slipway-output');
  store = createDynamoReleaseStore(dynamo.client, dynamo.tableName);
  fleet = createSsmFleet({ ssm, documents: dynamo.client, tableName: dynamo.tableName, outputBucket: 'slipway-output' });
});
afterAll(async () => {
  ssm.destroy();
  await fake.close();
  await dynamo.close();
  await s3.close();
});
beforeEach(() => {
  calls = [];
  invocations = {};
  preexisting = [];
  loseAnswer = false;
  invocationPage = 50;
  outputBucket = 'slipway-output';
});

const hosts = (n: number, prefix = '') => Array.from({ length: n }, (_, i) => `i-${prefix}${String(i).padStart(17 - prefix.length, '0')}`);
function command(commandId: string, targets: string[]): HostCommand {
  return {
    commandId,
    hosts: targets,
    timeoutSeconds: 900,
    script: {
      kind: 'switch',
      deployRoot: '/srv/shop',
      releaseId: 'r1',
      switchId: 'r1',
      version: '1.0 \'$(reboot)\'',
      preRelease: '',
      postRelease: 'systemctl reload shop',
      healthCheck: '',
      healthCheckAttempts: 3,
      healthCheckIntervalSeconds: 2,
    },
  };
}
const partsOf = (commandId: string) => sent.filter((c) => c.Comment.startsWith(`slipway ${commandId} part `));
function finish(commandId: string, outcome: (host: string) => Invocation = () => ({ Status: 'Success', ResponseCode: 0, StandardOutputContent: 'ok' })) {
  for (const part of partsOf(commandId)) for (const host of part.InstanceIds) invocations[`${part.CommandId}/${host}`] = outcome(host);
}

describe('SSM fleet: sending', () => {
  it('sends AWS-RunShellScript to at most 50 instances a call, each host once, with the quoted script, and lists nothing first', async () => {
    const at = '2026-01-01T00:00:00Z';
    await store.startStep({ releaseId: 'r1', key: 'switch#prod#0', kind: 'switch', environment: 'prod', hosts: hosts(120), commandId: 'c1', taskToken: 't', state: 'running', createdAt: at, updatedAt: at });
    await fleet.send(command('c1', hosts(120)));
    const sends = calls.filter((c) => c.target === 'SendCommand');
    expect(sends.map((c) => c.body.InstanceIds.length).sort()).toEqual([20, 50, 50]);
    expect(new Set(sends.flatMap((c) => c.body.InstanceIds)).size).toBe(120);
    expect(sends.find((c) => c.body.Comment === 'slipway c1 part 0')!.body).toMatchObject({
      DocumentName: 'AWS-RunShellScript',
      InstanceIds: hosts(50),
      MaxConcurrency: '100%',
      MaxErrors: '100%',
      OutputS3BucketName: 'slipway-output',
      OutputS3KeyPrefix: 'command-output/c1',
      Parameters: { executionTimeout: ['900'] },
    });
    expect(sends[0]!.body.Parameters.commands[0]).toContain(`VERSION='1.0 '\\''$(reboot)'\\'''`);
    // No paging through the account's commands before sending: the part's own record says it is new.
    expect(ssmCount('ListCommands')).toBe(0);
    // Each SSM CommandId leads to the step, so a status event for any part finds it.
    for (const part of partsOf('c1')) expect((await store.getStepByCommand(part.CommandId))?.key).toBe('switch#prod#0');
  });

  it('lets its own bookkeeping (parts, the SSM CommandId lookups) expire 30 days after the send', async () => {
    const sentAt = '2026-03-01T10:00:00.000Z';
    const timed = createSsmFleet({ ssm, documents: dynamo.client, tableName: dynamo.tableName, outputBucket: 'slipway-output', clock: () => new Date(sentAt) });
    await store.startStep({ releaseId: 'r-ttl', key: 'switch#prod#0', kind: 'switch', environment: 'prod', hosts: hosts(60), commandId: 'c-ttl', taskToken: 't', state: 'running', createdAt: sentAt, updatedAt: sentAt });
    await timed.send(command('c-ttl', hosts(60)));
    // 2026-03-01T10:00:00Z is 1,772,359,200 in epoch seconds (worked out by hand); plus 30 days.
    const expected = 1_772_359_200 + 30 * 86_400;
    const { Items } = await dynamo.client.send(
      new QueryCommand({ TableName: dynamo.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': 'CMDPARTS#c-ttl' }, ConsistentRead: true }),
    );
    expect(Items!.map((item) => [item.sk, item.ttl])).toEqual([['HEAD', expected], ['PART#00000', expected], ['PART#00001', expected]]);
    for (const part of partsOf('c-ttl')) {
      const { Item } = await dynamo.client.send(new GetCommand({ TableName: dynamo.tableName, Key: { pk: `CMD#${part.CommandId}`, sk: 'CMD' } }));
      expect(Item?.ttl).toBe(expected);
    }
  });

  it('never sends a part twice: not on a retry, not after a crash between SSM taking it and the answer', async () => {
    await fleet.send(command('c1', hosts(120)));
    expect(ssmCount('SendCommand')).toBe(0);
    expect(ssmCount('ListCommands')).toBe(0);

    // The crash: SSM took part 0 of c2, but its answer never came back.
    loseAnswer = true;
    await expect(fleet.send(command('c2', hosts(3)))).rejects.toThrow(DependencyUnavailableError);
    expect(partsOf('c2')).toHaveLength(1);
    loseAnswer = false;
    calls = [];
    await fleet.send(command('c2', hosts(3)));
    expect(ssmCount('SendCommand')).toBe(0);
    // Looked for by its Comment among the shell commands invoked around the recorded intent only.
    const listing = calls.find((c) => c.target === 'ListCommands')!.body;
    expect(listing.Filters).toEqual(
      expect.arrayContaining([
        { key: 'DocumentName', value: 'AWS-RunShellScript' },
        { key: 'InvokedAfter', value: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) },
        { key: 'InvokedBefore', value: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) },
      ]),
    );
    finish('c2');
    const results = await fleet.results('c2');
    expect(results.finished).toBe(true);
    expect(results.invocations.map((i) => i.host)).toEqual(hosts(3));
  });
});

describe('SSM fleet: results', () => {
  it('builds 120 hosts\' results from ListCommandInvocations pages, one request per page and none per host', async () => {
    await fleet.send(command('c-paged', hosts(120, 'p')));
    finish('c-paged');
    invocationPage = 20;
    calls = [];
    const results = await fleet.results('c-paged');
    expect(results.finished).toBe(true);
    expect(results.invocations).toHaveLength(120);
    expect(results.invocations.map((i) => i.host)).toEqual(hosts(120, 'p'));
    expect(results.invocations.every((i) => i.status === 'success' && i.exitCode === 0 && i.stdout === 'ok')).toBe(true);
    expect(results.invocations[0]).toMatchObject({ startedAt: '2026-01-01T00:00:00.000Z', endedAt: '2026-01-01T00:00:05.000Z' });
    // 50 + 50 + 20 hosts at 20 a page: 3 + 3 + 1 pages, each asked for once.
    const pages = calls.filter((c) => c.target === 'ListCommandInvocations');
    expect(pages).toHaveLength(7);
    expect(new Set(pages.map((c) => `${c.body.CommandId}/${c.body.NextToken ?? ''}`)).size).toBe(7);
    expect(pages.every((c) => c.body.Details === true && c.body.MaxResults === 50)).toBe(true);
    expect(ssmCount('GetCommandInvocation')).toBe(0);
  });

  it('looks only at the parts still running once earlier ones were seen finished', async () => {
    await fleet.send(command('c-parts', hosts(120, 'q')));
    const [first, second, third] = [0, 1, 2].map((i) => partsOf('c-parts').find((p) => p.Comment.endsWith(`part ${i}`))!);
    for (const host of first!.InstanceIds) invocations[`${first!.CommandId}/${host}`] = { Status: 'Success', ResponseCode: 0 };
    invocations[`${second!.CommandId}/${second!.InstanceIds[0]}`] = { Status: 'InProgress' };
    calls = [];
    expect((await fleet.results('c-parts')).finished).toBe(false);
    // Stopped at the part still running: the third was not asked about.
    expect(calls.map((c) => c.body.CommandId)).toEqual([first!.CommandId, second!.CommandId]);

    for (const part of [second!, third!]) for (const host of part.InstanceIds) invocations[`${part.CommandId}/${host}`] = { Status: 'Success', ResponseCode: 0 };
    calls = [];
    const done = await fleet.results('c-parts');
    expect(done.finished).toBe(true);
    expect(done.invocations).toHaveLength(120);
    // The parts still open were looked at, then the one seen finished before, once, for its outcomes.
    expect(calls.map((c) => c.body.CommandId)).toEqual([second!.CommandId, third!.CommandId, first!.CommandId]);
  });

  it('reports each host once every invocation has ended, with exit codes and the output split into stdout and stderr', async () => {
    const targets = hosts(2, 'r');
    await fleet.send(command('c3', targets));
    const ssmId = partsOf('c3')[0]!.CommandId;
    invocations[`${ssmId}/${targets[0]}`] = { Status: 'Success', ResponseCode: 0, StandardOutputContent: 'current -> releases/r1' };
    expect(await fleet.results('c3')).toMatchObject({ finished: false, invocations: [{ host: targets[0], status: 'success' }] });
    invocations[`${ssmId}/${targets[1]}`] = { Status: 'Failed', ResponseCode: 23, StandardOutputContent: 'switching', StandardErrorContent: 'health check failed 3 times' };
    const done = await fleet.results('c3');
    expect(done.finished).toBe(true);
    expect(done.invocations[0]).toMatchObject({ host: targets[0], status: 'success', stdout: 'current -> releases/r1', stderr: '' });
    expect(done.invocations[1]).toMatchObject({ host: targets[1], status: 'failed', exitCode: 23, stdout: 'switching', stderr: 'health check failed 3 times' });
  });

  it('says why a host never ran the command (an empty stderr falls back to the status details)', async () => {
    const targets = hosts(1, 's');
    await fleet.send(command('c-undelivered', targets));
    finish('c-undelivered', () => ({ Status: 'TimedOut', StatusDetails: 'DeliveryTimedOut', StandardErrorContent: '' }));
    const [host] = (await fleet.results('c-undelivered')).invocations;
    expect(host).toMatchObject({ status: 'timed_out', exitCode: null, stderr: 'DeliveryTimedOut' });
  });

  it('completes a failed host\'s truncated output from the command output in S3: the end, where the error is', async () => {
    const withS3 = createSsmFleet({ ssm, documents: dynamo.client, tableName: dynamo.tableName, outputBucket: s3.bucket, s3: s3.client });
    const targets = hosts(2, 't');
    await withS3.send(command('c-long', targets));
    const { CommandId: ssmId } = partsOf('c-long')[0]!;
    const stderr = `${'npm WARN deprecated something\n'.repeat(4000)}Error: Cannot find module 'express'`;
    const stdout = 'built\n'.repeat(10);
    finish('c-long', (host) =>
      host === targets[1] ? { Status: 'Failed', ResponseCode: 1, StandardOutputContent: stdout, StandardErrorContent: stderr } : { Status: 'Success', ResponseCode: 0, StandardOutputContent: 'ok' },
    );
    const folder = `command-output/c-long/${ssmId}/${targets[1]}/awsrunShellScript/0.awsrunShellScript`;
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${folder}/stderr`, Body: stderr }));
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${folder}/stdout`, Body: stdout }));
    calls = [];

    const [ok, failed] = (await withS3.results('c-long')).invocations;
    expect(ok).toMatchObject({ status: 'success', stdout: 'ok' });
    // SSM's listing held only the first 2,500 characters; the bucket holds all 120 KB: its last 64 KiB are kept.
    expect(failed!.stderr.endsWith(`Error: Cannot find module 'express'`)).toBe(true);
    expect(failed!.stderr).toMatch(/^\[\d+ earlier bytes cut\]\n/);
    expect(Buffer.byteLength(failed!.stderr)).toBeLessThan(64 * 1024 + 100);
    expect(failed!.stdout).toBe(stdout);
    expect(ssmCount('GetCommandInvocation')).toBe(0);
  });

  it('without the bucket, reads a failed host\'s output from GetCommandInvocation, for failed hosts only', async () => {
    const targets = hosts(3, 'u');
    await fleet.send(command('c-no-s3', targets));
    finish('c-no-s3', (host) => (host === targets[2] ? { Status: 'Failed', ResponseCode: 2, StandardErrorContent: `${'e'.repeat(3000)} the end` } : { Status: 'Success', ResponseCode: 0 }));
    calls = [];
    const failed = (await fleet.results('c-no-s3')).invocations[2]!;
    expect(failed.stderr).toBe(`${'e'.repeat(3000)} the end`);
    expect(calls.filter((c) => c.target === 'GetCommandInvocation').map((c) => c.body.InstanceId)).toEqual([targets[2]]);
  });
});

describe('SSM fleet: targets', () => {
  beforeEach(() => {
    const web = { Role: 'web', Stage: 'prod' };
    instances = [
      { InstanceId: 'i-0000000000000000b', PingStatus: 'Online', tags: web },
      { InstanceId: 'i-0000000000000000a', PingStatus: 'Online', tags: web },
      { InstanceId: 'i-0000000000000000d', PingStatus: 'ConnectionLost', tags: web },
      { InstanceId: 'i-0000000000000000c', PingStatus: 'Online', tags: web },
      { InstanceId: 'mi-0000000000000000e', PingStatus: 'Inactive', tags: web },
      { InstanceId: 'i-0000000000000000f', PingStatus: 'Online', tags: { Role: 'web', Stage: 'staging' } },
    ];
  });

  it('resolves tags to the instances carrying every tag, paged, and sets apart the ones SSM cannot reach', async () => {
    expect(await fleet.resolveTargets({ tags: { Role: 'web', Stage: 'prod' } })).toEqual({
      hosts: ['i-0000000000000000a', 'i-0000000000000000b', 'i-0000000000000000c'],
      unreachable: [
        { host: 'i-0000000000000000d', reason: 'SSM PingStatus ConnectionLost' },
        { host: 'mi-0000000000000000e', reason: 'SSM PingStatus Inactive' },
      ],
    });
    expect(calls[0]!.body.Filters).toEqual([
      { Key: 'tag:Role', Values: ['web'] },
      { Key: 'tag:Stage', Values: ['prod'] },
    ]);
    expect(ssmCount('DescribeInstanceInformation')).toBe(3);
  });

  it('checks named hosts too, 50 ids a call, in their order: offline, or not managed by SSM at all', async () => {
    const named = ['i-0000000000000000c', 'i-0000000000000000d', 'i-00000000000000999', 'i-0000000000000000a'];
    expect(await fleet.resolveTargets({ hosts: named })).toEqual({
      hosts: ['i-0000000000000000c', 'i-0000000000000000a'],
      unreachable: [
        { host: 'i-0000000000000000d', reason: 'SSM PingStatus ConnectionLost' },
        { host: 'i-00000000000000999', reason: 'not managed by SSM' },
      ],
    });
    calls = [];
    instances = hosts(120, 'v').map((InstanceId) => ({ InstanceId, PingStatus: 'Online' }));
    expect((await fleet.resolveTargets({ hosts: hosts(120, 'v') })).hosts).toEqual(hosts(120, 'v'));
    const asked = calls.map((c) => c.body.Filters[0].Values.length);
    expect(Math.max(...asked)).toBeLessThanOrEqual(50);
    expect(new Set(calls.flatMap((c) => c.body.Filters[0].Values)).size).toBe(120);
  });

  it('an offline host fails Prepare before anything is sent, naming the hosts and why', async () => {
    const unused = {} as never;
    const clock = { now: () => new Date() };
    const ids = createUlidGenerator();
    const stages = createReleaseStages({
      store,
      fleet,
      clock,
      ids,
      workflow: unused,
      objects: unused,
      approvals: unused,
      logger: silentLogger,
    });
    const offline = hosts(14, 'w').map((InstanceId) => ({ InstanceId, PingStatus: 'ConnectionLost', tags: { Role: 'web', Stage: 'prod' } }));
    instances.push(...offline);
    const release: Release = {
      id: '01jzoffline000000000000000',
      app: 'shop',
      version: '1.0.0',
      artifact: { key: 'artifacts/shop/x.tar.gz', sha256: 'a'.repeat(64), size: 10 },
      description: '',
      status: 'pending',
      openedBy: 'alice@example.com',
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
      config: shopConfig,
    };
    instances.push({ InstanceId: 'i-0a1b2c3d4e5f60718', PingStatus: 'Online' });
    await store.createRelease(release, release.config.environments.map((env, order) => ({ releaseId: release.id, app: 'shop', environment: env.name, order, status: 'pending' })));
    calls = [];
    const refused = await stages.prepare({ releaseId: release.id, app: 'shop' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(UnprocessableError);
    const message = (refused as Error).message;
    expect(message).toContain('production: 16 of 19 hosts cannot take commands now: i-0000000000000000d (SSM PingStatus ConnectionLost), i-w0000000000000000 (SSM PingStatus ConnectionLost)');
    // Ten named, the rest counted (mi-0000000000000000e sorts last).
    expect(message).toContain('i-w0000000000000008 (SSM PingStatus ConnectionLost), and 6 more');
    expect(message).not.toContain('staging');
    expect(ssmCount('SendCommand')).toBe(0);
    expect(await store.getPlan(release.id)).toBeUndefined();
  });
});

describe('SSM throttling', () => {
  it('is retried by the SDK, and reported as retryable when it persists, with nothing recorded as sent', async () => {
    const patient = createSsmFleet({
      ssm: new SSMClient(fake.clientOptions(3)),
      documents: dynamo.client,
      tableName: dynamo.tableName,
    });
    throttle = 2;
    await patient.send(command('c-throttled', hosts(1)));
    expect(ssmCount('SendCommand')).toBe(3);

    throttle = 10;
    await expect(patient.send(command('c-refused', hosts(1)))).rejects.toThrow(DependencyUnavailableError);
    throttle = 0;
    expect((await patient.results('c-refused')).finished).toBe(false);
    // Refused for sure: the next attempt sends at once, without looking for it first.
    calls = [];
    await patient.send(command('c-refused', hosts(1)));
    expect(ssmCount('SendCommand')).toBe(1);
    expect(ssmCount('ListCommands')).toBe(0);
  });
});

describe('the reconciling sweep', () => {
  it('settles a command whose status event never came, and tells the waiting task', async () => {
    const delivered: { token: string; output: unknown }[] = [];
    const heartbeats: string[] = [];
    const workflow: Workflow = {
      startRelease: async () => ({ executionId: 'x' }),
      sendTaskSuccess: async (token, output) => {
        delivered.push({ token, output });
      },
      sendTaskFailure: async () => {},
      sendTaskHeartbeat: async (token) => {
        heartbeats.push(token);
      },
      stopRelease: async () => {},
      releaseHistory: async () => undefined,
    };
    const clock = { now: () => new Date('2026-06-01T00:10:00Z') };
    const stages = createReleaseStages({
      store,
      fleet,
      workflow,
      objects: {} as never,
      approvals: {} as never,
      clock,
      ids: createUlidGenerator(clock),
      logger: silentLogger,
    });
    const at = '2026-06-01T00:00:00Z';
    const targets = hosts(2, 'x');
    await store.startStep({ releaseId: 'r9', key: 'switch#prod#0', kind: 'switch', environment: 'prod', hosts: targets, commandId: 'c9', taskToken: 'waiting-token', state: 'running', createdAt: at, updatedAt: at });
    await fleet.send(command('c9', targets));
    finish('c9');

    expect(await stages.reconcileCommands()).toBeGreaterThanOrEqual(1);
    expect(delivered).toContainEqual({ token: 'waiting-token', output: { hosts: 2 } });
    // The 120-host command from the first test is still running: its task hears so, the settled one does not.
    expect(heartbeats).toContain('t');
    expect(heartbeats).not.toContain('waiting-token');
    expect((await store.getStep('r9', 'switch#prod#0'))?.state).toBe('succeeded');
    expect((await store.listRunningCommandSteps(100)).map((s) => s.releaseId)).not.toContain('r9');
  });
});

describe('SSM fleet: what a distribute command carries', () => {
  it('carries no download URL valid for more than five minutes, and the S3 location the host role reads', async () => {
    const ids = createUlidGenerator();
    const stages = createReleaseStages({
      store,
      fleet,
      clock: systemClock,
      ids,
      workflow: {} as never,
      // Real S3 as the AWS runtime builds it (no custom endpoint): presigning makes no request.
      objects: createS3ArtifactStore(new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } }), 'slipway-artifacts', systemClock),
      approvals: {} as never,
      logger: silentLogger,
    });
    instances = [
      { InstanceId: 'i-0a1b2c3d4e5f60718', PingStatus: 'Online' },
      ...hosts(2, 'p').map((InstanceId) => ({ InstanceId, PingStatus: 'Online', tags: { Role: 'web', Stage: 'prod' } })),
    ];
    const release: Release = {
      id: ids.next().toLowerCase(),
      app: 'shop',
      version: '1.0.0',
      artifact: { key: 'artifacts/shop/abc.tar.gz', sha256: 'a'.repeat(64), size: 10 },
      description: '',
      status: 'pending',
      openedBy: 'alice@example.com',
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
      config: shopConfig,
    };
    await store.createRelease(release, release.config.environments.map((env, order) => ({ releaseId: release.id, app: 'shop', environment: env.name, order, status: 'pending' })));
    await stages.prepare({ releaseId: release.id, app: 'shop' });
    calls = [];
    await stages.distribute({ taskToken: 'token', releaseId: release.id, environment: 'staging' });
    const sends = calls.filter((c) => c.target === 'SendCommand');
    expect(sends).toHaveLength(1);
    const parameters = JSON.stringify(sends[0]!.body.Parameters);
    // Every presigned URL in the parameters, however quoted: each one's lifetime.
    const lifetimes = [...parameters.matchAll(/X-Amz-Expires=(\d+)/g)].map((match) => Number(match[1]));
    expect(lifetimes.length).toBeGreaterThan(0);
    for (const seconds of lifetimes) expect(seconds).toBeLessThanOrEqual(300);
    const script = sends[0]!.body.Parameters.commands[0] as string;
    expect(script).toContain(`ARTIFACT_S3_URI='s3://slipway-artifacts/artifacts/shop/abc.tar.gz'`);
    expect(script).toContain(`ARTIFACT_S3_REGION='eu-west-1'`);
  });
});
