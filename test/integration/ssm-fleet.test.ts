import { SSMClient } from '@aws-sdk/client-ssm';
import { createDynamoReleaseStore, createSsmFleet } from '@slipway/aws';
import {
  createReleaseStages,
  DependencyUnavailableError,
  createUlidGenerator,
  type Fleet,
  type HostCommand,
  type ReleaseStore,
  silentLogger,
  type Workflow,
} from '@slipway/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { localDynamo } from '../support/stand-ins.ts';
import { startWireFake, type WireReply, type WireRequest } from '../support/wire-fake.ts';

/**
 * No local SSM exists: a fake speaking SSM's JSON protocol checks the wire requests; the recorded
 * parts live in the real local DynamoDB.
 */
type Call = { target: string; body: any };
let calls: Call[] = [];
const sent: { CommandId: string; Comment: string; InstanceIds: string[] }[] = [];
type Invocation = { Status: string; ResponseCode?: number; StandardOutputContent?: string; StandardErrorContent?: string };
let invocations: Record<string, Invocation> = {};
let preexisting: { CommandId: string; Comment: string }[] = [];
let throttle = 0;
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
    return { body: { Command: command } };
  }
  if (target === 'ListCommands') return { body: { Commands: [...preexisting, ...sent] } };
  if (target === 'GetCommandInvocation') {
    const found = invocations[`${body.CommandId}/${body.InstanceId}`];
    if (!found) return { status: 400, body: { __type: 'InvocationDoesNotExist', message: 'not yet' }, errorType: 'InvocationDoesNotExist' };
    return {
      body: { CommandId: body.CommandId, InstanceId: body.InstanceId, ...found, ExecutionStartDateTime: '2026-01-01T00:00:00Z', ExecutionEndDateTime: '2026-01-01T00:00:05Z' },
    };
  }
  if (target === 'DescribeInstanceInformation') {
    return body.NextToken
      ? { body: { InstanceInformationList: [{ InstanceId: 'i-0000000000000000c' }] } }
      : { body: { InstanceInformationList: [{ InstanceId: 'i-0000000000000000b' }, { InstanceId: 'i-0000000000000000a' }], NextToken: 'more' } };
  }
  return { status: 400, body: { __type: 'UnknownOperation' }, errorType: 'UnknownOperation' };
}

let fake: Awaited<ReturnType<typeof startWireFake>>;
let dynamo: Awaited<ReturnType<typeof localDynamo>>;
let ssm: SSMClient;
let fleet: Fleet;
let store: ReleaseStore;

beforeAll(async () => {
  fake = await startWireFake(respond);
  ssm = new SSMClient(fake.clientOptions(1));
  dynamo = await localDynamo();
  store = createDynamoReleaseStore(dynamo.client, dynamo.tableName);
  fleet = createSsmFleet({ ssm, documents: dynamo.client, tableName: dynamo.tableName, outputBucket: 'slipway-output' });
});
afterAll(async () => {
  ssm.destroy();
  await fake.close();
  await dynamo.close();
});
beforeEach(() => {
  calls = [];
  invocations = {};
  preexisting = [];
});

const hosts = (n: number) => Array.from({ length: n }, (_, i) => `i-${String(i).padStart(17, '0')}`);
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

describe('SSM fleet', () => {
  it('sends AWS-RunShellScript to at most 50 instances a call, each host once, with the quoted script', async () => {
    const at = '2026-01-01T00:00:00Z';
    await store.startStep({ releaseId: 'r1', key: 'switch#prod#0', kind: 'switch', environment: 'prod', hosts: hosts(120), commandId: 'c1', taskToken: 't', state: 'running', createdAt: at, updatedAt: at });
    await fleet.send(command('c1', hosts(120)));
    const sends = calls.filter((c) => c.target === 'SendCommand');
    expect(sends.map((c) => c.body.InstanceIds.length)).toEqual([50, 50, 20]);
    expect(new Set(sends.flatMap((c) => c.body.InstanceIds)).size).toBe(120);
    expect(sends[0]!.body).toMatchObject({
      DocumentName: 'AWS-RunShellScript',
      Comment: 'slipway c1 part 0',
      MaxConcurrency: '100%',
      MaxErrors: '100%',
      OutputS3BucketName: 'slipway-output',
      Parameters: { executionTimeout: ['900'] },
    });
    expect(sends[0]!.body.Parameters.commands[0]).toContain(`VERSION='1.0 '\\''$(reboot)'\\'''`);
    // Each SSM CommandId leads to the step, so a status event for any part finds it.
    for (const part of ['ssm-1', 'ssm-2', 'ssm-3']) expect((await store.getStepByCommand(part))?.key).toBe('switch#prod#0');
  });

  it('never sends a part twice: not on a retry, not after a crash between sending and recording', async () => {
    await fleet.send(command('c1', hosts(120)));
    expect(calls.filter((c) => c.target === 'SendCommand')).toHaveLength(0);

    // The crash: part 0 of c2 reached SSM, but its CommandId was never recorded.
    preexisting = [{ CommandId: 'ssm-sent-before-crash', Comment: 'slipway c2 part 0' }];
    await fleet.send(command('c2', hosts(3)));
    expect(calls.filter((c) => c.target === 'SendCommand')).toHaveLength(0);
    expect(calls.find((c) => c.target === 'ListCommands')!.body.Filters).toEqual(
      expect.arrayContaining([{ key: 'DocumentName', value: 'AWS-RunShellScript' }]),
    );
    invocations = Object.fromEntries(hosts(3).map((h) => [`ssm-sent-before-crash/${h}`, { Status: 'Success', ResponseCode: 0 }]));
    expect((await fleet.results('c2')).finished).toBe(true);
  });

  it('reports each host once every invocation has ended, with exit codes and output', async () => {
    const targets = hosts(2);
    await fleet.send(command('c3', targets));
    const ssmId = sent.at(-1)!.CommandId;
    invocations[`${ssmId}/${targets[0]}`] = { Status: 'Success', ResponseCode: 0, StandardOutputContent: 'current -> releases/r1' };
    expect(await fleet.results('c3')).toMatchObject({ finished: false, invocations: [{ host: targets[0], status: 'success' }] });
    invocations[`${ssmId}/${targets[1]}`] = { Status: 'Failed', ResponseCode: 23, StandardErrorContent: 'health check failed 3 times' };
    const done = await fleet.results('c3');
    expect(done.finished).toBe(true);
    expect(done.invocations[1]).toMatchObject({ host: targets[1], status: 'failed', exitCode: 23, stderr: 'health check failed 3 times' });
  });

  it('resolves tag targets to the SSM-managed instances carrying every tag', async () => {
    expect(await fleet.resolveTargets({ tags: { Role: 'web', Stage: 'prod' } })).toEqual([
      'i-0000000000000000a',
      'i-0000000000000000b',
      'i-0000000000000000c',
    ]);
    expect(calls[0]!.body.Filters).toEqual([
      { Key: 'tag:Role', Values: ['web'] },
      { Key: 'tag:Stage', Values: ['prod'] },
    ]);
    expect(await fleet.resolveTargets({ hosts: ['i-0a1b2c3d4e5f60718'] })).toEqual(['i-0a1b2c3d4e5f60718']);
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
    expect(calls.filter((c) => c.target === 'SendCommand')).toHaveLength(3);

    throttle = 10;
    await expect(patient.send(command('c-refused', hosts(1)))).rejects.toThrow(DependencyUnavailableError);
    throttle = 0;
    expect((await patient.results('c-refused')).finished).toBe(false);
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
    const targets = hosts(2);
    await store.startStep({ releaseId: 'r9', key: 'switch#prod#0', kind: 'switch', environment: 'prod', hosts: targets, commandId: 'c9', taskToken: 'waiting-token', state: 'running', createdAt: at, updatedAt: at });
    await fleet.send(command('c9', targets));
    const ssmId = sent.at(-1)!.CommandId;
    for (const host of targets) invocations[`${ssmId}/${host}`] = { Status: 'Success', ResponseCode: 0 };

    expect(await stages.reconcileCommands()).toBeGreaterThanOrEqual(1);
    expect(delivered).toContainEqual({ token: 'waiting-token', output: { hosts: 2 } });
    // The 120-host command from the first test is still running: its task hears so, the settled one does not.
    expect(heartbeats).toContain('t');
    expect(heartbeats).not.toContain('waiting-token');
    expect((await store.getStep('r9', 'switch#prod#0'))?.state).toBe('succeeded');
    expect((await store.listRunningCommandSteps(100)).map((s) => s.releaseId)).not.toContain('r9');
  });
});
