/**
 * What each function's package is made of, besides the stages (infra/definitions.ts): its handler
 * and the files copied next to its bundle. A plain module (no SST globals; only core's stage table)
 * so the bundle test starts every function the stack deploys from this very list.
 */
import { STAGE_NAMES, STAGES } from '../packages/core/src/stage-table.ts';

/** Every Lambda runs on this; SST derives the esbuild target from `runtime` (nodejs22.x: es2023). */
export const LAMBDA_RUNTIME = { runtime: 'nodejs22.x', architecture: 'arm64', timeout: '60 seconds', memory: '512 MB' } as const;

/** The functions EventBridge invokes: SSM command status, failed executions, the schedule. */
export const EVENT_HANDLERS = {
  CommandStatus: 'functions/command-status.handler',
  ExecutionFailed: 'functions/execution-failed.handler',
  Sweep: 'functions/sweep.handler',
} as const;

/**
 * The HTTP API. The dashboard's files sit next to its bundle (SST copies `to` relative to the
 * package root, where `bundle.mjs` is); it reads each on the first request for it. No other
 * function carries or reads them.
 */
export const API_FUNCTION = {
  handler: 'functions/api.handler',
  copyFiles: ['index.html', 'dashboard.js', 'dashboard.css'].map((file) => ({ from: `packages/dashboard/src/${file}`, to: file })),
} as const;

/**
 * The secrets, each an SSM Parameter Store SecureString the stack makes from its SST secret
 * (infra/secrets.ts) under `/<app>/<stage>/<parameter>`. A function's environment carries the
 * variable naming the parameter (never the value) only for the secrets it is granted below.
 */
export const SECRETS = {
  SigningKey: { parameter: 'signing-key', variable: 'SLIPWAY_SIGNING_KEY_PARAMETER' },
  AdminToken: { parameter: 'admin-token', variable: 'SLIPWAY_ADMIN_TOKEN_PARAMETER' },
  WebhookSecret: { parameter: 'webhook-secret', variable: 'SLIPWAY_WEBHOOK_SECRET_PARAMETER' },
} as const;
export type SecretName = keyof typeof SECRETS;

/**
 * Which function reads which secret (and may `ssm:GetParameter` it); every other function gets none.
 * From the code:
 * - the signing key keys the CSRF tokens of approval pages (`csrfFor` in core's approvals.ts), which
 *   only the API serves (`GET`/`POST /approvals/{id}`); approval links themselves are random ids,
 *   so the stages that mail them (AwaitApproval, the sweep's retries) need no key;
 * - the admin token is stored hashed by the API (`ensureAdminToken`, at cold start and on rotation);
 * - the webhook secret signs `notifyOutcome`'s deliveries, called by the stages that end a release
 *   (those whose entry in the stage table uses `outcomeWebhooks`: FailEnvironment, RecordFailure,
 *   Finalize), and by ExecutionFailed (which runs `recordFailure`). A cancel from the API ends the
 *   release through those too (FailEnvironment, or ExecutionFailed after StopExecution).
 */
export const FUNCTION_SECRETS: Readonly<Record<string, readonly SecretName[]>> = {
  Api: ['SigningKey', 'AdminToken'],
  ...Object.fromEntries(
    STAGE_NAMES.filter((name) => (STAGES[name].uses as readonly string[]).includes('outcomeWebhooks')).map((name) => [name, ['WebhookSecret']]),
  ),
  ExecutionFailed: ['WebhookSecret'],
};

/** The variables that once carried a secret's value: no function's environment may hold one. */
export const PLAIN_SECRET_VARIABLES = ['SLIPWAY_SIGNING_KEY', 'SLIPWAY_ADMIN_TOKEN', 'SLIPWAY_WEBHOOK_SECRET'] as const;

/**
 * One function's environment: the stack's shared variables plus the names of the parameters it is
 * granted. Refuses a shared variable that looks like it carries a secret's value (its name ends in
 * KEY, SECRET, TOKEN or PASSWORD): `npm run typecheck:infra` cannot see values, this can see names.
 */
export function functionEnvironment<T>(name: string, shared: Record<string, T>, parameterNames: Record<SecretName, T>): Record<string, T> {
  const plain = Object.keys(shared).filter((key) => (PLAIN_SECRET_VARIABLES as readonly string[]).includes(key) || /(KEY|SECRET|TOKEN|PASSWORD)$/.test(key));
  if (plain.length > 0) throw new Error(`${plain.join(', ')} would put a secret in every function's environment: secrets live in SSM (SECRETS)`);
  const granted = (FUNCTION_SECRETS[name] ?? []).map((secret) => [SECRETS[secret].variable, parameterNames[secret]] as const);
  return { ...shared, ...Object.fromEntries(granted) };
}
