import { requireSender } from './sender';

/** The verified sender of approval and outcome mails (SLIPWAY_SENDER, required at deploy). */
export const sender = requireSender(process.env);
export const email = new sst.aws.Email('Sender', { sender });
