// The two local stand-ins, dynalite for DynamoDB and s3rver for S3, each started on 127.0.0.1. Plain
// JavaScript, because stand-in-thread.mjs runs them on a thread of their own, and worker threads do
// not inherit the TypeScript loader of the thread that starts them (tsx, vitest).
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AbstractIterator, AbstractKeyIterator, AbstractValueIterator } from 'abstract-level';
import dynalite from 'dynalite';
import { Level } from 'level';
import S3rver from 's3rver';

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
      async value() {
        await this.close();
        return { done: true, value: undefined };
      },
    });
  }
}

/**
 * Opens and closes the LevelDB in `directory`, so that a folder another server holds is refused
 * here, with LevelDB's own error (`LEVEL_LOCKED` as its cause). dynalite opens its database only
 * after it listens, and a refusal there is thrown on no caller: it ended the stand-ins' thread, and
 * the second `slipway dev` on a data folder failed with a refused connection instead of saying why.
 * Two servers started at the same moment can both pass this check; the later one then still fails
 * in dynalite's own open. (Within one process, LevelDB's refusal closes the LOCK file it opened,
 * which releases the first database's lock for other processes: a second stand-in on a folder is
 * only ever tried in the tests.)
 */
async function checkNotHeld(directory) {
  const database = new Level(directory, { valueEncoding: 'json' });
  try {
    await database.open();
  } catch (error) {
    const cause = error?.cause;
    throw Object.assign(new Error(`${error.message}: ${cause?.message ?? ''}`), { code: cause?.code ?? error.code });
  }
  await database.close();
}

/** dynalite on a free port; with `directory`, on disk (LevelDB), else in memory. */
export async function startDynamoServer({ directory }) {
  closeDynaliteIterators();
  if (directory) {
    await mkdir(directory, { recursive: true });
    await checkNotHeld(directory);
  }
  const server = dynalite({ ...(directory ? { path: directory } : {}), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: server.address().port,
    close: () =>
      new Promise((resolve, reject) => {
        server.closeAllConnections?.();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/**
 * S3 replaces an object whole. s3rver 3 truncates the object's file and writes it again in place,
 * so a file opened by a reader (a local host unpacking an artifact, the server reading its
 * manifest) could change under it, and an upload cut short left part of an object. Its store's two
 * writers of an object's bytes, PutObject (which CompleteMultipartUpload calls too) and CopyObject,
 * here write a file beside it and rename it over the object: an open file keeps the bytes it was
 * opened with, and a failed write leaves the object as it was. (A GET racing a replacement can
 * still pair the old size or ETag with the new bytes: s3rver reads them apart.)
 */
function replaceObjectsWhole(store) {
  /** Writes `file` through a new file beside it, renamed over it; `write` fills the new one. */
  async function replace(file, write) {
    await mkdir(dirname(file), { recursive: true });
    const fresh = `${file}.${randomBytes(6).toString('hex')}.writing`;
    try {
      await write(fresh);
      await rename(fresh, file);
    } catch (error) {
      await rm(fresh, { force: true });
      throw error;
    }
  }
  store.putObject = async (object) => {
    const md5 = createHash('md5');
    let size = 0;
    const counted = new Transform({
      transform(chunk, _encoding, done) {
        md5.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    const content = Buffer.isBuffer(object.content) ? [object.content] : object.content;
    await replace(store.getResourcePath(object.bucket, object.key, 'object'), (fresh) =>
      pipeline(content, counted, createWriteStream(fresh)),
    );
    const digest = md5.digest('hex');
    await store.putMetadata(object.bucket, object.key, object.metadata, digest);
    return { size, md5: digest };
  };
  const copyObject = store.copyObject.bind(store);
  store.copyObject = async (sourceBucket, sourceKey, bucket, key, replacementMetadata) => {
    const source = (resource) => store.getResourcePath(sourceBucket, sourceKey, resource);
    const target = (resource) => store.getResourcePath(bucket, key, resource);
    // Onto itself only the metadata changes, which the original does.
    if (source('object') === target('object')) return copyObject(sourceBucket, sourceKey, bucket, key, replacementMetadata);
    await replace(target('object'), (fresh) => copyFile(source('object'), fresh));
    // The digest goes with the bytes; without one, reading the metadata makes it again.
    await copyFile(source('object.md5'), target('object.md5')).catch(async (error) => {
      if (error.code !== 'ENOENT') throw error;
      await rm(target('object.md5'), { force: true });
    });
    if (replacementMetadata) await store.putMetadata(bucket, key, replacementMetadata);
    else await copyFile(source('metadata.json'), target('metadata.json'));
    return store.getMetadata(bucket, key);
  };
}

/** s3rver on `port` (0: any free one), its objects under `directory`. */
export async function startS3Server({ directory, port }) {
  await mkdir(directory, { recursive: true });
  const server = new S3rver({ address: '127.0.0.1', port, directory, silent: true });
  replaceObjectsWhole(server.store);
  return { port: (await server.run()).port, close: () => server.close() };
}
