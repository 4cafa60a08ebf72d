import { SECRETS, type SecretName } from './handlers';

/**
 * The secrets. Each is set once per stage as an SST secret (`npx sst secret set SigningKey ...`;
 * SST keeps it encrypted in its state), and the stack writes it to an SSM Parameter Store
 * SecureString, `/<app>/<stage>/<parameter>`, encrypted with the AWS managed key `aws/ssm`. Functions
 * get only the parameter's name, and only the functions infra/handlers.ts grants it to; they read
 * the value at cold start through Powertools' parameters, cached for five minutes.
 *
 * - SigningKey: keys the CSRF tokens of approval pages; at least 32 characters.
 * - AdminToken: the bootstrap admin token; 16 to 256 of A-Z a-z 0-9 _ -.
 * - WebhookSecret: signs webhook deliveries (`X-Slipway-Signature`); at least 32 characters.
 */
export const signingKey = new sst.Secret('SigningKey');
export const adminToken = new sst.Secret('AdminToken');
export const webhookSecret = new sst.Secret('WebhookSecret');

const values: Record<SecretName, sst.Secret> = { SigningKey: signingKey, AdminToken: adminToken, WebhookSecret: webhookSecret };

/** Each secret's SecureString parameter. */
export const secretParameters = Object.fromEntries(
  (Object.keys(SECRETS) as SecretName[]).map((secret) => [
    secret,
    new aws.ssm.Parameter(`${secret}Parameter`, {
      name: `/${$app.name}/${$app.stage}/${SECRETS[secret].parameter}`,
      type: 'SecureString',
      value: values[secret].value,
      description: `Slipway ${secret} (from the SST secret ${secret}); read by the functions granted it`,
    }),
  ]),
) as Record<SecretName, aws.ssm.Parameter>;

/** What functions are granted (infra/permissions.ts): each parameter's ARN. */
export const secretParameterArns = $util.all(
  Object.fromEntries(Object.entries(secretParameters).map(([secret, parameter]) => [secret, parameter.arn])),
) as unknown as $util.Output<Record<SecretName, string>>;

/** What a granted function's environment carries: each parameter's name, never its value. */
export const secretParameterNames = Object.fromEntries(
  Object.entries(secretParameters).map(([secret, parameter]) => [secret, parameter.name]),
) as Record<SecretName, $util.Output<string>>;
