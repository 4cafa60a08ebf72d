import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for an AWS API that has no local server: it records every request (method, path,
 * X-Amz-Target, JSON body) and answers with whatever the test's responder returns.
 */
export interface WireRequest {
  method: string;
  path: string;
  target: string;
  body: any;
}

export interface WireReply {
  status?: number;
  body: unknown;
  /** Sets x-amzn-errortype, which the SDK reads for the error's name. */
  errorType?: string;
}

export async function startWireFake(respond: (request: WireRequest) => WireReply, contentType = 'application/x-amz-json-1.1') {
  const requests: WireRequest[] = [];
  const server = createServer(async (incoming: IncomingMessage, response) => {
    let text = '';
    for await (const chunk of incoming) text += chunk;
    const request = {
      method: String(incoming.method),
      path: String(incoming.url),
      target: String(incoming.headers['x-amz-target'] ?? ''),
      body: text ? JSON.parse(text) : undefined,
    };
    requests.push(request);
    const reply = respond(request);
    response.writeHead(reply.status ?? 200, {
      'content-type': contentType,
      ...(reply.errorType ? { 'x-amzn-errortype': reply.errorType } : {}),
    });
    response.end(JSON.stringify(reply.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    /** Client options pointing an SDK client at the fake. */
    clientOptions: (maxAttempts: number) => ({
      region: 'eu-west-1',
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts,
    }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
