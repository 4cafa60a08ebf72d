import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDocumentClient, createS3Client } from '@slipway/aws';
import {
  ensureBucket,
  ensureTable,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  startLocalDynamo,
  startLocalS3,
} from '@slipway/local';

/** A fresh local DynamoDB (in memory) with the Slipway table, for adapter tests. */
export async function localDynamo(tableName = 'slipway-test') {
  const server = await startLocalDynamo();
  const client = createDocumentClient({
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    endpoints: { dynamodb: server.endpoint },
  });
  await ensureTable(client, tableName);
  let tables = 0;
  return {
    client,
    tableName,
    endpoint: server.endpoint,
    /** A new empty table on the same server, for a test that must not see another's items. */
    async freshTable(prefix: string) {
      tables += 1;
      const name = `${prefix}-${tables}`;
      await ensureTable(client, name);
      return name;
    },
    close: async () => {
      client.destroy();
      await server.close();
    },
  };
}

/** A fresh local S3 on disk with one bucket. */
export async function localS3(bucket = 'slipway-test') {
  const directory = await mkdtemp(join(tmpdir(), 'slipway-s3-'));
  const server = await startLocalS3(directory);
  const client = createS3Client({
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    endpoints: { s3: server.endpoint },
  });
  await ensureBucket(client, bucket);
  return {
    client,
    bucket,
    endpoint: server.endpoint,
    close: async () => {
      client.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

export async function temporaryDirectory(prefix = 'slipway-test-') {
  return mkdtemp(join(tmpdir(), prefix));
}
