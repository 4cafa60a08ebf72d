import { createDocumentClient, createS3Client } from '@slipway/aws';
import { describe, expect, it } from 'vitest';

describe('the AWS SDK clients', () => {
  it('carry no SDK logger middleware, which copied every answer through a filter for a logger that drops it', () => {
    const connection = { region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } };
    for (const client of [createDocumentClient(connection), createS3Client(connection)]) {
      const names = client.middlewareStack.identify();
      expect(names.length).toBeGreaterThan(5);
      expect(names.filter((name) => name.startsWith('loggerMiddleware'))).toEqual([]);
    }
  });
});
