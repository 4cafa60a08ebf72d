/**
 * Every function the stack deploys, bundled the way SST bundles it, started alone in an empty folder
 * in its own Node process, and invoked with a real event against the local stand-ins.
 *
 * How SST v4 bundles a Node function, read from its source: anomalyco/sst (formerly sst/sst) at tag
 * v4.17.0, commit 8bfe1c1bddd2e935d3b174460302a60ce25789e2, `pkg/runtime/node/build.go` (the same text
 * as 340618eeceb98f53df598b70f29bcbb3754d507b) and `pkg/runtime/node/node.go`; its
 * `platform/src/components/aws/function.ts` is byte-identical to the one the installed sst 4.17.1
 * writes to `.sst/platform/`. With no `nodejs` options (infra/functions.ts passes none):
 * - esbuild (Go API, v0.27.2 per go.mod) with one entry point, `bundle: true`, `platform: 'node'`,
 *   `format: 'esm'`, `outfile: <out>/bundle.mjs`; the Lambda handler becomes `bundle.<export>`;
 * - `target` from the runtime: nodejs20.x and nodejs22.x -> es2023, nodejs24.x -> es2024;
 * - `mainFields: ['module', 'main']`, no extra `conditions`, `keepNames: true`, `splitting: false`,
 *   esbuild's default loaders, its own tsconfig.json lookup, the project root as working directory;
 * - `external`: only `sharp` and `pg-native` (plus `nodejs.install`): `@aws-sdk/*` is bundled, the
 *   runtime's copy of the SDK is never used;
 * - banner: `import { createRequire as topLevelCreateRequire } from 'module'; const require = ...`
 *   plus `__filename` and `__dirname` from `import.meta.url`;
 * - minify only when `nodejs.minify` is true: the Go field is a plain bool, so the default is off
 *   (the option's doc comment says "@default true"; the code does not);
 * - sourcemap `linked`, but the `.map` is left out of the zip (uploaded to the bootstrap bucket);
 * - the zip holds the bundle folder at its root, then each `copyFiles` entry: `from` relative to
 *   sst.config.ts, `to` relative to the package root, i.e. next to `bundle.mjs`.
 * This test uses the installed esbuild (0.28) with those options, without source maps.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { ERROR_NAMES, type StageInput, type StageName } from '@slipway/core';
import { DASHBOARD_FILES } from '@slipway/dashboard';
import { build, type Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STAGE_HANDLERS } from '../../infra/definitions.ts';
import { API_FUNCTION, EVENT_HANDLERS, FUNCTION_SECRETS, functionEnvironment, LAMBDA_RUNTIME, SECRETS, type SecretName } from '../../infra/handlers.ts';
import { sha256, shopConfigInput } from '../support/fixtures.ts';
import { localDynamo, localS3 } from '../support/stand-ins.ts';
import { startWireFake, type WireReply, type WireRequest } from '../support/wire-fake.ts';

const ROOT = resolve(import.meta.dirname, '../..');
/** SST's `targetMap`, by Lambda runtime. */
const SST_TARGETS: Record<string, string> = { 'nodejs24.x': 'es2024', 'nodejs22.x': 'es2023', 'nodejs20.x': 'es2023', 'nodejs18.x': 'es2022' };
const SST_BANNER = [
  'import { createRequire as topLevelCreateRequire } from \'module\';',
  'const require = topLevelCreateRequire(import.meta.url);',
  'import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from "url"',
  'const __filename = topLevelFileUrlToPath(import.meta.url)',
  'const __dirname = topLevelFileUrlToPath(new topLevelURL(".", import.meta.url))',
  '',
].join('\n');
/** SST's `getFile`: the handler's file is the first of these extensions that exists. */
const NODE_EXTENSIONS = ['.ts', '.tsx', '.mts', '.cts', '.js', '.jsx', '.mjs', '.cjs'];

interface Deployed {
  name: string;
  handler: string;
  copyFiles: readonly { from: string; to: string }[];
}

/** Every function the stack deploys, from the same tables infra/functions.ts builds them from. */
const FUNCTIONS: Deployed[] = [
  ...Object.entries(STAGE_HANDLERS).map(([name, handler]) => ({ name, handler, copyFiles: [] })),
  ...Object.entries(EVENT_HANDLERS).map(([name, handler]) => ({ name, handler, copyFiles: [] })),
  { name: 'Api', handler: API_FUNCTION.handler, copyFiles: API_FUNCTION.copyFiles },
];

function entryOf(handler: string) {
  const dot = handler.lastIndexOf('.');
  const base = handler.slice(0, dot);
  const file = NODE_EXTENSIONS.map((ext) => `${base}${ext}`).find((candidate) => existsSync(join(ROOT, candidate)));
  if (!file) throw new Error(`no file for handler ${handler}`);
  return { file, exported: handler.slice(dot + 1) };
}

const REGION = 'eu-west-1';
const TABLE = 'slipway-bundle-test';
const BUCKET = 'slipway-bundle-test';
const ADMIN_TOKEN = `slw_admin_${'a'.repeat(40)}`;

/** The SecureString parameters the stack makes (infra/secrets.ts), and what the wire fake's SSM holds in them. */
const PARAMETER_NAMES: Record<SecretName, string> = {
  SigningKey: '/slipway/test/signing-key',
  AdminToken: '/slipway/test/admin-token',
  WebhookSecret: '/slipway/test/webhook-secret',
};
const SECRET_VALUES: Record<SecretName, string> = {
  SigningKey: `signing-${'s'.repeat(48)}`,
  AdminToken: ADMIN_TOKEN,
  WebhookSecret: `webhook-${'w'.repeat(48)}`,
};

/** SSM's GetParameter (JSON protocol, target AmazonSSM.GetParameter) as AWS answers it; anything else: an empty document. */
function answer(request: WireRequest): WireReply {
  if (request.target !== 'AmazonSSM.GetParameter') return { body: {} };
  const secret = (Object.keys(PARAMETER_NAMES) as SecretName[]).find((name) => PARAMETER_NAMES[name] === request.body?.Name);
  if (!secret) return { status: 400, errorType: 'ParameterNotFound', body: { __type: 'ParameterNotFound', message: '' } };
  const Name = PARAMETER_NAMES[secret];
  return {
    body: {
      Parameter: {
        Name,
        Type: 'SecureString',
        Value: SECRET_VALUES[secret],
        Version: 1,
        DataType: 'text',
        LastModifiedDate: 1_750_000_000,
        ARN: `arn:aws:ssm:${REGION}:123456789012:parameter${Name}`,
      },
    },
  };
}

// Valid events for ids nothing knows: each function must start, reach the store and answer.
const RELEASE = 'no-such-release';
const TOKEN = 'a-task-token-no-execution-holds';
const BATCH = { taskToken: TOKEN, releaseId: RELEASE, environment: 'production', batchIndex: 0 };
const STAGE_EVENTS = {
  Prepare: { releaseId: RELEASE, app: 'shop' },
  EnterEnvironment: { taskToken: TOKEN, releaseId: RELEASE, environment: 'production' },
  Distribute: { taskToken: TOKEN, releaseId: RELEASE, environment: 'production' },
  AwaitApproval: { taskToken: TOKEN, releaseId: RELEASE, environment: 'production' },
  SwitchBatch: BATCH,
  Watch: { releaseId: RELEASE, environment: 'production', batchIndex: 0 },
  Pause: BATCH,
  CompleteEnvironment: { releaseId: RELEASE, environment: 'production' },
  PlanRevert: { releaseId: RELEASE, environment: 'production', failure: { Error: 'HostCommandFailedError', Cause: 'exit 1' } },
  RevertBatch: BATCH,
  FailEnvironment: { releaseId: RELEASE, environment: 'production', failure: { Error: 'HostCommandFailedError', Cause: 'exit 1' } },
  RecordFailure: { releaseId: RELEASE, failure: { Error: 'States.Timeout', Cause: 'the task timed out' } },
  Prune: { taskToken: TOKEN, releaseId: RELEASE },
  Finalize: { releaseId: RELEASE },
} satisfies { [N in StageName]: StageInput<N> };

const eventBridge = (source: string, detailType: string, detail: unknown) => ({
  version: '0',
  id: randomUUID(),
  'detail-type': detailType,
  source,
  account: '123456789012',
  time: new Date().toISOString(),
  region: REGION,
  resources: [],
  detail,
});

function httpEvent(method: string, path: string, body?: unknown, token?: string) {
  const now = new Date();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: {
      host: 'abc123.execute-api.eu-west-1.amazonaws.com',
      'user-agent': 'bundle-test',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'bundle-test' },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    isBase64Encoded: false,
  };
}

const ARTIFACT = Buffer.from('an artifact, uploaded through the URL the API bundle signs');
const ARTIFACT_SHA = sha256(ARTIFACT);

function eventsFor(name: string): unknown[] {
  if (name in STAGE_EVENTS) return [STAGE_EVENTS[name as StageName]];
  switch (name) {
    case 'CommandStatus':
      return [eventBridge('aws.ssm', 'EC2 Command Status-change Notification', { 'command-id': randomUUID(), status: 'Success' })];
    case 'ExecutionFailed':
      return [
        eventBridge('aws.states', 'Step Functions Execution Status Change', {
          executionArn: `arn:aws:states:${REGION}:123456789012:execution:slipway-ReleaseStateMachine:${RELEASE}`,
          name: RELEASE,
          status: 'TIMED_OUT',
          error: null,
          cause: null,
        }),
      ];
    case 'Sweep':
      // The two schedules of infra/events.ts: the minute one (a Scheduled Event) and retention.
      return [eventBridge('aws.events', 'Scheduled Event', {}), { retention: true }];
    case 'Api':
      return [
        httpEvent('GET', '/healthz'),
        ...['/', '/dashboard.js', '/dashboard.css'].map((path) => httpEvent('GET', path)),
        httpEvent('PUT', '/v1/apps/shop', shopConfigInput, ADMIN_TOKEN),
        httpEvent('POST', '/v1/artifacts', { app: 'shop', sha256: ARTIFACT_SHA, size: ARTIFACT.length }, ADMIN_TOKEN),
      ];
    default:
      throw new Error(`no event for ${name}: add one`);
  }
}

/**
 * Runs in the function's folder, as Lambda's runtime would: import the bundle, then call its handler
 * once per event. The last stdout line that starts with the marker carries the outcome.
 */
const MARKER = '@@bundle-test@@';
const RUNNER = `
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
const [bundle, exported, events] = [process.argv[1], process.argv[2], JSON.parse(process.argv[3])];
const describe = (error) => ({ name: error?.name, message: String(error?.message ?? error), code: error?.code, stack: String(error?.stack ?? '').split('\\n').slice(0, 6).join('\\n') });
const report = (value) => process.stdout.write('\\n${MARKER}' + JSON.stringify(value) + '\\n');
const before = performance.now();
let module;
try {
  module = await import(pathToFileURL(resolve(bundle)).href);
} catch (error) {
  report({ imported: false, error: describe(error) });
  process.exit(1);
}
const loaded = performance.now();
const outcomes = [];
for (const [index, event] of events.entries()) {
  const context = {
    callbackWaitsForEmptyEventLoop: true, functionName: process.env.AWS_LAMBDA_FUNCTION_NAME, functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:' + process.env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: '512', awsRequestId: 'request-' + index, logGroupName: 'bundle-test', logStreamName: 'bundle-test',
    getRemainingTimeInMillis: () => 60000, done() {}, fail() {}, succeed() {},
  };
  try {
    outcomes.push({ result: (await module[exported](event, context)) ?? null, atMs: performance.now() });
  } catch (error) {
    outcomes.push({ error: describe(error), atMs: performance.now() });
  }
}
report({ imported: true, importMs: loaded - before, loadedMs: loaded, outcomes });
process.exit(0);
`;

interface Outcome {
  result?: any;
  /** When it answered, in ms after the process started. */
  atMs: number;
  error?: { name?: string; message: string; code?: string; stack: string };
}
interface Run {
  imported: boolean;
  error?: Outcome['error'];
  importMs?: number;
  loadedMs?: number;
  outcomes?: Outcome[];
  output: string;
}

function start(folder: string, name: string, exported: string, events: unknown[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      ['--input-type=module', '--eval', RUNNER, './bundle.mjs', exported, JSON.stringify(events)],
      { cwd: folder, env: { ...env, AWS_LAMBDA_FUNCTION_NAME: `slipway-test-${name}`, LAMBDA_TASK_ROOT: folder }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`;
        const line = stdout.split('\n').filter((l) => l.startsWith(MARKER)).at(-1);
        if (!line) {
          resolvePromise({ imported: false, error: { name: 'NoReport', message: String(error ?? 'no report'), stack: '' }, output });
          return;
        }
        resolvePromise({ ...(JSON.parse(line.slice(MARKER.length)) as Omit<Run, 'output'>), output });
      },
    );
  });
}

/** A Slipway error a stage raises on purpose, once it has looked in the store; never a start failure. */
const DOMAIN_ERRORS = Object.keys(ERROR_NAMES).filter((name) => !['ValidationError', 'ConfigurationError', 'DependencyUnavailableError'].includes(name));

describe('each deployed function, bundled as SST bundles it, starts alone and answers', () => {
  let workspace: string;
  let dynamo: Awaited<ReturnType<typeof localDynamo>>;
  let s3: Awaited<ReturnType<typeof localS3>>;
  /** What Lambda's runtime gives every function; each also gets its own wire fake. */
  let env: Record<string, string>;
  /** The stack's environment for every function; each also gets the names of the parameters it is granted. */
  let shared: Record<string, string>;
  let metafile: Metafile;
  const measured: { name: string; kB: number; importMs: number; loadedMs: number; firstMs: number; answers: string }[] = [];

  beforeAll(async () => {
    workspace = await mkdtemp(join(tmpdir(), 'slipway-bundles-'));
    const target = SST_TARGETS[LAMBDA_RUNTIME.runtime];
    if (!target) throw new Error(`SST has no esbuild target for ${LAMBDA_RUNTIME.runtime}`);
    const [bundled, dynamoServer, s3Server] = await Promise.all([
      // One esbuild call, one output folder per function: SST builds each alone with the same options.
      build({
        absWorkingDir: ROOT,
        entryPoints: FUNCTIONS.map((fn) => ({ in: entryOf(fn.handler).file, out: `${fn.name}/bundle` })),
        outdir: workspace,
        outExtension: { '.js': '.mjs' },
        bundle: true,
        platform: 'node',
        format: 'esm',
        target,
        mainFields: ['module', 'main'],
        keepNames: true,
        splitting: false,
        external: ['sharp', 'pg-native'],
        banner: { js: SST_BANNER },
        metafile: true,
        logLevel: 'silent',
      }),
      localDynamo(TABLE),
      localS3(BUCKET),
    ]);
    metafile = bundled.metafile;
    dynamo = dynamoServer;
    s3 = s3Server;
    for (const fn of FUNCTIONS) {
      for (const file of fn.copyFiles) await copyFile(join(ROOT, file.from), join(workspace, fn.name, file.to));
    }
    // What the Lambda gets: the runtime's region and credentials (here with DynamoDB and S3 pointed
    // at their stand-ins), and the stack's shared environment (sst.config.ts). No secret.
    env = {
      AWS_REGION: REGION,
      AWS_DEFAULT_REGION: REGION,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_SESSION_TOKEN: 'bundle-test',
      AWS_EXECUTION_ENV: `AWS_Lambda_${LAMBDA_RUNTIME.runtime}`,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_ENDPOINT_URL_S3: s3.endpoint,
    };
    shared = {
      SLIPWAY_TABLE: TABLE,
      SLIPWAY_BUCKET: BUCKET,
      SLIPWAY_RELEASE_STATE_MACHINE_ARN: `arn:aws:states:${REGION}:123456789012:stateMachine:slipway-test-ReleaseStateMachine`,
      SLIPWAY_ROLLBACK_STATE_MACHINE_ARN: `arn:aws:states:${REGION}:123456789012:stateMachine:slipway-test-RollbackStateMachine`,
      SLIPWAY_SENDER: 'deploys@example.com',
      SLIPWAY_BASE_URL: 'https://abc123.execute-api.eu-west-1.amazonaws.com',
    };
  }, 120_000);

  afterAll(async () => {
    if (measured.length > 0) {
      const ms = (value: number) => `${value.toFixed(0).padStart(4)} ms`;
      const rows = measured.map((m) => {
        const size = `${m.kB.toFixed(0)} kB`.padStart(8);
        return `  ${m.name.padEnd(20)} ${size}  import ${ms(m.importMs)}; after process start: handler loaded ${ms(m.loadedMs)}, first answer ${ms(m.firstMs)} (${m.answers})`;
      });
      console.log(['function bundles (SST options), alone in their folder:', ...rows].join('\n'));
    }
    await Promise.all([dynamo?.close(), s3?.close()]);
    if (workspace) await rm(workspace, { recursive: true, force: true });
  });

  /**
   * Starts the function alone with its own wire fake for SFN, SSM and SES (they have no local
   * server): the fake answers GetParameter from the stack's SecureString parameters and any other
   * call with an empty JSON document, and records what this one process asked.
   */
  async function run(fn: Deployed) {
    const folder = join(workspace, fn.name);
    expect((await readdir(folder)).sort()).toEqual(['bundle.mjs', ...fn.copyFiles.map((f) => f.to)].sort());
    const wire = await startWireFake(answer);
    const own = {
      ...env,
      ...functionEnvironment(fn.name, shared, PARAMETER_NAMES),
      AWS_ENDPOINT_URL_SFN: wire.endpoint,
      AWS_ENDPOINT_URL_SSM: wire.endpoint,
      AWS_ENDPOINT_URL_SESV2: wire.endpoint,
    };
    const outcome = await start(folder, fn.name, entryOf(fn.handler).exported, eventsFor(fn.name), own).finally(() => wire.close());
    expect(outcome.imported, `${fn.name} did not start: ${JSON.stringify(outcome.error)}\n${outcome.output}`).toBe(true);
    // Its secrets: asked for once each (the cold start; every later use hits the cache), decrypted,
    // only those it is granted; never in its environment, never in what it printed.
    const granted = (FUNCTION_SECRETS[fn.name] ?? []).map((secret) => PARAMETER_NAMES[secret]);
    const asked = wire.requests.filter((r) => r.target === 'AmazonSSM.GetParameter').map((r) => r.body as { Name: string; WithDecryption?: boolean });
    expect(asked.map((r) => r.Name).sort(), `${fn.name} read these parameters`).toEqual([...granted].sort());
    for (const request of asked) expect(request.WithDecryption, request.Name).toBe(true);
    for (const value of Object.values(SECRET_VALUES)) {
      expect(Object.values(own), fn.name).not.toContain(value);
      expect(outcome.output.includes(value), `${fn.name} printed a secret`).toBe(false);
    }
    for (const secret of FUNCTION_SECRETS[fn.name] ?? []) {
      expect(own[SECRETS[secret].variable as keyof typeof own]).toBe(PARAMETER_NAMES[secret]);
    }
    const { size } = await stat(join(folder, 'bundle.mjs'));
    const answers = outcome.outcomes!.map((o) => o.error?.name ?? o.result?.statusCode ?? 'ok').join(', ');
    const { importMs, loadedMs } = outcome as Required<Run>;
    measured.push({ name: fn.name, kB: size / 1024, importMs, loadedMs, firstMs: outcome.outcomes![0]!.atMs, answers });
    return outcome.outcomes!;
  }

  it('bundles the dashboard into the API only, and gives the API exactly the files the dashboard reads', () => {
    for (const fn of FUNCTIONS) {
      const [, output] = Object.entries(metafile.outputs).find(([file]) => file.endsWith(`/${fn.name}/bundle.mjs`))!;
      const dashboard = Object.keys(output.inputs).filter((input) => input.startsWith('packages/dashboard/'));
      expect(dashboard, fn.name).toEqual(fn.name === 'Api' ? ['packages/dashboard/src/index.ts'] : []);
    }
    const files = Object.values(DASHBOARD_FILES).map(({ file }) => file);
    expect(API_FUNCTION.copyFiles).toEqual(files.map((file) => ({ from: `packages/dashboard/src/${file}`, to: file })));
  });

  const stageNames = Object.keys(STAGE_HANDLERS) as StageName[];
  it.each(stageNames)('%s starts and reaches the store', async (name) => {
    const [outcome] = await run(FUNCTIONS.find((fn) => fn.name === name)!);
    // A release nobody opened: the stage answers, or refuses with a domain error after looking.
    if (outcome!.error) expect(DOMAIN_ERRORS, `${name}: ${outcome!.error.name}: ${outcome!.error.message}\n${outcome!.error.stack}`).toContain(outcome!.error.name);
  });

  it('CommandStatus hears of a command no step knows, and returns', async () => {
    const [outcome] = await run(FUNCTIONS.find((fn) => fn.name === 'CommandStatus')!);
    expect(outcome).toMatchObject({ result: null });
  });

  it('ExecutionFailed hears of an execution no release knows, and answers', async () => {
    const [outcome] = await run(FUNCTIONS.find((fn) => fn.name === 'ExecutionFailed')!);
    if (outcome!.error) expect(DOMAIN_ERRORS, `${outcome!.error.name}: ${outcome!.error.message}`).toContain(outcome!.error.name);
  });

  it('Sweep runs both schedules on an empty store', async () => {
    const [minute, retention] = await run(FUNCTIONS.find((fn) => fn.name === 'Sweep')!);
    expect(minute).toMatchObject({ result: { expired: 0, reconciled: 0 } });
    expect(retention).toMatchObject({ result: { releases: 0, artifacts: 0 } });
  });

  it('Api answers /healthz, serves the dashboard from its package, and signs an upload the local S3 takes', async () => {
    const [health, page, script, style, app, upload] = await run(FUNCTIONS.find((fn) => fn.name === 'Api')!);
    expect(health!.result).toMatchObject({ statusCode: 200 });
    expect(JSON.parse(health!.result.body)).toEqual({ ok: true });
    expect(page!.result).toMatchObject({ statusCode: 200, headers: { 'content-type': 'text/html; charset=utf-8' } });
    expect(page!.result.body).toContain('dashboard.js');
    expect(script!.result).toMatchObject({ statusCode: 200, headers: { 'content-type': 'text/javascript; charset=utf-8' } });
    expect(style!.result).toMatchObject({ statusCode: 200, headers: { 'content-type': 'text/css; charset=utf-8' } });
    expect(app!.result, app!.result?.body ?? app!.error?.message).toMatchObject({ statusCode: 200 });
    expect(upload!.result, upload!.result?.body ?? upload!.error?.message).toMatchObject({ statusCode: 201 });
    const ticket = JSON.parse(upload!.result.body) as { key: string; uploadUrl: string };
    // Path-style against an IP endpoint: the SDK's S3 endpoint rules pick it themselves, no option needed.
    const url = new URL(ticket.uploadUrl);
    expect([url.host, url.pathname]).toEqual([new URL(s3.endpoint).host, `/${BUCKET}/${ticket.key}`]);
    const put = await fetch(ticket.uploadUrl, {
      method: 'PUT',
      body: ARTIFACT,
      headers: { 'x-amz-checksum-sha256': Buffer.from(ARTIFACT_SHA, 'hex').toString('base64') },
    });
    expect(put.status, await put.text()).toBe(200);
    const stored = await s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: ticket.key }));
    expect(stored.ContentLength).toBe(ARTIFACT.length);
  });
});
