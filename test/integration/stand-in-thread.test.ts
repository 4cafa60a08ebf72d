import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { dirname } from 'node:path';
import { CopyObjectCommand, GetObjectCommand, HeadBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { createDocumentClient, createS3ArtifactStore, createS3Client } from '@slipway/aws';
import { artifactKey, systemClock } from '@slipway/core';
import {
  ensureBucket,
  ensureTable,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  localObjectFile,
  objectsReadInPlace,
  type RunningServer,
  startDevServer,
  startLocalDynamo,
  startLocalS3,
} from '@slipway/local';
import { temporaryDirectory } from '../support/stand-ins.ts';

/**
 * The local DynamoDB and S3 share one thread (stand-in-thread.mjs). Each still starts, fails,
 * answers and closes on its own: one stopping or failing to start leaves the other serving.
 */
const started: RunningServer[] = [];
const clients: { destroy(): void }[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  for (const server of started.splice(0).reverse()) await server.close();
});

const connection = (endpoints: { dynamodb?: string; s3?: string }) => ({ region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, endpoints });

async function roundTrip(endpoint: string, value: string) {
  const client = createDocumentClient(connection({ dynamodb: endpoint }));
  try {
    await ensureTable(client, 'thread-test');
    await client.send(new PutCommand({ TableName: 'thread-test', Item: { pk: 'k', sk: 'k', value } }));
    return (await client.send(new GetCommand({ TableName: 'thread-test', Key: { pk: 'k', sk: 'k' } }))).Item?.value;
  } finally {
    client.destroy();
  }
}

describe('the stand-ins thread', () => {
  it('keeps the S3 stand-in serving after the DynamoDB beside it closed, and the reverse', async () => {
    const s3Directory = await temporaryDirectory('slipway-thread-s3-');
    // Closing twice is a no-op: afterEach closes whatever a failed assertion left running.
    const dynamo = await startLocalDynamo();
    started.push(dynamo);
    const s3 = await startLocalS3(s3Directory);
    started.push(s3);
    const objects = createS3Client(connection({ s3: s3.endpoint }));
    try {
      await ensureBucket(objects, 'thread-test');
      expect(await roundTrip(dynamo.endpoint, 'first')).toBe('first');
      await dynamo.close();
      await expect(objects.send(new HeadBucketCommand({ Bucket: 'thread-test' }))).resolves.toBeDefined();
      const again = await startLocalDynamo();
      started.push(again);
      await s3.close();
      expect(await roundTrip(again.endpoint, 'second')).toBe('second');
      await again.close();
      // The last one gone ended the thread; the next stand-in starts on a new one.
      const fresh = await startLocalDynamo();
      started.push(fresh);
      expect(await roundTrip(fresh.endpoint, 'third')).toBe('third');
    } finally {
      objects.destroy();
    }
  });

  it('answers a stand-in that cannot start with its own error, and the running one goes on', async () => {
    const directory = await temporaryDirectory('slipway-thread-dynamo-');
    const first = await startLocalDynamo(directory);
    started.push(first);
    // The same LevelDB folder twice: its lock refuses the second, as a second dev server is refused.
    await expect(startLocalDynamo(directory)).rejects.toThrow(/lock/i);
    expect(await roundTrip(first.endpoint, 'still here')).toBe('still here');
  });

  it('tells a second dev server on the same data folder that the folder is in use', async () => {
    const dataDir = await temporaryDirectory('slipway-thread-dev-');
    const server = await startDevServer({ dataDir, port: 0, logLevel: 'warn', demo: false });
    try {
      await expect(startDevServer({ dataDir, port: 0, logLevel: 'warn', demo: false })).rejects.toThrow(
        `${dataDir} is in use by another Slipway dev server; stop it or set SLIPWAY_DATA_DIR`,
      );
      const health = await fetch(`${server.url}/healthz`);
      expect(health.status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

/** An S3 stand-in on a folder of its own, holding `body` at `key` in the bucket `objects`, and that bucket's artifact store. */
async function storedObject(prefix: string, key: string, body: string) {
  const directory = await temporaryDirectory(prefix);
  const s3 = await startLocalS3(directory);
  started.push(s3);
  const client = createS3Client(connection({ s3: s3.endpoint }));
  clients.push(client);
  await ensureBucket(client, 'objects');
  await client.send(new PutObjectCommand({ Bucket: 'objects', Key: key, Body: body }));
  return { directory, s3, client, store: createS3ArtifactStore(client, 'objects', systemClock) };
}

describe('the S3 stand-in replacing an object', () => {
  it('replaces it whole, as S3 does: a file opened before keeps its bytes, and an upload cut short changes nothing', async () => {
    const key = artifactKey('shop', 'd'.repeat(64));
    const { directory, s3, client, store } = await storedObject('slipway-object-whole-', key, 'the first bytes');
    const file = localObjectFile({ endpoint: s3.endpoint, directory }, await store.presignDownload(key, 60))!;
    const get = async (k: string) => (await client.send(new GetObjectCommand({ Bucket: 'objects', Key: k }))).Body!.transformToString();
    const openedBefore = await open(file);
    try {
      await client.send(new PutObjectCommand({ Bucket: 'objects', Key: key, Body: 'the second, longer bytes' }));
      // What a local host or the server already opened is what it reads to its end.
      expect(await openedBefore.readFile('utf8')).toBe('the first bytes');
    } finally {
      await openedBefore.close();
    }
    expect(await readFile(file, 'utf8')).toBe('the second, longer bytes');
    expect(await get(key)).toBe('the second, longer bytes');

    // CopyObject onto the key replaces it the same way. Its ETag is the copied bytes' digest, also
    // with new metadata (s3rver kept the old object's digest then) and from a source whose digest
    // file is missing (s3rver failed then).
    const other = artifactKey('shop', 'e'.repeat(64));
    await client.send(new PutObjectCommand({ Bucket: 'objects', Key: other, Body: 'copied over' }));
    const otherETag = (await client.send(new GetObjectCommand({ Bucket: 'objects', Key: other }))).ETag;
    const openedBeforeCopy = await open(file);
    try {
      const copied = await client.send(
        new CopyObjectCommand({ Bucket: 'objects', Key: key, CopySource: `objects/${other}`, MetadataDirective: 'REPLACE', ContentType: 'application/gzip' }),
      );
      expect(await openedBeforeCopy.readFile('utf8')).toBe('the second, longer bytes');
      expect(copied.CopyObjectResult?.ETag).toBe(otherETag);
    } finally {
      await openedBeforeCopy.close();
    }
    const afterCopy = await client.send(new GetObjectCommand({ Bucket: 'objects', Key: key }));
    expect(afterCopy.ETag).toBe(otherETag);
    expect(afterCopy.ContentType).toBe('application/gzip');
    expect(await afterCopy.Body!.transformToString()).toBe('copied over');
    await rm(`${localObjectFile({ endpoint: s3.endpoint, directory }, await store.presignDownload(other, 60))!}.md5`);
    const third = artifactKey('shop', '9'.repeat(64));
    const fromNoDigest = await client.send(new CopyObjectCommand({ Bucket: 'objects', Key: third, CopySource: `objects/${other}` }));
    expect(fromNoDigest.CopyObjectResult?.ETag).toBe(otherETag);
    expect(await get(third)).toBe('copied over');

    // An upload whose client goes away half-way leaves the object as it was, and no file beside it.
    const upload = await store.presignUpload(key, 'f'.repeat(64), 1024 * 1024, 60);
    const { statusCode } = await new Promise<{ statusCode?: number }>((resolve) => {
      const put = request(upload.url, { method: 'PUT', headers: { ...upload.headers, 'content-length': String(1024 * 1024) } });
      put.once('response', (response) => resolve(response));
      put.once('error', () => resolve({}));
      put.write(Buffer.alloc(64 * 1024, 1), () => setTimeout(() => put.destroy(), 50));
    });
    expect(statusCode).toBeUndefined();
    await expect.poll(async () => (await readdir(dirname(file))).filter((name) => name.endsWith('.writing'))).toEqual([]);
    expect(await get(key)).toBe('copied over');
  });
});

describe('the S3 stand-in\'s file behind a presigned URL (what local hosts read in place)', () => {
  it('is the very file the stand-in serves that object from, and nothing is found for any other URL', async () => {
    const key = artifactKey('shop', 'a'.repeat(64));
    const { directory, s3, store } = await storedObject('slipway-object-file-', key, 'the artifact bytes');
    const url = await store.presignDownload(key, 60);
    const file = localObjectFile({ endpoint: s3.endpoint, directory }, url);
    expect(file?.startsWith(`${directory}/objects/`)).toBe(true);
    expect(await readFile(file!, 'utf8')).toBe('the artifact bytes');
    expect(await (await fetch(url)).text()).toBe('the artifact bytes');

    const elsewhere = new URL(url);
    elsewhere.port = String(Number(elsewhere.port) + 1);
    for (const other of [
      elsewhere.href,
      url.replace('/objects/', '/objects/..%2F..%2F'),
      url.replace('/objects/', '/objects/a%5C..%5C..%5C'),
      url.replace('/objects/', '/objects//'),
      `${s3.endpoint}/objects`,
      'not a url',
    ]) {
      expect(localObjectFile({ endpoint: s3.endpoint, directory }, other), other).toBeUndefined();
    }
  });
});

describe('the server reading an object from the S3 stand-in\'s file', () => {
  const text = async (bytes: AsyncIterable<Uint8Array>) => {
    const chunks: Buffer[] = [];
    for await (const chunk of bytes) chunks.push(Buffer.from(chunk));
    return Buffer.concat(chunks).toString('utf8');
  };

  it('reads the file itself, and goes through S3 for an object without one or a key that would leave the folder', async () => {
    const key = artifactKey('shop', 'b'.repeat(64));
    const { directory, s3, store: throughS3 } = await storedObject('slipway-object-read-', key, 'the stored bytes');
    const reads: string[] = [];
    const counted = { ...throughS3, read: async (k: string) => (reads.push(k), throughS3.read(k)) };
    const inPlace = objectsReadInPlace(counted, { directory, bucket: 'objects' });

    expect(await text(await inPlace.read(key))).toBe('the stored bytes');
    expect(reads).toEqual([]);
    // The file is what is read: bytes changed in it behind the stand-in's back are what comes.
    const file = localObjectFile({ endpoint: s3.endpoint, directory }, await throughS3.presignDownload(key, 60))!;
    await writeFile(file, 'changed in place');
    expect(await text(await inPlace.read(key))).toBe('changed in place');
    expect(reads).toEqual([]);

    const missing = artifactKey('shop', 'c'.repeat(64));
    await expect(async () => text(await inPlace.read(missing))).rejects.toThrow();
    expect(reads).toEqual([missing]);
    const hostile = 'artifacts/../../../etc/passwd';
    await expect(async () => text(await inPlace.read(hostile))).rejects.toThrow();
    expect(reads).toEqual([missing, hostile]);
  });
});
