import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SFNClient } from '@aws-sdk/client-sfn';
import { createStepFunctionsWorkflow } from '@slipway/aws';
import { DependencyUnavailableError } from '@slipway/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * No local Step Functions server exists, so this checks the wire requests the adapter sends against
 * the documented JSON protocol, answering as the service does.
 */
const requests: { target: string; body: any }[] = [];
let answer: { status: number; body: unknown } = { status: 200, body: {} };
const server = createServer(async (request: IncomingMessage, response) => {
  let text = '';
  for await (const chunk of request) text += chunk;
  requests.push({ target: String(request.headers['x-amz-target']), body: JSON.parse(text) });
  response.writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.0' });
  response.end(JSON.stringify(answer.body));
});
let client: SFNClient;
const arn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:slipway-release';

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  client = new SFNClient({
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

describe('Step Functions workflow', () => {
  it('starts an execution named by the release id with the release as input', async () => {
    answer = {
      status: 200,
      body: { executionArn: `${arn.replace('stateMachine', 'execution')}:r1`, startDate: 1 },
    };
    const workflow = createStepFunctionsWorkflow(client, arn);
    const started = await workflow.startRelease({ releaseId: '01abc', app: 'shop' });
    expect(started.executionId).toBe(`${arn.replace('stateMachine', 'execution')}:r1`);
    expect(requests.at(-1)).toEqual({
      target: 'AWSStepFunctions.StartExecution',
      body: {
        stateMachineArn: arn,
        name: '01abc',
        input: JSON.stringify({ releaseId: '01abc', app: 'shop' }),
      },
    });
  });

  it('turns throttling into a retryable domain error after the SDK retries', async () => {
    answer = {
      status: 400,
      body: { __type: 'com.amazonaws.swf.service.v2.model#ThrottlingException', message: 'slow down' },
    };
    const before = requests.length;
    const workflow = createStepFunctionsWorkflow(client, arn);
    await expect(workflow.startRelease({ releaseId: '01def', app: 'shop' })).rejects.toThrow(
      DependencyUnavailableError,
    );
    expect(requests.length - before).toBe(2);
  });
});
