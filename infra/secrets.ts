/** Secrets live in SST secrets (SSM Parameter Store), never in code: `npx sst secret set SigningKey ...`. */
export const signingKey = new sst.Secret('SigningKey');
export const adminToken = new sst.Secret('AdminToken');
/** Signs webhook deliveries (`X-Slipway-Signature`); at least 32 characters. Reaches functions as SLIPWAY_WEBHOOK_SECRET. */
export const webhookSecret = new sst.Secret('WebhookSecret');
