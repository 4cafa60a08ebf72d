import { SendEmailCommand, type SESv2Client } from '@aws-sdk/client-sesv2';
import type { Mailer } from '@slipway/core';
import { translateSdkError } from './errors.ts';

/** Mail through SES (v2 SendEmail), from the sender address the stack verified. */
export function createSesMailer(client: SESv2Client, from: string): Mailer {
  return {
    async send(mail) {
      try {
        await client.send(
          new SendEmailCommand({
            FromEmailAddress: from,
            Destination: { ToAddresses: mail.to },
            Content: {
              Simple: {
                Subject: { Data: mail.subject, Charset: 'UTF-8' },
                Body: { Text: { Data: mail.text, Charset: 'UTF-8' }, Html: { Data: mail.html, Charset: 'UTF-8' } },
              },
            },
          }),
        );
      } catch (error) {
        throw translateSdkError(error, 'SES (send email)');
      }
    },
  };
}
