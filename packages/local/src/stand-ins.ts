import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { TABLE_DEFINITION } from '@slipway/aws';
import { AbstractIterator, AbstractKeyIterator, AbstractValueIterator } from 'abstract-level';
import dynalite from 'dynalite';
import S3rver from 's3rver';

/**
 * The API-compatible servers that stand in for DynamoDB and S3 on one machine. The AWS SDK adapters
 * talk to them over HTTP on 127.0.0.1 exactly as they talk to AWS.
 */
export interface RunningServer {
  endpoint: string;
  close(): Promise<void>;
}

/** Credentials the local servers accept (they do not check signatures). */
export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
export const LOCAL_REGION = 'us-east-1';

/**
 * dynalite 4 reads LevelDB through abstract-level 3 iterators wrapped in streams, and ends each one
 * only through `iterator.return()`, which abstract-level 3 iterators lack: every Query and Scan left
 * its LevelDB iterator open, attached to the database and holding its snapshot, so the server's
 * memory grew with every read and never came back. They get the method the stream calls: close.
 */
function closeDynaliteIterators() {
  for (const Iterator of [AbstractIterator, AbstractKeyIterator, AbstractValueIterator]) {
    if ('return' in Iterator.prototype) continue;
    Object.defineProperty(Iterator.prototype, 'return', {
      configurable: true,
      writable: true,
      async value(this: { close(): Promise<void> }) {
        await this.close();
        return { done: true, value: undefined };
      },
    });
  }
}

/** `directory` persists the data (LevelDB); without it the data lives in memory. */
export async function startLocalDynamo(directory?: string): Promise<RunningServer> {
  closeDynaliteIterators();
  if (directory) await mkdir(directory, { recursive: true });
  const server = dynalite({
    ...(directory ? { path: directory } : {}),
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections?.();
        server.close((error?: Error) => (error ? reject(error) : resolve()));
      }),
  };
}

/**
 * On disk under `directory`; with a `portFile`, on the port it had last time when that port is free: hosts may be
 * downloading from a presigned URL when the server restarts, and their retries must find it again.
 */
export async function startLocalS3(directory: string, portFile?: string): Promise<RunningServer> {
  await mkdir(directory, { recursive: true });
  const previous = portFile ? Number((await readFile(portFile, 'utf8').catch(() => '')).trim()) || 0 : 0;
  const listen = async (port: number) => {
    const server = new S3rver({ address: '127.0.0.1', port, directory, silent: true });
    return { server, port: (await server.run()).port };
  };
  const { server, port } = await listen(previous).catch((error: NodeJS.ErrnoException) => {
    if (previous && error.code === 'EADDRINUSE') return listen(0);
    throw error;
  });
  if (portFile && port !== previous) await writeFile(portFile, `${port}\n`);
  return { endpoint: `http://127.0.0.1:${port}`, close: () => server.close() };
}

/** The table's status, or undefined when there is no such table. */
async function tableStatus(client: DynamoDBClient, tableName: string): Promise<string | undefined> {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table?.TableStatus ?? 'ACTIVE';
  } catch (error) {
    if (error instanceof Error && error.name === 'ResourceNotFoundException') return undefined;
    throw error;
  }
}

/**
 * Creates the table when missing and returns once it is ACTIVE: the local DynamoDB marks a new table
 * ACTIVE a moment after CreateTable answers, and until then every write to it is refused
 * (ResourceNotFoundException), which a loaded machine does see.
 */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  let status = await tableStatus(client, tableName);
  if (status === undefined) {
    await client.send(new CreateTableCommand({ TableName: tableName, ...TABLE_DEFINITION }));
    status = await tableStatus(client, tableName);
  }
  const deadline = Date.now() + 60_000;
  while (status !== 'ACTIVE') {
    if (Date.now() > deadline) throw new Error(`the local DynamoDB table ${tableName} is still ${status ?? 'missing'} after 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
    status = await tableStatus(client, tableName);
  }
}

export async function ensureBucket(client: S3Client, bucket: string): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  }
}
