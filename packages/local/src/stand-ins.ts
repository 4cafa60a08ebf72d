import { readFile, writeFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { CreateTableCommand, DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { TABLE_DEFINITION } from '@slipway/aws';

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

/** What a stand-in's thread says: its port once it listens, that it closed, or why it could not. */
type ThreadMessage = { port?: number; closed?: boolean; error?: { message: string; code?: string } };

function threadError(error: { message: string; code?: string }): Error {
  return Object.assign(new Error(error.message), error.code ? { code: error.code } : {});
}

/**
 * Runs one stand-in on a thread of its own (stand-in-thread.mjs says why) and answers once it
 * listens. An error thrown on that thread later is not caught here: it ends this process, as it did
 * when the stand-ins ran on the main thread, rather than leave a server without its store.
 */
async function startOnThread(workerData: { kind: 'dynamodb'; directory?: string } | { kind: 's3'; directory: string; port: number }): Promise<RunningServer> {
  const worker = new Worker(new URL('./stand-in-thread.mjs', import.meta.url), { workerData });
  const port = await new Promise<number>((resolve, reject) => {
    const failed = (error: Error) => reject(error);
    const exited = (code: number) => reject(new Error(`the local ${workerData.kind} stand-in stopped as it started (exit ${code})`));
    worker.once('error', failed);
    worker.once('exit', exited);
    worker.once('message', (message: ThreadMessage) => {
      worker.off('error', failed);
      worker.off('exit', exited);
      if (message.port) resolve(message.port);
      else reject(threadError(message.error ?? { message: `the local ${workerData.kind} stand-in did not start` }));
    });
  }).catch(async (error: unknown) => {
    await worker.terminate();
    throw error;
  });
  let gone = false;
  worker.once('exit', () => {
    gone = true;
  });
  let closing: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      (closing ??= new Promise<ThreadMessage>((resolve) => {
        // Already gone, or gone before it answers: nothing to close.
        if (gone) return resolve({ closed: true });
        worker.once('exit', () => resolve({ closed: true }));
        worker.once('message', resolve);
        worker.postMessage('close');
      }).then(async (answer) => {
        await worker.terminate();
        if (answer.error) throw threadError(answer.error);
      })),
  };
}

/** `directory` persists the data (LevelDB); without it the data lives in memory. */
export async function startLocalDynamo(directory?: string): Promise<RunningServer> {
  return startOnThread({ kind: 'dynamodb', ...(directory ? { directory } : {}) });
}

/**
 * On disk under `directory`; with a `portFile`, on the port it had last time when that port is free: hosts may be
 * downloading from a presigned URL when the server restarts, and their retries must find it again.
 */
export async function startLocalS3(directory: string, portFile?: string): Promise<RunningServer> {
  const previous = portFile ? Number((await readFile(portFile, 'utf8').catch(() => '')).trim()) || 0 : 0;
  const started = await startOnThread({ kind: 's3', directory, port: previous }).catch((error: NodeJS.ErrnoException) => {
    if (previous && error.code === 'EADDRINUSE') return startOnThread({ kind: 's3', directory, port: 0 });
    throw error;
  });
  const port = Number(new URL(started.endpoint).port);
  if (portFile && port !== previous) await writeFile(portFile, `${port}\n`);
  return started;
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
