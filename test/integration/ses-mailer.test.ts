import { SESv2Client } from '@aws-sdk/client-sesv2';
import { createSesMailer } from '@slipway/aws';
import { DependencyUnavailableError } from '@slipway/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWireFake } from '../support/wire-fake.ts';

/** No local SES exists: this checks the wire request against SESv2's REST protocol. */
let status = 200;
let fake: Awaited<ReturnType<typeof startWireFake>>;
let client: SESv2Client;

beforeAll(async () => {
  fake = await startWireFake(
    () =>
      status === 200
        ? { body: { MessageId: 'm-1' } }
        : { status, body: { message: 'slow down' }, errorType: 'TooManyRequestsException' },
    'application/json',
  );
  client = new SESv2Client(fake.clientOptions(2));
});
afterAll(async () => {
  client.destroy();
  await fake.close();
});
describe('SES mailer', () => {
  it('sends text and HTML from the configured sender', async () => {
    await createSesMailer(client, 'deploys@example.com').send({
      to: ['lead@example.com'],
      subject: 'Approve shop 1.4.0 for production?',
      text: 'plain',
      html: '<p>html</p>',
    });
    expect(fake.requests.at(-1)).toEqual({
      method: 'POST',
      path: '/v2/email/outbound-emails',
      target: '',
      body: {
        FromEmailAddress: 'deploys@example.com',
        Destination: { ToAddresses: ['lead@example.com'] },
        Content: {
          Simple: {
            Subject: { Data: 'Approve shop 1.4.0 for production?', Charset: 'UTF-8' },
            Body: { Text: { Data: 'plain', Charset: 'UTF-8' }, Html: { Data: '<p>html</p>', Charset: 'UTF-8' } },
          },
        },
      },
    });
  });

  it('retries throttling, then reports it as retryable', async () => {
    status = 429;
    const before = fake.requests.length;
    const sending = createSesMailer(client, 'deploys@example.com').send({ to: ['a@example.com'], subject: 's', text: 't', html: 'h' });
    await expect(sending).rejects.toThrow(DependencyUnavailableError);
    expect(fake.requests.length - before).toBe(2);
    status = 200;
  });
});
