/** The verified sender of approval and outcome mails. */
export const sender = process.env.SLIPWAY_SENDER ?? 'deploys@example.com';
export const email = new sst.aws.Email('Sender', { sender });
