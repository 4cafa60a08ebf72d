import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient, createS3Client } from '@slipway/aws';
import { describe, expect, it } from 'vitest';

const credentials = { accessKeyId: 'x', secretAccessKey: 'y' };

describe('the AWS SDK clients', () => {
  it('carry no SDK logger middleware, which copied every answer through a filter for a logger that drops it', () => {
    const connection = { region: 'eu-west-1', credentials };
    for (const client of [createDocumentClient(connection), createS3Client(connection)]) {
      const names = client.middlewareStack.identify();
      expect(names.length).toBeGreaterThan(5);
      expect(names.filter((name) => name.startsWith('loggerMiddleware'))).toEqual([]);
    }
  });

  it('sign with SigV4 on AWS, and send the local DynamoDB a fixed Authorization header it accepts instead', async () => {
    const onAws = createDocumentClient({ region: 'eu-west-1', credentials }).middlewareStack.identify();
    expect(onAws.some((name) => name.startsWith('httpSigningMiddleware'))).toBe(true);

    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((request, response) => {
      seen.push(request.headers);
      request.resume().on('end', () => {
        response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const local = createDocumentClient({ region: 'eu-west-1', credentials, endpoints: { dynamodb: endpoint } });
    try {
      expect(local.middlewareStack.identify().some((name) => name.startsWith('httpSigningMiddleware'))).toBe(false);
      await local.send(new GetCommand({ TableName: 't', Key: { pk: 'a', sk: 'b' } }));
      await local.send(new GetCommand({ TableName: 't', Key: { pk: 'c', sk: 'd' } }));
    } finally {
      local.destroy();
      server.close();
    }
    // The same header for different requests: nothing was signed. dynalite checks its shape only.
    expect(seen).toHaveLength(2);
    expect(seen[0]!.authorization).toBe(seen[1]!.authorization);
    expect(seen[0]!.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=x\/\d{8}\/eu-west-1\/dynamodb\/aws4_request, SignedHeaders=\S+, Signature=\S+$/);
    expect(seen[0]!['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
  });
});
