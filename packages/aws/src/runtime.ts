import { randomBytes } from 'node:crypto';
import { GetParameterError, ParameterNotFoundError } from '@aws-lambda-powertools/parameters/errors';
import { SSMProvider } from '@aws-lambda-powertools/parameters/ssm';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { SFNClient } from '@aws-sdk/client-sfn';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { SSMClient } from '@aws-sdk/client-ssm';
import {
  composeSlipway,
  ConfigurationError,
  createLogger,
  createUlidGenerator,
  DependencyUnavailableError,
  fetchHttpProbe,
  isWellFormedToken,
  type Logger,
  type Notifier,
  parse,
  type Slipway,
  type SlipwayAdapters,
  sshTargetProblems,
  systemClock,
  ValidationError,
} from '@slipway/core';
import { z } from 'zod';
import { createDocumentClient, createS3Client } from './clients.ts';
import { createCloudWatchAlarmMonitor } from './cloudwatch-alarms.ts';
import { translateSdkError } from './errors.ts';
import { createSesMailer } from './ses-mailer.ts';
import { createStepFunctionsWorkflow } from './sfn-workflow.ts';
import { createSsmFleet, SSH_TARGETS_ON_AWS } from './ssm-fleet.ts';
import { createStorageAdapters } from './storage-adapters.ts';
import { createUnsignedWebhookRefusal, createWebhookNotifier, MIN_WEBHOOK_SECRET_LENGTH } from './webhook-notifier.ts';

/**
 * The secrets a function may be given. Each lives in SSM Parameter Store as a SecureString; the
 * function's environment holds only the variable naming the parameter, and only when the function
 * is granted it (infra/handlers.ts says which function gets which).
 */
export const AWS_SECRET_PARAMETERS = {
  /** Keys the CSRF tokens of approval pages. */
  signingKey: 'SLIPWAY_SIGNING_KEY_PARAMETER',
  /** The bootstrap admin token, stored hashed by the API. */
  adminToken: 'SLIPWAY_ADMIN_TOKEN_PARAMETER',
  /** Signs webhook deliveries. */
  webhookSecret: 'SLIPWAY_WEBHOOK_SECRET_PARAMETER',
} as const;
export type AwsSecret = keyof typeof AWS_SECRET_PARAMETERS;

/**
 * How long a secret read from SSM is used before it is read again: a value rotated in Parameter
 * Store reaches every warm function within this, with no redeploy.
 */
export const SECRET_MAX_AGE_SECONDS = 300;
/** After a read that failed, how long the last good value is used before SSM is asked again. */
export const SECRET_RETRY_SECONDS = 30;

/** What a usable value of each secret looks like; the answer never repeats the value. */
const SECRET_CHECKS: Record<AwsSecret, (value: string) => string | undefined> = {
  signingKey: (value) => (value.length >= 32 ? undefined : 'must hold at least 32 characters of secret'),
  adminToken: (value) => (isWellFormedToken(value) ? undefined : 'must hold 16 to 256 characters of A-Z, a-z, 0-9, "_" and "-"'),
  webhookSecret: (value) =>
    value.length >= MIN_WEBHOOK_SECRET_LENGTH ? undefined : `must hold at least ${MIN_WEBHOOK_SECRET_LENGTH} characters of secret`,
};

/** The variables that once carried a secret's value: a Lambda that still has one is refused. */
const PLAIN_SECRETS = {
  SLIPWAY_SIGNING_KEY: AWS_SECRET_PARAMETERS.signingKey,
  SLIPWAY_ADMIN_TOKEN: AWS_SECRET_PARAMETERS.adminToken,
  SLIPWAY_WEBHOOK_SECRET: AWS_SECRET_PARAMETERS.webhookSecret,
} as const;

const ParameterName = z
  .string()
  .regex(/^(\/[A-Za-z0-9_.-]+)+$/, 'must be an SSM parameter name such as /slipway/prod/signing-key')
  .max(1011);
const refused = (parameter: string) =>
  z.never({ error: `must not be set: a secret never travels in the environment; ${parameter} names its SSM parameter` }).optional();

const AwsEnvironment = z.object({
  AWS_REGION: z.string().min(1),
  SLIPWAY_TABLE: z.string().min(1),
  SLIPWAY_BUCKET: z.string().min(1),
  /** The log group hosts stream command output to (live host output); without it, output is known when a step ends. */
  SLIPWAY_OUTPUT_LOG_GROUP: z.string().min(1).optional(),
  SLIPWAY_RELEASE_STATE_MACHINE_ARN: z.string().startsWith('arn:'),
  SLIPWAY_ROLLBACK_STATE_MACHINE_ARN: z.string().startsWith('arn:'),
  SLIPWAY_SENDER: z.email(),
  SLIPWAY_BASE_URL: z.url().refine((url) => url.startsWith('https://'), 'must be an https URL').transform((url) => url.replace(/\/+$/, '')),
  SLIPWAY_SIGNING_KEY_PARAMETER: ParameterName.optional(),
  SLIPWAY_ADMIN_TOKEN_PARAMETER: ParameterName.optional(),
  SLIPWAY_WEBHOOK_SECRET_PARAMETER: ParameterName.optional(),
  SLIPWAY_SIGNING_KEY: refused(PLAIN_SECRETS.SLIPWAY_SIGNING_KEY),
  SLIPWAY_ADMIN_TOKEN: refused(PLAIN_SECRETS.SLIPWAY_ADMIN_TOKEN),
  SLIPWAY_WEBHOOK_SECRET: refused(PLAIN_SECRETS.SLIPWAY_WEBHOOK_SECRET),
  SLIPWAY_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
});
export type AwsEnvironment = z.infer<typeof AwsEnvironment>;

/** Reads the Lambda environment once; a missing or malformed variable stops the cold start by name. */
export function readAwsEnvironment(env: NodeJS.ProcessEnv): AwsEnvironment {
  try {
    return parse(AwsEnvironment, env, 'environment');
  } catch (error) {
    if (error instanceof ValidationError) {
      const names = error.details.map((p) => `${p.field} ${p.message}`).join('; ');
      throw new ConfigurationError(`the Lambda environment is incomplete: ${names}`, { cause: error });
    }
    throw error;
  }
}

/** What reads parameters: Powertools' SSM provider (its `get` caches each value for `maxAge`). */
export type ParameterSource = Pick<SSMProvider, 'get'>;

/** Why a secret could not be read, naming the parameter and the variable; never the value. */
function secretError(error: unknown, parameter: string, variable: string): Error {
  if (error instanceof ConfigurationError) return error;
  const named = `the SSM parameter ${parameter} (${variable})`;
  if (error instanceof ParameterNotFoundError) {
    return new ConfigurationError(`${named} does not exist: set its SST secret and deploy, or create it as a SecureString`, { cause: error });
  }
  const cause = error instanceof GetParameterError && error.cause !== undefined ? error.cause : error;
  const translated = translateSdkError(cause, named);
  if (translated instanceof DependencyUnavailableError) return translated;
  const reason = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
  return new ConfigurationError(`${named} could not be read: ${reason}`, { cause: error });
}

/**
 * One secret, read through the provider's cache: every call answers the cached value until
 * `maxAge` has passed, then reads the parameter again. A read that fails after the first success
 * (SSM unavailable, a rotated value that is not usable) keeps the last good value, says so in the
 * log by the parameter's name only, and asks SSM again after SECRET_RETRY_SECONDS (past the
 * provider's cache, which may hold the unusable value), not on every call.
 */
function secretReader(source: ParameterSource, secret: AwsSecret, parameter: string, maxAge: number, logger: Logger) {
  const variable = AWS_SECRET_PARAMETERS[secret];
  let last: string | undefined;
  let quietUntil = 0;
  let failing = false;
  return async function read(): Promise<string> {
    if (last !== undefined && Date.now() < quietUntil) return last;
    try {
      const value = await source.get(parameter, { decrypt: true, maxAge, throwOnMissing: true, forceFetch: failing });
      if (typeof value !== 'string') throw new ConfigurationError(`the SSM parameter ${parameter} (${variable}) holds no text`);
      const problem = SECRET_CHECKS[secret](value);
      if (problem) throw new ConfigurationError(`the SSM parameter ${parameter} (${variable}) ${problem}`);
      last = value;
      failing = false;
      return value;
    } catch (error) {
      const failure = secretError(error, parameter, variable);
      if (last === undefined) throw failure;
      failing = true;
      quietUntil = Date.now() + SECRET_RETRY_SECONDS * 1000;
      logger.warn('a secret could not be read again; the value read before stays in use', { parameter, variable, error: failure.message });
      return last;
    }
  };
}

export type SecretReaders = Partial<Record<AwsSecret, () => Promise<string>>>;

/** A reader for each secret this function's environment names a parameter for; none for the others. */
export function createSecretReaders(
  config: AwsEnvironment,
  source: ParameterSource,
  logger: Logger,
  maxAge = SECRET_MAX_AGE_SECONDS,
): SecretReaders {
  const readers: SecretReaders = {};
  for (const [secret, variable] of Object.entries(AWS_SECRET_PARAMETERS) as [AwsSecret, (typeof AWS_SECRET_PARAMETERS)[AwsSecret]][]) {
    const parameter = config[variable];
    if (parameter) readers[secret] = secretReader(source, secret, parameter, maxAge, logger);
  }
  return readers;
}

/** Webhook deliveries signed with the secret as it is now (the cache refreshes it after maxAge). */
function rotatingWebhookNotifier(secret: () => Promise<string>): Notifier {
  return {
    async post(url, payload, deliveryId) {
      return createWebhookNotifier({ secret: await secret() }).post(url, payload, deliveryId);
    },
  };
}

/** What only some functions bring: the API its dashboard files (no other function carries them). */
export interface AwsRuntimeOptions {
  assets?: SlipwayAdapters['assets'];
}

/**
 * Builds the runtime once per cold start. Each secret the function is granted is read from SSM
 * here, once (a missing or unreadable parameter stops the cold start, naming it), then through the
 * provider's cache: webhook deliveries sign with the current secret, and before each API request a
 * rotated signing key rebuilds the use-cases (the core takes the key as a string) and a rotated
 * admin token is stored.
 */
export async function loadAwsRuntime(env: NodeJS.ProcessEnv, options: AwsRuntimeOptions = {}): Promise<Slipway> {
  const config = readAwsEnvironment(env);
  const connection = { region: config.AWS_REGION };
  const documents = createDocumentClient(connection);
  const s3 = createS3Client(connection);
  const ssm = new SSMClient({ region: config.AWS_REGION });
  const logger = createLogger({ service: 'slipway-api', level: config.SLIPWAY_LOG_LEVEL });
  const secrets = createSecretReaders(config, new SSMProvider({ awsSdkV3Client: ssm }), logger);
  const [signingKey, adminToken] = await Promise.all([
    secrets.signingKey?.(),
    secrets.adminToken?.(),
    // Read now so a missing webhook secret stops the cold start, not the first delivery.
    secrets.webhookSecret?.(),
  ]);

  const adapters: SlipwayAdapters = {
    ...createStorageAdapters(documents, config.SLIPWAY_TABLE, s3, config.SLIPWAY_BUCKET, systemClock),
    mailer: createSesMailer(new SESv2Client({ region: config.AWS_REGION }), config.SLIPWAY_SENDER),
    notifier: secrets.webhookSecret
      ? rotatingWebhookNotifier(secrets.webhookSecret)
      : createUnsignedWebhookRefusal(AWS_SECRET_PARAMETERS.webhookSecret),
    ...(options.assets ? { assets: options.assets } : {}),
    // The S3 client reads the tail of a failed host's output, which SSM's own answer cuts short.
    fleet: createSsmFleet({
      ssm,
      documents,
      tableName: config.SLIPWAY_TABLE,
      outputBucket: config.SLIPWAY_BUCKET,
      s3,
      ...(config.SLIPWAY_OUTPUT_LOG_GROUP
        ? { outputLogGroup: config.SLIPWAY_OUTPUT_LOG_GROUP, logs: new CloudWatchLogsClient({ region: config.AWS_REGION }) }
        : {}),
    }),
    refuseTargets: (app) => sshTargetProblems(app, SSH_TARGETS_ON_AWS),
    // Analyses probe from the Watch function; only it is granted cloudwatch:DescribeAlarms.
    analysis: { http: fetchHttpProbe, alarms: createCloudWatchAlarmMonitor(new CloudWatchClient({ region: config.AWS_REGION })) },
    workflow: createStepFunctionsWorkflow(
      new SFNClient({ region: config.AWS_REGION }),
      config.SLIPWAY_RELEASE_STATE_MACHINE_ARN,
      config.SLIPWAY_ROLLBACK_STATE_MACHINE_ARN,
    ),
    clock: systemClock,
    ids: createUlidGenerator(),
    logger,
  };
  // A function not granted the signing key never serves approval pages; should it ever make a CSRF
  // token, one keyed by this process's random bytes verifies nowhere else.
  const build = (key: string | undefined) =>
    composeSlipway(adapters, {
      signingKey: key ?? randomBytes(32).toString('base64url'),
      baseUrl: () => config.SLIPWAY_BASE_URL,
      // API Gateway HTTP APIs answer only once the function returned: a stream could never be followed.
      eventStreams: false,
    });
  const first = build(signingKey);
  if (adminToken) await first.auth.ensureAdminToken(adminToken);
  if (!secrets.signingKey && !secrets.adminToken) return first;

  let current = { signingKey, slipway: first };
  let ensured = adminToken;
  /** The use-cases as of the secrets now: each call costs a cache lookup, a GetParameter once per maxAge. */
  async function fresh(): Promise<Slipway> {
    const key = await secrets.signingKey?.();
    if (key !== current.signingKey) {
      current = { signingKey: key, slipway: build(key) };
      logger.info('the signing key was rotated; approval pages now use the new one', { parameter: config.SLIPWAY_SIGNING_KEY_PARAMETER });
    }
    const token = await secrets.adminToken?.();
    if (token && token !== ensured) {
      try {
        const outcome = await current.slipway.auth.ensureAdminToken(token);
        ensured = token;
        logger.info('the bootstrap admin token was rotated', { parameter: config.SLIPWAY_ADMIN_TOKEN_PARAMETER, outcome });
      } catch (error) {
        // The old bootstrap token keeps working; the next request tries again.
        logger.warn('the rotated bootstrap admin token could not be stored yet', { parameter: config.SLIPWAY_ADMIN_TOKEN_PARAMETER, error });
      }
    }
    return current.slipway;
  }
  return { ...first, api: { ...first.api, fetch: async (request, env) => (await fresh()).api.fetch(request, env) } };
}
