import { SESv2Client } from '@aws-sdk/client-sesv2';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import {
  ConfigurationError,
  createLogger,
  createSlipway,
  createUlidGenerator,
  parse,
  type ReleaseStages,
  type Slipway,
  type SlipwayDeps,
  systemClock,
  ValidationError,
} from '@slipway/core';
import { z } from 'zod';
import { createDocumentClient, createS3Client } from './clients.ts';
import { createDynamoApprovalStore } from './dynamo-approval-store.ts';
import { createDynamoAuditStore } from './dynamo-audit-store.ts';
import { createDynamoReleaseStore } from './dynamo-release-store.ts';
import { createSesMailer } from './ses-mailer.ts';
import { createUnsignedWebhookRefusal, createWebhookNotifier } from './webhook-notifier.ts';
import { createDynamoTokenStore } from './dynamo-token-store.ts';
import { createS3ArtifactStore } from './s3-artifact-store.ts';
import { createStepFunctionsWorkflow } from './sfn-workflow.ts';
import { createSsmFleet } from './ssm-fleet.ts';

const AwsEnvironment = z.object({
  AWS_REGION: z.string().min(1),
  SLIPWAY_TABLE: z.string().min(1),
  SLIPWAY_BUCKET: z.string().min(1),
  SLIPWAY_RELEASE_STATE_MACHINE_ARN: z.string().startsWith('arn:'),
  SLIPWAY_ROLLBACK_STATE_MACHINE_ARN: z.string().startsWith('arn:'),
  SLIPWAY_ADMIN_TOKEN: z.string().min(16).optional(),
  SLIPWAY_SENDER: z.email(),
  SLIPWAY_BASE_URL: z.url().refine((url) => url.startsWith('https://'), 'must be an https URL').transform((url) => url.replace(/\/+$/, '')),
  SLIPWAY_SIGNING_KEY: z.string().min(32, 'must be at least 32 characters of secret'),
  /** Signs webhook deliveries. From the environment like the other secrets until they move to SSM. */
  SLIPWAY_WEBHOOK_SECRET: z.string().min(32, 'must be at least 32 characters of secret').optional(),
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

/** The stage functions: the same wiring, whose `stages` drive SSM Run Command on the fleet. */
export async function loadAwsStages(env: NodeJS.ProcessEnv): Promise<ReleaseStages> {
  return (await loadAwsRuntime(env)).stages!;
}

/** What only some functions bring: the API its dashboard files (no other function carries them). */
export interface AwsRuntimeOptions {
  assets?: SlipwayDeps['assets'];
}

export async function loadAwsRuntime(env: NodeJS.ProcessEnv, options: AwsRuntimeOptions = {}): Promise<Slipway> {
  const config = readAwsEnvironment(env);
  const connection = { region: config.AWS_REGION };
  const documents = createDocumentClient(connection);
  const logger = createLogger({ service: 'slipway-api', level: config.SLIPWAY_LOG_LEVEL });
  const slipway = createSlipway({
    store: createDynamoReleaseStore(documents, config.SLIPWAY_TABLE),
    tokens: createDynamoTokenStore(documents, config.SLIPWAY_TABLE),
    approvalStore: createDynamoApprovalStore(documents, config.SLIPWAY_TABLE),
    auditStore: createDynamoAuditStore(documents, config.SLIPWAY_TABLE),
    objects: createS3ArtifactStore(createS3Client(connection), config.SLIPWAY_BUCKET, systemClock),
    mailer: createSesMailer(new SESv2Client({ region: config.AWS_REGION }), config.SLIPWAY_SENDER),
    notifier: config.SLIPWAY_WEBHOOK_SECRET
      ? createWebhookNotifier({ secret: config.SLIPWAY_WEBHOOK_SECRET })
      : createUnsignedWebhookRefusal('SLIPWAY_WEBHOOK_SECRET'),
    baseUrl: () => config.SLIPWAY_BASE_URL,
    ...(options.assets ? { assets: options.assets } : {}),
    signingKey: config.SLIPWAY_SIGNING_KEY,
    fleet: createSsmFleet({
      ssm: new SSMClient({ region: config.AWS_REGION }),
      documents,
      tableName: config.SLIPWAY_TABLE,
      outputBucket: config.SLIPWAY_BUCKET,
    }),
    workflow: createStepFunctionsWorkflow(
      new SFNClient({ region: config.AWS_REGION }),
      config.SLIPWAY_RELEASE_STATE_MACHINE_ARN,
      config.SLIPWAY_ROLLBACK_STATE_MACHINE_ARN,
    ),
    clock: systemClock,
    ids: createUlidGenerator(),
    logger,
  });
  if (config.SLIPWAY_ADMIN_TOKEN) await slipway.auth.ensureAdminToken(config.SLIPWAY_ADMIN_TOKEN);
  return slipway;
}
