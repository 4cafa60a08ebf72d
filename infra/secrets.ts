/** Secrets live in SST secrets (SSM Parameter Store), never in code: `npx sst secret set SigningKey ...`. */
export const signingKey = new sst.Secret('SigningKey');
export const adminToken = new sst.Secret('AdminToken');
