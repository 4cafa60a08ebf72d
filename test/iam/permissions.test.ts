import { rm, writeFile } from 'node:fs/promises';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  type AttributedCall,
  createCallAttribution,
  createDocumentClient,
  createDynamoReleaseStore,
  createS3ArtifactStore,
  createS3Client,
  createSesMailer,
  describeCall,
  recordCalls,
} from '@slipway/aws';
import { createRetention, silentLogger, systemClock } from '@slipway/core';
import { LOCAL_BUCKET, LOCAL_CREDENTIALS, LOCAL_REGION, LOCAL_TABLE } from '@slipway/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create as createSweep } from '../../functions/sweep.ts';
import { permissions } from '../../infra/permissions.ts';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { scenario } from '../support/scenario.ts';
import { STACK_REFS } from '../support/stack-refs.ts';
import { localDynamo, localS3 } from '../support/stand-ins.ts';
import { startWireFake } from '../support/wire-fake.ts';
import { globMatches, judge, stackArn } from './policy.ts';
import { recordPortCalls, WIRE_TABLE } from './wire.ts';

/**
 * IAM proved by the calls made. Every AWS client of the embedded default records the action and
 * resource of each request, tagged with the function (as infra/ names it) it was made for; a
 * realistic run through the API then checks each one against that function's statements in
 * infra/permissions.ts. The Step Functions and SSM calls, which the local stand-ins never send,
 * come from the real adapters on the wire fake (wire.ts), attributed by PORT_CALLERS (callers.ts);
 * every mail is mirrored to the real SES adapter inside the function that sent it.
 */
const refs = STACK_REFS;
const SENDER = 'deploys@example.com';
const NAMES = { tables: [LOCAL_TABLE, WIRE_TABLE], buckets: [LOCAL_BUCKET] };

describe('the call recorder', () => {
  it('names each request by the IAM action it needs and the resource it targets', () => {
    expect(describeCall('dynamodb', 'Query', { TableName: 't', IndexName: 'gsi1' })).toEqual([
      { service: 'dynamodb', operation: 'Query', action: 'dynamodb:Query', resource: 'arn:aws:dynamodb:{region}:{account}:table/t/index/gsi1' },
    ]);
    expect(describeCall('s3', 'HeadObject', { Bucket: 'b', Key: 'a/k' })[0]).toMatchObject({ action: 's3:GetObject', resource: 'arn:aws:s3:::b/a/k' });
    expect(describeCall('ssm', 'SendCommand', { DocumentName: 'AWS-RunShellScript', InstanceIds: ['i-1', 'mi-2'] }).map((c) => c.resource)).toEqual([
      'arn:aws:ssm:{region}::document/AWS-RunShellScript',
      'arn:aws:ec2:{region}:{account}:instance/i-1',
      'arn:aws:ssm:{region}:{account}:managed-instance/mi-2',
    ]);
    expect(describeCall('states', 'SendTaskSuccess', { taskToken: 't' })[0]).toMatchObject({ action: 'states:SendTaskSuccess', resource: '*' });
    expect(describeCall('ses', 'SendEmail', { FromEmailAddress: 'Slipway <deploys@example.com>' })[0]!.resource).toBe(
      'arn:aws:ses:{region}:{account}:identity/deploys@example.com',
    );
    expect(
      describeCall('dynamodb', 'TransactWriteItems', { TransactItems: [{ Put: { TableName: 'a' } }, { ConditionCheck: { TableName: 'b' } }] }).map((c) => c.action),
    ).toEqual(['dynamodb:PutItem', 'dynamodb:ConditionCheckItem']);
  });

  it('records what the DocumentClient sends by its low-level name, presigned URLs, and the ListBucket a 404 relies on', async () => {
    const calls: AttributedCall[] = [];
    const recorder = createCallAttribution((call) => calls.push(call));
    const [dynamo, s3] = await Promise.all([localDynamo('recorded'), localS3('recorded')]);
    const connection = {
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      endpoints: { dynamodb: dynamo.endpoint, s3: s3.endpoint },
      recordCall: recorder.recordCall,
    };
    const documents = createDocumentClient(connection);
    const objects = createS3Client(connection);
    try {
      await recorder.within('Api', async () => {
        await documents.send(new GetCommand({ TableName: 'recorded', Key: { pk: 'a', sk: 'b' } }));
        await getSignedUrl(objects, new PutObjectCommand({ Bucket: 'recorded', Key: 'artifacts/x' }));
        await objects.send(new HeadObjectCommand({ Bucket: 'recorded', Key: 'artifacts/missing' })).catch(() => undefined);
      });
      await objects.send(new GetObjectCommand({ Bucket: 'recorded', Key: 'nothing' })).catch(() => undefined);
    } finally {
      documents.destroy();
      objects.destroy();
      await Promise.all([dynamo.close(), s3.close()]);
    }
    expect(calls.map(({ fn, action, resource }) => `${fn} ${action} ${resource}`)).toEqual([
      'Api dynamodb:GetItem arn:aws:dynamodb:{region}:{account}:table/recorded',
      'Api s3:PutObject arn:aws:s3:::recorded/artifacts/x',
      'Api s3:GetObject arn:aws:s3:::recorded/artifacts/missing',
      'Api s3:ListBucket arn:aws:s3:::recorded',
      'unknown s3:GetObject arn:aws:s3:::recorded/nothing',
      'unknown s3:ListBucket arn:aws:s3:::recorded',
    ]);
  });

  it('adds nothing to a client when no recorder is given', () => {
    const client = createS3Client({ region: LOCAL_REGION });
    expect(client.middlewareStack.identify().some((name) => name.startsWith('slipwayCallRecorder'))).toBe(false);
    client.destroy();
  });

  it('matches resources as IAM does', () => {
    expect(globMatches(`${refs.bucketArn}/artifacts/*`, `${refs.bucketArn}/artifacts/shop/ab.tar.gz`)).toBe(true);
    expect(globMatches(`${refs.bucketArn}/artifacts/*`, refs.bucketArn)).toBe(false);
    expect(globMatches('*', '*')).toBe(true);
    expect(globMatches(refs.tableArn, '*')).toBe(false);
    expect(stackArn('arn:aws:dynamodb:{region}:{account}:table/slipway/index/gsi1', refs, NAMES)).toBe(`${refs.tableArn}/index/gsi1`);
  });
});

describe('IAM proved by the calls made', () => {
  const calls: AttributedCall[] = [];
  const recorder = createCallAttribution((call) => calls.push(call));
  let server: TestServer;
  let ses: SESv2Client;
  let sesFake: Awaited<ReturnType<typeof startWireFake>>;
  /** Calls made while the server started (the stand-ins' table and bucket, the admin token): not a function's. */
  let setup = 0;
  let refuseOnce = true;
  const s = scenario(() => server);

  beforeAll(async () => {
    sesFake = await startWireFake(() => ({ body: { MessageId: 'm-1' } }), 'application/json');
    ses = new SESv2Client(sesFake.clientOptions(1));
    recordCalls(ses, recorder.recordCall);
    const mirror = createSesMailer(ses, SENDER);
    server = await startTestServer(undefined, {
      demo: false,
      recorder,
      // Through S3 as on AWS: read in place, the server's and the hosts' artifact reads make no call.
      artifactsInPlace: false,
      // Each mail also goes through the real SES adapter, inside the function that sends it. The
      // first approval mail of the app `line` is refused (as SES in its sandbox does), so the sweep
      // sends it again.
      mailer: (outbox) => ({
        async send(mail) {
          await mirror.send(mail);
          if (refuseOnce && mail.subject.includes('Approve line')) {
            refuseOnce = false;
            throw Object.assign(new Error('Email address is not verified'), { name: 'MessageRejected' });
          }
          await outbox.send(mail);
        },
      }),
    });
    setup = calls.length;
  });
  afterAll(async () => {
    await server?.stop();
    ses?.destroy();
    await sesFake?.close();
  });

  it('runs releases, gates, a failing batch, a cancel, a rejection, a rollback, tokens, audit and retention', { timeout: 240_000 }, async () => {
    const approver = await server.tokenFor('approver', 'lead@example.com');
    // Releases are opened by a person with an address, so their outcomes are mailed too.
    const deployer = await server.tokenFor('deployer', 'dev@example.com');
    await server.tokenFor('viewer', 'temp@example.com');
    expect((await server.call('GET', '/v1/tokens')).status).toBe(200);
    const gate = { approvers: ['lead@example.com'], required: 1, timeoutHours: 1 };
    await s.app({
      name: 'iam',
      deployRoot: '/srv/iam',
      keepReleases: 2,
      hooks: { postDeploy: 'echo built > build.txt', healthCheck: 'test ! -e "$DEPLOY_ROOT/unhealthy" && test -f "$RELEASE_DIR/index.html"' },
      environments: [
        { name: 'staging', targets: { hosts: ['iam-s1', 'iam-s2'] } },
        {
          name: 'production',
          targets: { hosts: ['iam-p1', 'iam-p2', 'iam-p3', 'iam-p4'] },
          strategy: { type: 'rolling', batchSize: 2 },
          bakeSeconds: 1,
          approval: gate,
        },
      ],
    });
    const open = async (version: string, app = 'iam') => {
      const artifact = await s.tarball(app, { 'index.html': version });
      const opened = await server.call('POST', '/v1/releases', { token: deployer, body: { app, version, artifact, description: `release ${version}` } });
      expect(opened.status, JSON.stringify(opened.body)).toBe(202);
      return opened.body.id as string;
    };
    const decideByLink = async (id: string, decision: 'approve' | 'reject', environment = 'production') => {
      await s.waitForGate(id, environment);
      const link = (await s.links(id, environment))['lead@example.com']!;
      expect((await s.decide(link, decision, decision === 'reject' ? 'not today' : '')).status).toBe(200);
    };
    const ended = async (id: string) => (await s.waitForEnd(id)).status as string;

    // Two good releases: the first approved by its link, the second through the API.
    const first = await open('1');
    await decideByLink(first, 'approve');
    expect(await ended(first)).toBe('succeeded');
    const second = await open('2');
    await s.waitForGate(second, 'production');
    const decided = await server.call('POST', `/v1/releases/${second}/approvals`, { token: approver, body: { environment: 'production', decision: 'approve' } });
    expect(decided.status).toBe(200);
    expect(await ended(second)).toBe('succeeded');

    // The second production batch fails its health check: both batches are switched back.
    await writeFile(s.fleet('iam-p3', 'unhealthy'), '');
    const failing = await open('3');
    await decideByLink(failing, 'approve');
    expect(await ended(failing)).toBe('failed');
    await rm(s.fleet('iam-p3', 'unhealthy'));

    // Cancelled at the gate, and rejected at the gate.
    const cancelled = await open('4');
    await s.waitForGate(cancelled, 'production');
    expect((await server.call('POST', `/v1/releases/${cancelled}/cancel`, { token: deployer })).status).toBe(202);
    expect(await ended(cancelled)).toBe('cancelled');
    const rejected = await open('5');
    await decideByLink(rejected, 'reject');
    expect(await ended(rejected)).toBe('rejected');

    // Cancelled while waiting in line (still pending): its execution is stopped outright.
    await s.app({ name: 'line', deployRoot: '/srv/line', queue: true, environments: [{ name: 'live', targets: { hosts: ['line-1'] }, approval: gate }] });
    const ahead = await open('1', 'line');
    await s.waitForGate(ahead, 'live');
    const waiting = await open('2', 'line');
    const deadline = Date.now() + 20_000;
    while (!(await server.executor.history(`release:${waiting}`)).some((e) => e.state === 'EnterEnvironment')) {
      if (Date.now() > deadline) throw new Error('the second release never tried to enter');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect((await s.release(waiting)).status).toBe('pending');
    expect((await server.call('POST', `/v1/releases/${waiting}/cancel`, { token: deployer })).status).toBe(202);
    expect(await ended(waiting)).toBe('cancelled');
    await decideByLink(ahead, 'approve', 'live');
    expect(await ended(ahead)).toBe('succeeded');

    // Production back to the first release.
    const rollback = await s.rollback('iam', 'production', { toRelease: first });
    expect(await ended(rollback)).toBe('succeeded');

    // What people read: the release, its history, lists, the app, the audit, the dashboard (approval
    // pages were read by each decision by link).
    for (const path of [`/v1/releases/${second}`, `/v1/releases/${second}/history`, '/v1/releases?app=iam', '/v1/apps/iam', '/v1/audit', '/v1/me', '/']) {
      expect((await server.call('GET', path)).status, path).toBe(200);
    }
    // An artifact asked for again (already stored), and one uploaded that no release uses.
    const { artifact } = await s.release(first);
    const again = await server.call('POST', '/v1/artifacts', { body: { app: 'iam', sha256: artifact.sha256, size: 1 } });
    expect(again.body.alreadyUploaded).toBe(true);
    await s.tarball('iam', { 'index.html': 'unused' });
    expect((await server.call('DELETE', '/v1/tokens/temp@example.com')).status).toBeLessThan(300);

    // The retention pass as the sweep runs it; then again with nothing kept by age, so records and
    // artifacts really go (the same code and stand-ins, with a zero-day policy).
    await recorder.within('Sweep', async () => {
      await createSweep(async () => server.slipway)({ retention: true }, {} as never);
      const connection = {
        region: LOCAL_REGION,
        credentials: LOCAL_CREDENTIALS,
        endpoints: server.endpoints,
        recordCall: recorder.recordCall,
      };
      const documents = createDocumentClient(connection);
      const objects = createS3Client(connection);
      const retention = createRetention({
        store: createDynamoReleaseStore(documents, LOCAL_TABLE),
        objects: createS3ArtifactStore(objects, LOCAL_BUCKET, systemClock),
        workflow: server.executor,
        clock: { now: () => new Date(Date.now() + 1000) },
        logger: silentLogger,
        policy: { releaseDays: 0, artifactDays: 0 },
      });
      expect((await retention.sweepReleases()).length).toBeGreaterThan(0);
      expect((await retention.sweepArtifacts()).length).toBeGreaterThan(0);
      documents.destroy();
      objects.destroy();
    });
    await server.settle();
  });

  it('attributes every call made after start-up to a function', () => {
    const stray = calls.slice(setup).filter((call) => call.fn === 'unknown');
    expect(stray.map((c) => `${c.operation} ${c.resource}`)).toEqual([]);
  });

  it('grants every function each AWS action it used, on the resource it used it on; lists grants nothing used', async () => {
    const made = [...calls.slice(setup), ...(await recordPortCalls(refs))].map((call) => ({
      ...call,
      resource: stackArn(call.resource, refs, NAMES),
    }));
    const verdict = judge(made, permissions(refs));
    // SLIPWAY_IAM_CALLS=1 prints every distinct call, with what made it.
    if (process.env.SLIPWAY_IAM_CALLS) console.log([...new Set(made.map((c) => `${c.fn} ${c.action} ${c.resource} ${c.note ?? ''}`))].sort().join('\n'));
    const line = (f: { fn: string; action: string; resource: string; because: string[] }) => `${f.fn}: ${f.action} on ${f.resource} (${f.because.join('; ')})`;
    console.log(
      [
        `IAM proof: ${made.length} calls recorded, ${new Set(made.map((c) => `${c.fn} ${c.action} ${c.resource}`)).size} distinct.`,
        'Granted only under conditions (not evaluated here):',
        ...verdict.conditional.map((f) => `  ${line(f)}`),
        'Grants no recorded call used:',
        ...Object.entries(verdict.unused).flatMap(([fn, grants]) => grants.map((grant) => `  ${fn}: ${grant}`)),
      ].join('\n'),
    );
    expect(verdict.unauthorised.map(line)).toEqual([]);
  });
});
