import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AWS_SECRET_PARAMETERS, loadAwsRuntime, SECRET_MAX_AGE_SECONDS, SECRET_RETRY_SECONDS, signWebhook } from '@slipway/aws';
import { ConfigurationError, DependencyUnavailableError, type Release } from '@slipway/core';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createApiHandler } from '../../functions/api.ts';
import { localDynamo, localS3 } from '../support/stand-ins.ts';
import { startWireFake, type WireReply, type WireRequest } from '../support/wire-fake.ts';

/**
 * The Lambda runtime's secrets, against a wire fake of SSM's GetParameter (JSON protocol) and the
 * local DynamoDB and S3: each parameter is read once per cold start and again only after the
 * cache's maxAge, a rotated value reaches a warm function, a missing parameter stops the cold start
 * by name, and no value ever reaches the log.
 */
const REGION = 'eu-west-1';
const TABLE = 'slipway-secrets-test';
const BUCKET = 'slipway-secrets-test';
const NAMES = { signingKey: '/slipway/test/signing-key', adminToken: '/slipway/test/admin-token', webhookSecret: '/slipway/test/webhook-secret' };
/** Fresh values for each test: a bootstrap admin token once replaced stays revoked in the shared table. */
const values = (which: string) => {
  const unique = randomUUID().replaceAll('-', '');
  return {
    signingKey: `signing-key-${which}-${unique}`,
    adminToken: `slw_admin_${which}_${unique}`,
    webhookSecret: `webhook-secret-${which}-${unique}`,
  };
};
let FIRST: ReturnType<typeof values>;
let SECOND: ReturnType<typeof values>;

/** What SSM holds now; a name mapped to an error type answers that error. */
let store: Map<string, string | { error: string; status: number }>;
function answer(request: WireRequest): WireReply {
  if (request.target !== 'AmazonSSM.GetParameter') return { body: {} };
  const Name = String(request.body?.Name);
  const held = store.get(Name);
  if (held === undefined) return { status: 400, errorType: 'ParameterNotFound', body: { __type: 'ParameterNotFound', message: '' } };
  if (typeof held !== 'string') return { status: held.status, errorType: held.error, body: { __type: held.error, message: `${held.error} for ${Name}` } };
  return { body: { Parameter: { Name, Type: 'SecureString', Value: held, Version: 1, DataType: 'text', LastModifiedDate: 1_750_000_000 } } };
}

let dynamo: Awaited<ReturnType<typeof localDynamo>>;
let s3: Awaited<ReturnType<typeof localS3>>;
let ssm: Awaited<ReturnType<typeof startWireFake>>;
let receiver: Server;
let hookUrl: string;
const hooks: { headers: IncomingHttpHeaders; raw: string }[] = [];
/** Everything the process printed while a runtime ran: the log, and anything else. */
let printed: string[] = [];

const baseEnv = () => ({
  AWS_REGION: REGION,
  SLIPWAY_TABLE: TABLE,
  SLIPWAY_BUCKET: BUCKET,
  SLIPWAY_RELEASE_STATE_MACHINE_ARN: `arn:aws:states:${REGION}:123456789012:stateMachine:slipway-test-ReleaseStateMachine`,
  SLIPWAY_ROLLBACK_STATE_MACHINE_ARN: `arn:aws:states:${REGION}:123456789012:stateMachine:slipway-test-RollbackStateMachine`,
  SLIPWAY_SENDER: 'deploys@example.com',
  SLIPWAY_BASE_URL: 'https://abc123.execute-api.eu-west-1.amazonaws.com',
  SLIPWAY_LOG_LEVEL: 'debug',
});
/** The Api's environment: the names of the signing key's and the admin token's parameters. */
const apiEnv = () => ({
  ...baseEnv(),
  [AWS_SECRET_PARAMETERS.signingKey]: NAMES.signingKey,
  [AWS_SECRET_PARAMETERS.adminToken]: NAMES.adminToken,
});
/** A stage that ends releases (Finalize, RecordFailure, ...): the webhook secret's name only. */
const stageEnv = () => ({ ...baseEnv(), [AWS_SECRET_PARAMETERS.webhookSecret]: NAMES.webhookSecret });

const reads = (name: string) => ssm.requests.filter((r) => r.target === 'AmazonSSM.GetParameter' && r.body?.Name === name);

function request(path: string, token?: string): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { host: 'abc123.execute-api.eu-west-1.amazonaws.com', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: { method: 'GET', path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'secrets-test' },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    isBase64Encoded: false,
  };
}
const context = { awsRequestId: 'secrets-test', getRemainingTimeInMillis: () => 60_000 } as unknown as Context;

/** The API Lambda as functions/api.ts builds it: one runtime per cold start, invoked as often as asked. */
function apiFunction() {
  let runtime: ReturnType<typeof loadAwsRuntime> | undefined;
  const handler = createApiHandler(async () => {
    runtime ??= loadAwsRuntime(apiEnv());
    return (await runtime).api;
  });
  return async (path: string, token?: string) => (await handler(request(path, token), context)).statusCode;
}

/** A release as notifyOutcome reads it: whom to tell and where its webhook is. */
const endedRelease = (): Release => ({ id: randomUUID(), app: 'shop', version: '1.0.0', openedBy: 'ci-bot', config: { webhookUrl: hookUrl } }) as unknown as Release;
const signedWith = (secret: string, hook: { headers: IncomingHttpHeaders; raw: string }) =>
  hook.headers['x-slipway-signature'] === signWebhook(secret, String(hook.headers['x-slipway-timestamp']), hook.raw);

beforeAll(async () => {
  [dynamo, s3, ssm] = await Promise.all([localDynamo(TABLE), localS3(BUCKET), startWireFake(answer)]);
  receiver = createServer(async (incoming, response) => {
    let raw = '';
    for await (const chunk of incoming) raw += chunk;
    hooks.push({ headers: incoming.headers, raw });
    response.writeHead(204).end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});
afterAll(async () => {
  receiver?.closeAllConnections();
  await Promise.all([dynamo?.close(), s3?.close(), ssm?.close(), new Promise((resolve) => receiver?.close(resolve))]);
});

beforeEach(() => {
  FIRST = values('one');
  SECOND = values('two');
  store = new Map([
    [NAMES.signingKey, FIRST.signingKey],
    [NAMES.adminToken, FIRST.adminToken],
    [NAMES.webhookSecret, FIRST.webhookSecret],
  ]);
  ssm.requests.length = 0;
  hooks.length = 0;
  // The SDK clients of the runtime find their endpoints and credentials where Lambda's would.
  vi.stubEnv('AWS_ENDPOINT_URL_SSM', ssm.endpoint);
  vi.stubEnv('AWS_ENDPOINT_URL_SFN', ssm.endpoint);
  vi.stubEnv('AWS_ENDPOINT_URL_SESV2', ssm.endpoint);
  vi.stubEnv('AWS_ENDPOINT_URL_DYNAMODB', dynamo.endpoint);
  vi.stubEnv('AWS_ENDPOINT_URL_S3', s3.endpoint);
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'S3RVER');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'S3RVER');
  vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
  printed = [];
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    vi.spyOn(stream, 'write').mockImplementation(((chunk: unknown, ...rest: unknown[]) => {
      printed.push(String(chunk));
      return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write);
  }
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  // Whatever happened in the test, no value of any secret was printed.
  const output = printed.join('');
  for (const value of [...Object.values(FIRST), ...Object.values(SECOND)]) expect(output.includes(value), 'a secret value was printed').toBe(false);
});

describe('secrets in the Lambda runtime', () => {
  it('reads each granted parameter once per cold start, decrypted, and not again within maxAge', async () => {
    const invoke = apiFunction();
    expect(await invoke('/healthz')).toBe(200);
    expect(await invoke('/v1/tokens', FIRST.adminToken)).toBe(200);
    expect(await invoke('/v1/tokens', FIRST.adminToken)).toBe(200);
    expect(reads(NAMES.signingKey)).toHaveLength(1);
    expect(reads(NAMES.adminToken)).toHaveLength(1);
    // Not granted to the API, so never asked for.
    expect(reads(NAMES.webhookSecret)).toHaveLength(0);
    for (const read of ssm.requests) expect(read.body).toMatchObject({ WithDecryption: true });
  });

  it('reads again after maxAge: a rotated admin token and signing key reach a warm API, with no cold start', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const invoke = apiFunction();
    expect(await invoke('/v1/tokens', FIRST.adminToken)).toBe(200);
    store.set(NAMES.adminToken, SECOND.adminToken);
    store.set(NAMES.signingKey, SECOND.signingKey);

    vi.setSystemTime(Date.now() + (SECRET_MAX_AGE_SECONDS - 10) * 1000);
    expect(await invoke('/v1/tokens', FIRST.adminToken)).toBe(200);
    expect([reads(NAMES.signingKey).length, reads(NAMES.adminToken).length]).toEqual([1, 1]);

    vi.setSystemTime(Date.now() + 20_000);
    // The first request after maxAge reads both again; the new bootstrap token replaces the old.
    expect(await invoke('/v1/tokens', SECOND.adminToken)).toBe(200);
    expect(await invoke('/v1/tokens', FIRST.adminToken)).toBe(401);
    expect([reads(NAMES.signingKey).length, reads(NAMES.adminToken).length]).toEqual([2, 2]);
    const log = printed.join('');
    expect(log).toContain('the signing key was rotated');
    expect(log).toContain('the bootstrap admin token was rotated');
  });

  it('signs each webhook with the secret as it is now: the rotated one once maxAge has passed', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const slipway = await loadAwsRuntime(stageEnv());
    expect(reads(NAMES.webhookSecret)).toHaveLength(1);
    await slipway.approvals.notifyOutcome(endedRelease(), 'succeeded');
    store.set(NAMES.webhookSecret, SECOND.webhookSecret);
    await slipway.approvals.notifyOutcome(endedRelease(), 'failed', 'a host failed');
    expect(reads(NAMES.webhookSecret)).toHaveLength(1);

    vi.setSystemTime(Date.now() + (SECRET_MAX_AGE_SECONDS + 1) * 1000);
    await slipway.approvals.notifyOutcome(endedRelease(), 'succeeded');
    expect(reads(NAMES.webhookSecret)).toHaveLength(2);
    expect(hooks.map((hook) => [signedWith(FIRST.webhookSecret, hook), signedWith(SECOND.webhookSecret, hook)])).toEqual([
      [true, false],
      [true, false],
      [false, true],
    ]);
    // A stage is granted neither the signing key nor the admin token, and asks for neither.
    expect(reads(NAMES.signingKey).length + reads(NAMES.adminToken).length).toBe(0);
  });

  it('stops the cold start when a parameter is missing, naming it and the variable', async () => {
    store.delete(NAMES.webhookSecret);
    const failure = await loadAwsRuntime(stageEnv()).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConfigurationError);
    expect((failure as Error).message).toBe(
      `the SSM parameter ${NAMES.webhookSecret} (SLIPWAY_WEBHOOK_SECRET_PARAMETER) does not exist: set its SST secret and deploy, or create it as a SecureString`,
    );
  });

  it('stops the cold start on a parameter it may not read or a value that cannot be used, and never says the value', async () => {
    store.set(NAMES.adminToken, { error: 'AccessDeniedException', status: 400 });
    const denied = await loadAwsRuntime(apiEnv()).catch((error: unknown) => error);
    expect(denied).toBeInstanceOf(ConfigurationError);
    expect((denied as Error).message).toMatch(/^the SSM parameter \/slipway\/test\/admin-token \(SLIPWAY_ADMIN_TOKEN_PARAMETER\) could not be read: AccessDeniedException/);

    store.set(NAMES.adminToken, FIRST.adminToken);
    store.set(NAMES.signingKey, 'short-signing-key');
    const short = await loadAwsRuntime(apiEnv()).catch((error: unknown) => error);
    expect(short).toBeInstanceOf(ConfigurationError);
    expect((short as Error).message).toBe(`the SSM parameter ${NAMES.signingKey} (SLIPWAY_SIGNING_KEY_PARAMETER) must hold at least 32 characters of secret`);
    expect((short as Error).message).not.toContain('short-signing-key');
  });

  it('answers a throttled read at cold start with a retryable error', async () => {
    store.set(NAMES.webhookSecret, { error: 'ThrottlingException', status: 400 });
    const throttled = await loadAwsRuntime(stageEnv()).catch((error: unknown) => error);
    expect(throttled).toBeInstanceOf(DependencyUnavailableError);
    expect((throttled as Error).message).toContain(NAMES.webhookSecret);
  });

  it('keeps the last good value when a value read after maxAge cannot be used, says so by name only, and asks again later', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const invoke = apiFunction();
    expect(await invoke('/v1/tokens', FIRST.adminToken)).toBe(200);
    store.set(NAMES.signingKey, 'too-short-to-sign');
    vi.setSystemTime(Date.now() + (SECRET_MAX_AGE_SECONDS + 1) * 1000);
    expect(await invoke('/v1/tokens', FIRST.adminToken)).toBe(200);
    expect(await invoke('/v1/tokens', FIRST.adminToken)).toBe(200);
    expect(reads(NAMES.signingKey)).toHaveLength(2);
    const warnings = printed
      .flatMap((chunk) => chunk.split('\n'))
      .filter((line) => line.includes('a secret could not be read again'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(warnings).toEqual([
      expect.objectContaining({ level: 'warn', parameter: NAMES.signingKey, variable: 'SLIPWAY_SIGNING_KEY_PARAMETER' }),
    ]);
    expect(printed.join('')).not.toContain('too-short-to-sign');
    expect(printed.join('')).not.toContain('the signing key was rotated');

    // Fixed in SSM: read again once the pause is over (past the provider's cache), then cached for maxAge.
    store.set(NAMES.signingKey, SECOND.signingKey);
    vi.setSystemTime(Date.now() + (SECRET_RETRY_SECONDS + 1) * 1000);
    expect(await invoke('/v1/tokens', FIRST.adminToken)).toBe(200);
    expect(await invoke('/v1/tokens', FIRST.adminToken)).toBe(200);
    expect(reads(NAMES.signingKey)).toHaveLength(3);
    expect(printed.join('')).toContain('the signing key was rotated');
  });

  it('refuses a secret in the environment itself, without repeating it', async () => {
    const failure = await loadAwsRuntime({ ...stageEnv(), SLIPWAY_WEBHOOK_SECRET: FIRST.webhookSecret }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConfigurationError);
    expect((failure as Error).message).toMatch(/SLIPWAY_WEBHOOK_SECRET must not be set/);
    expect((failure as Error).message).not.toContain(FIRST.webhookSecret);
    expect(ssm.requests).toEqual([]);
  });
});
