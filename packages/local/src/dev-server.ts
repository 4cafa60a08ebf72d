import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { type CallRecorder, createDocumentClient, createS3Client, createStorageAdapters, createWebhookNotifier } from '@slipway/aws';
import {
  type AppConfig,
  composeSlipway,
  createLogger,
  fetchHttpProbe,
  createUlidGenerator,
  generateToken,
  type Logger,
  type LogLevel,
  type Mailer,
  type Slipway,
  systemClock,
} from '@slipway/core';
import { dashboardAssets } from '@slipway/dashboard';
import { createCommandStatus, createSweep, STAGE_FUNCTIONS } from '@slipway/functions';
import { getRequestListener } from '@hono/node-server';
import type { Context } from 'aws-lambda';
import { DEFAULT_OUTPUT_RETENTION_DAYS } from './config.ts';
import { createFileAlarmMonitor } from './alarms.ts';
import { DEMO_APP, demoHosts } from './demo.ts';
import { createLocalExecutor, type LocalExecutor, type LocalFunction, renderDefinition } from './executor.ts';
import { createRoutedFleet, type SshSettings } from './routed-fleet.ts';
import { createOutbox } from './outbox.ts';
import {
  ensureBucket,
  ensureTable,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  type RunningServer,
  localObjectFile,
  objectsReadInPlace,
  startLocalDynamo,
  startLocalS3,
} from './stand-ins.ts';

export const LOCAL_TABLE = 'slipway';
const STATE_MACHINES = fileURLToPath(new URL('../../../statemachines/', import.meta.url));
export const LOCAL_BUCKET = 'slipway-artifacts';
/** Old command output and mails are looked for at start-up, then this often. */
const RETENTION_PASS_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface DevServerOptions {
  dataDir: string;
  /** 0 picks a free port. */
  port: number;
  adminToken?: string;
  logLevel?: LogLevel;
  /** Where JSON log lines go; stdout by default. */
  writeLog?: (line: string) => void;
  /** Create the demo app and its fleet folders on first start. */
  demo?: boolean;
  /** Signs webhook deliveries (`SLIPWAY_WEBHOOK_SECRET`); when absent, one is made once and kept in the data folder. */
  webhookSecret?: string;
  /**
   * Days host command folders and outbox mails are kept (`SLIPWAY_RETENTION_OUTPUT_DAYS`); 30 by
   * default. The release record has its own copy of each host's output.
   */
  outputRetentionDays?: number;
  /**
   * The mailer Slipway sends with, given the outbox it uses by default: tests wrap it (a mailer that
   * refuses, as SES can) without a switch in the production code.
   */
  mailer?: (outbox: Mailer) => Mailer;
  /**
   * Told every AWS call the runtime's DynamoDB and S3 clients send, each tagged with the function (as
   * infra/ names it: Api, Prepare, Sweep...) it was made for: what proves IAM (test/iam). Absent, the
   * clients carry no recorder and nothing tracks which function runs.
   */
  recorder?: CallRecorder;
  /** The SSH fleet (`SLIPWAY_SSH_IDENTITY`, `SLIPWAY_SSH_KNOWN_HOSTS`); without it, SSH targets are refused. */
  ssh?: SshSettings;
  /**
   * Folder hosts and this server read the artifact from the S3 stand-in's file (true, the default),
   * or hosts download it with the presigned URL as a host elsewhere does and the server reads it
   * through S3 (false: the tests of those paths, and the IAM proof, which sees only S3 calls).
   */
  artifactsInPlace?: boolean;
}

export interface DevServer {
  url: string;
  dataDir: string;
  adminToken: string;
  /** True when this start generated the admin token (so it should be shown once). */
  adminTokenGenerated: boolean;
  slipway: Slipway;
  executor: LocalExecutor;
  endpoints: { dynamodb: string; s3: string };
  /** Waits until no host command is running (at most `timeoutMs`), e.g. before deleting the data. */
  settle(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export function dataPaths(dataDir: string) {
  return {
    dynamodb: join(dataDir, 'dynamodb'),
    s3: join(dataDir, 's3'),
    s3Port: join(dataDir, 's3-port'),
    fleet: join(dataDir, 'fleet'),
    outbox: join(dataDir, 'outbox'),
    commands: join(dataDir, 'commands'),
    adminToken: join(dataDir, 'admin-token'),
    signingKey: join(dataDir, 'signing-key'),
    webhookSecret: join(dataDir, 'webhook-secret'),
    alarms: join(dataDir, 'alarms'),
  };
}

async function loadOrCreateAdminToken(file: string, fromEnvironment?: string) {
  if (fromEnvironment) return { token: fromEnvironment, generated: false };
  try {
    const token = (await readFile(file, 'utf8')).trim();
    if (token) return { token, generated: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const token = generateToken();
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return { token, generated: true };
}

/** A secret (the CSRF key of approval pages, the webhook secret): made once, kept with the data. */
async function loadOrCreateSecret(file: string): Promise<string> {
  try {
    const secret = (await readFile(file, 'utf8')).trim();
    if (secret.length >= 32) return secret;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = randomBytes(32).toString('base64url');
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

function lambdaContext(requestId: string): Context {
  const deadline = Date.now() + 30_000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'slipway-api',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:slipway-api',
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    logGroupName: 'local',
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

async function seedDemo(slipway: Slipway, fleetDir: string, logger: Logger) {
  const existing = await slipway.apps.list();
  if (existing.includes(DEMO_APP.name)) return;
  const config: AppConfig = await slipway.apps
    .put(DEMO_APP.name, DEMO_APP, { name: 'bootstrap', role: 'admin' })
    .then((stored) => stored.config);
  for (const host of demoHosts(config)) {
    await mkdir(join(fleetDir, host, 'releases'), { recursive: true });
    await mkdir(join(fleetDir, host, 'shared'), { recursive: true });
  }
  logger.info('demo app created', { app: config.name, hosts: demoHosts(config).length });
}

export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const dataDir = resolve(options.dataDir);
  const paths = dataPaths(dataDir);
  await mkdir(dataDir, { recursive: true });
  const logger = createLogger({
    service: 'slipway-dev',
    level: options.logLevel ?? 'info',
    ...(options.writeLog ? { write: options.writeLog } : {}),
  });

  const started: RunningServer[] = [];
  /** Set once the fleet exists: a start that fails after it stops its launcher too. */
  let closeFleet = () => {};
  const stopAll = async () => {
    for (const server of started.reverse()) await server.close().catch(() => {});
  };
  try {
    const dynamo = await startLocalDynamo(paths.dynamodb).catch((error: Error) => {
      // LevelDB's own code for a folder another server holds (a LOCK file it cannot open is another error).
      if ((error as NodeJS.ErrnoException).code === 'LEVEL_LOCKED') {
        throw new Error(
          `${dataDir} is in use by another Slipway dev server; stop it or set SLIPWAY_DATA_DIR`,
          {
            cause: error,
          },
        );
      }
      throw error;
    });
    started.push(dynamo);
    const s3 = await startLocalS3(paths.s3, paths.s3Port);
    started.push(s3);

    const connection = {
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      endpoints: { dynamodb: dynamo.endpoint, s3: s3.endpoint },
    };
    const { recorder } = options;
    /** Runs one function's invocation, so that the calls it leads to are recorded as that function's. */
    const asFunction = <T>(name: string, invoke: () => T): T => (recorder ? recorder.within(name, invoke) : invoke());
    const documents = createDocumentClient({ ...connection, ...(recorder ? { recordCall: recorder.recordCall } : {}) });
    const objects = createS3Client({ ...connection, ...(recorder ? { recordCall: recorder.recordCall } : {}) });
    await ensureTable(documents, LOCAL_TABLE);
    await ensureBucket(objects, LOCAL_BUCKET);

    const ids = createUlidGenerator();
    const executor = createLocalExecutor({
      // The executor stands in for Step Functions: its journal is no function's, so never recorded.
      client: recorder ? createDocumentClient(connection) : documents,
      tableName: LOCAL_TABLE,
      machines: {
        release: renderDefinition(await readFile(join(STATE_MACHINES, 'release.asl.json'), 'utf8')),
        rollback: renderDefinition(await readFile(join(STATE_MACHINES, 'rollback.asl.json'), 'utf8')),
      },
      ids,
      logger,
      // On AWS the ExecutionFailed function, on the execution's status event.
      onFailed: async (execution, error) => {
        const releaseId = String(execution.input.releaseId);
        await asFunction('ExecutionFailed', () => stages.recordFailure({ releaseId, failure: error }));
      },
    });
    const commandStatus = createCommandStatus(async () => stages);
    // Hosts and this server read the artifact from the S3 stand-in's file, unless told not to.
    const artifactsInPlace = options.artifactsInPlace !== false;
    const fleet = await createRoutedFleet(options.ssh, {
      fleetDir: paths.fleet,
      commandsDir: paths.commands,
      logger,
      ...(artifactsInPlace
        ? { artifactFile: (artifactUrl: string) => localObjectFile({ endpoint: s3.endpoint, directory: paths.s3 }, artifactUrl) }
        : {}),
      onCommandFinished: async (commandId) => {
        await asFunction('CommandStatus', () =>
          commandStatus(
            {
              source: 'aws.ssm',
              'detail-type': 'EC2 Command Status-change Notification',
              detail: { 'command-id': commandId, status: 'Success' },
            },
            lambdaContext(ids.next()),
          ),
        );
      },
    });
    closeFleet = () => fleet.close();
    const outbox = createOutbox(paths.outbox, ids);
    const bucketAdapters = createStorageAdapters(documents, LOCAL_TABLE, objects, LOCAL_BUCKET, systemClock);
    const storage = artifactsInPlace
      ? { ...bucketAdapters, objects: objectsReadInPlace(bucketAdapters.objects, { directory: paths.s3, bucket: LOCAL_BUCKET }) }
      : bucketAdapters;
    let url = '';
    const slipway = composeSlipway(
      {
        // The same table and bucket adapters as on Lambda, against dynalite and s3rver.
        ...storage,
        workflow: executor,
        fleet,
        refuseTargets: fleet.refuseTargets,
        // Analyses probe from this server; an alarm is a file under <dataDir>/alarms (alarms.ts).
        analysis: { http: fetchHttpProbe, alarms: createFileAlarmMonitor(paths.alarms) },
        mailer: options.mailer ? options.mailer(outbox) : outbox,
        notifier: createWebhookNotifier({ secret: options.webhookSecret ?? (await loadOrCreateSecret(paths.webhookSecret)) }),
        outbox,
        clock: systemClock,
        ids,
        logger,
        assets: dashboardAssets(),
      },
      { baseUrl: () => url, signingKey: await loadOrCreateSecret(paths.signingKey) },
    );
    const stages = slipway.stages!;
    const registry: Record<string, LocalFunction> = {};
    for (const [name, module] of Object.entries(STAGE_FUNCTIONS)) {
      const handler = module.create(async () => stages);
      registry[name] = (payload) => asFunction(name, () => handler(payload, lambdaContext(ids.next())));
    }
    executor.register(registry);

    const admin = await loadOrCreateAdminToken(paths.adminToken, options.adminToken);
    // On AWS the API stores the admin token at its cold start.
    await asFunction('Api', () => slipway.auth.ensureAdminToken(admin.token));
    if (options.demo ?? true) await seedDemo(slipway, paths.fleet, logger);

    // The same hono app as on Lambda, on Node; its calls are recorded as the Api function's.
    const http: Server = createServer(
      getRequestListener(async (request, env) => {
        const response = await asFunction('Api', () => slipway.api.fetch(request, env));
        // The rest of a refused body is drained, not read: no further request shares that connection.
        if (response.status === 413) response.headers.set('connection', 'close');
        return response;
      }, {
        // Leave the process's own Request and Response alone: tests and the CLI share this process.
        overrideGlobalObjects: false,
        errorHandler: (error) => {
          logger.error('dev server failed to answer', { error });
          return new Response(JSON.stringify({ error: { code: 'internal', message: 'internal error', details: null } }), {
            status: 500,
            headers: { 'content-type': 'application/json' },
          });
        },
      }),
    );
    await new Promise<void>((resolveListen, reject) => {
      http.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'EADDRINUSE'
            ? new Error(`port ${options.port} is in use; set PORT to another one`, { cause: error })
            : error,
        ),
      );
      http.listen(options.port, '127.0.0.1', () => resolveListen());
    });
    const { port } = http.address() as AddressInfo;
    url = `http://127.0.0.1:${port}`;
    logger.info('dev server listening', { url, dataDir, dynamodb: dynamo.endpoint, s3: s3.endpoint });
    // Whatever a crash or a stop left unfinished goes on: executions from their last state, host
    // commands that finished meanwhile reported now.
    await executor.resumeAll();
    await fleet.reconcile();
    // Nothing was serving before this start: every pending release without an execution is an orphan.
    await asFunction('Sweep', () => slipway.releases.startOrphans(50, 0));
    // Approval gates expire by the clock, not by a timer in a process that may restart.
    const sweepFunction = createSweep(async () => slipway);
    const sweepHandler = (event: unknown, context: Context) => asFunction('Sweep', () => sweepFunction(event, context));
    let sweeping: Promise<unknown> | undefined;
    // The local retention pass: at start-up, then hourly from the sweep timer (one readdir and a
    // few stats per command folder, so never more often).
    const retentionMs = (options.outputRetentionDays ?? DEFAULT_OUTPUT_RETENTION_DAYS) * DAY_MS;
    let lastPrune = 0;
    let pruning: Promise<unknown> | undefined;
    const pruneOldOutput = () => {
      lastPrune = Date.now();
      const olderThan = new Date(lastPrune - retentionMs);
      // The same retention pass as on AWS (old release records, unused artifacts), then local output.
      pruning ??= sweepHandler({ retention: true }, lambdaContext(ids.next()))
        .then(() => Promise.all([fleet.prune(olderThan), outbox.prune(olderThan)]))
        .then(([commands, mails]) => {
          if (commands.length + mails.length > 0) {
            logger.info('old local output deleted', { commands: commands.length, mails: mails.length, olderThan: olderThan.toISOString() });
          }
        })
        .catch((error: unknown) => logger.error('deleting old local output failed', { error }))
        .finally(() => {
          pruning = undefined;
        });
      return pruning;
    };
    await pruneOldOutput();
    const sweep = setInterval(() => {
      sweeping ??= sweepHandler({}, lambdaContext(ids.next()))
        .catch((error: unknown) => logger.error('the sweep failed', { error }))
        .finally(() => {
          sweeping = undefined;
        });
      if (Date.now() - lastPrune >= RETENTION_PASS_MS) void pruneOldOutput();
    }, 1000);

    return {
      url,
      dataDir,
      adminToken: admin.token,
      adminTokenGenerated: admin.generated,
      slipway,
      executor,
      endpoints: { dynamodb: dynamo.endpoint, s3: s3.endpoint },
      settle: (timeoutMs = 30_000) => fleet.settle(timeoutMs),
      async close() {
        await new Promise<void>((resolveClose) => {
          http.close(() => resolveClose());
          http.closeAllConnections();
        });
        clearInterval(sweep);
        await sweeping;
        await pruning;
        fleet.close();
        await executor.close();
        await stopAll();
      },
    };
  } catch (error) {
    closeFleet();
    await stopAll();
    throw error;
  }
}
