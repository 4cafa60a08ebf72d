import { open, readFile, writeFile } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { Worker } from 'node:worker_threads';
import { CreateTableCommand, DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { TABLE_DEFINITION } from '@slipway/aws';
import type { ArtifactStore } from '@slipway/core';

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

/** What the stand-ins' thread says of one stand-in: its port once it listens, that it closed, or why it could not. */
type ThreadMessage = { id: number; port?: number; closed?: boolean; error?: { message: string; code?: string } };

function threadError(error: { message: string; code?: string }): Error {
  return Object.assign(new Error(error.message), error.code ? { code: error.code } : {});
}

/**
 * The one thread all stand-ins of this process run on (stand-in-thread.mjs says why), started with
 * the first and ended with the last. An error thrown on it ends this process, as it did when the
 * stand-ins ran on the main thread, rather than leave a server without its store: with one thread
 * for both, a crash while one stand-in starts or closes takes the other one down too.
 */
type StandInThread = { worker: Worker; running: number; gone: boolean };
let shared: StandInThread | undefined;
let nextId = 1;

function standInThread(): StandInThread {
  if (shared) return shared;
  const worker = new Worker(new URL('./stand-in-thread.mjs', import.meta.url));
  const thread = { worker, running: 0, gone: false };
  worker.on('error', (error) => {
    throw error;
  });
  worker.once('exit', () => {
    thread.gone = true;
    if (shared === thread) shared = undefined;
  });
  return (shared = thread);
}

/** A stand-in fewer on the thread; the last one gone ends it, and the next stand-in starts a new one. */
async function leave(thread: StandInThread) {
  thread.running--;
  if (thread.running > 0 || thread.gone) return;
  thread.gone = true;
  if (shared === thread) shared = undefined;
  await thread.worker.terminate();
}

/** The thread's answer about stand-in `id`, or a rejection when the thread exits first. */
function answerOf({ worker }: StandInThread, id: number, what: string): Promise<ThreadMessage> {
  return new Promise<ThreadMessage>((resolve, reject) => {
    const exited = (code: number) => done(() => reject(new Error(`the local stand-ins' thread stopped as the ${what} (exit ${code})`)));
    const message = (answer: ThreadMessage) => {
      if (answer.id === id) done(() => resolve(answer));
    };
    const done = (settle: () => void) => {
      worker.off('exit', exited);
      worker.off('message', message);
      settle();
    };
    worker.on('exit', exited);
    worker.on('message', message);
  });
}

/** Runs one stand-in on the stand-ins' thread and answers once it listens. */
async function startOnThread(start: { kind: 'dynamodb'; directory?: string } | { kind: 's3'; directory: string; port: number }): Promise<RunningServer> {
  const thread = standInThread();
  const id = nextId++;
  thread.running++;
  const answered = answerOf(thread, id, `${start.kind} stand-in started`);
  thread.worker.postMessage({ start, id });
  const answer = await answered.catch(async (error: unknown) => {
    await leave(thread);
    throw error;
  });
  if (!answer.port) {
    await leave(thread);
    throw threadError(answer.error ?? { message: `the local ${start.kind} stand-in did not start` });
  }
  let closing: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${answer.port}`,
    close: () =>
      (closing ??= (async () => {
        // The thread already gone: nothing to close.
        if (thread.gone) return;
        // A thread that exits meanwhile has closed it too.
        const closed = answerOf(thread, id, `${start.kind} stand-in closed`).catch((): ThreadMessage => ({ id, closed: true }));
        thread.worker.postMessage({ close: true, id });
        const result = await closed;
        await leave(thread);
        if (result.error) throw threadError(result.error);
      })()),
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

/**
 * The file in which the local S3 stand-in (s3rver, on disk under `directory`) keeps the object that
 * a URL of it names (a presigned GET: `<endpoint>/<bucket>/<key>?...`), or undefined for any other
 * URL. What the file holds is checked as a download is (the sha256 of the bytes read).
 */
export function localObjectFile(s3: { endpoint: string; directory: string }, url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.origin !== new URL(s3.endpoint).origin) return undefined;
  let parts: string[];
  try {
    parts = parsed.pathname.split('/').slice(1).map(decodeURIComponent);
  } catch {
    return undefined;
  }
  return storedObjectFile(s3.directory, parts);
}

/** `<directory>/<bucket>/<key>._S3rver_object` for a bucket and a key's segments, or undefined if any segment could leave the folder. */
function storedObjectFile(directory: string, parts: string[]): string | undefined {
  if (parts.length < 2 || parts.some((part) => part === '' || part === '.' || part === '..' || part.includes('/') || part.includes('\\'))) return undefined;
  const name = parts.at(-1)!;
  const file = resolve(directory, ...parts.slice(0, -1), `${name}._S3rver_object`);
  return file.startsWith(`${resolve(directory)}${sep}`) ? file : undefined;
}

/**
 * The bucket's objects as `objects` stores them, read straight from the S3 stand-in's files when
 * there is one, in 1 MiB pieces: reading a 50 MB artifact at its first open (its sha256 and its
 * manifest) took 240-280 ms in the dev server through the stand-in's HTTP, 180-205 ms from the file.
 * The reader checks the bytes as before (their sha256), and an object without a file is read
 * through S3 as before.
 */
export function objectsReadInPlace(objects: ArtifactStore, s3: { directory: string; bucket: string }): ArtifactStore {
  return {
    ...objects,
    async read(key) {
      const file = storedObjectFile(s3.directory, [s3.bucket, ...key.split('/')]);
      const handle = file ? await open(file).catch(() => undefined) : undefined;
      return handle ? handle.createReadStream({ highWaterMark: 1024 * 1024 }) : objects.read(key);
    },
  };
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
