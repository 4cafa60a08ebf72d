import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { createSesMailer } from '@slipway/aws';
import { DependencyUnavailableError } from '@slipway/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** No local SES exists: this checks the wire request against SESv2's REST protocol. */
const requests: { method: string; path: string; body: any }[] = [];
let status = 200;
const server = createServer(async (request, response) => {
  let text = '';
  for await (const chunk of request) text += chunk;
  requests.push({ method: String(request.method), path: String(request.url), body: JSON.parse(text) });
  response.writeHead(status, { 'content-type': 'application/json', ...(status === 429 ? { 'x-amzn-errortype': 'TooManyRequestsException' } : {}) });
  response.end(JSON.stringify(status === 200 ? { MessageId: 'm-1' } : { message: 'slow down' }));
});
let client: SESv2Client;

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  client = new SESv2Client({
    region: 'eu-west-1',
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 2,
  });
});
afterAll(() => {
  client.destroy();
  server.close();
});

describe('SES mailer', () => {
  it('sends text and HTML from the configured sender', async () => {
    await createSesMailer(client, 'deploys@example.com').send({
      to: ['lead@example.com'],
      subject: 'Approve shop 1.4.0 for production?',
      text: 'plain',
      html: '<p>html</p>',
    });
    expect(requests.at(-1)).toEqual({
      method: 'POST',
      path: '/v2/email/outbound-emails',
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
    const before = requests.length;
    const sending = createSesMailer(client, 'deploys@example.com').send({ to: ['a@example.com'], subject: 's', text: 't', html: 'h' });
    await expect(sending).rejects.toThrow(DependencyUnavailableError);
    expect(requests.length - before).toBe(2);
    status = 200;
  });
});
