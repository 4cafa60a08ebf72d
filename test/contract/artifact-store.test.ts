import { createHash } from 'node:crypto';
import { createS3ArtifactStore, manifestKeyOf } from '@slipway/aws';
import { type ArtifactManifest, type ArtifactStore, systemClock } from '@slipway/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeArtifactStore } from '../../packages/core/src/testing/fakes.ts';
import { localS3 } from '../support/stand-ins.ts';

/**
 * The artifact store's reading and file lists, against the in-memory fake and the S3 store on the
 * local S3 server: the fake is trusted in the service tests because it passes these too.
 */
let s3: Awaited<ReturnType<typeof localS3>>;
beforeAll(async () => {
  s3 = await localS3();
});
afterAll(async () => s3.close());

interface Subject {
  store: ArtifactStore;
  /** Puts bytes at `key` as an upload would. */
  upload(key: string, bytes: Buffer): Promise<void>;
}

const subjects: [string, () => Subject][] = [
  [
    'in-memory fake',
    () => {
      const store = createFakeArtifactStore();
      return { store, upload: async (key, bytes) => store.store(key, createHash('sha256').update(bytes).digest('hex'), bytes.length, bytes) };
    },
  ],
  [
    'S3 (local server)',
    () => {
      const store = createS3ArtifactStore(s3.client, s3.bucket, systemClock);
      return {
        store,
        upload: async (key, bytes) => {
          const sha256 = createHash('sha256').update(bytes).digest('hex');
          const ticket = await store.presignUpload(key, sha256, bytes.length, 60);
          const response = await fetch(ticket.url, { method: 'PUT', headers: ticket.headers, body: bytes });
          if (!response.ok) throw new Error(`upload: ${response.status}`);
        },
      };
    },
  ],
];

let n = 0;
const freshKey = () => `artifacts/shop/${String((n += 1)).padStart(64, '0')}.tar.gz`;
const manifest: ArtifactManifest = {
  complete: true,
  bytes: 7,
  files: [
    { path: 'assets/ünïcode name.js', size: 5, sha256: 'b'.repeat(64) },
    { path: 'index.html', size: 2, sha256: 'c'.repeat(64) },
    { path: 'latest', size: 0, sha256: 'd'.repeat(64), link: 'index.html' },
  ],
};

describe.each(subjects)('artifact store (%s)', (_name, subject) => {
  it('streams the stored bytes back as they were', async () => {
    const { store, upload } = subject();
    const key = freshKey();
    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
    await upload(key, bytes);
    const chunks: Uint8Array[] = [];
    for await (const chunk of await store.read(key)) chunks.push(chunk);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
  });

  it('has no file list until one is put, then gives it back whole', async () => {
    const { store, upload } = subject();
    const key = freshKey();
    await upload(key, Buffer.from('x'));
    expect(await store.getManifest(key)).toBeUndefined();
    await store.putManifest(key, manifest);
    expect(await store.getManifest(key)).toEqual(manifest);
    const other = freshKey();
    expect(await store.getManifest(other)).toBeUndefined();
  });

  it('deletes the file list with the artifact, and deleting twice is no error', async () => {
    const { store, upload } = subject();
    const key = freshKey();
    await upload(key, Buffer.from('x'));
    await store.putManifest(key, manifest);
    await store.delete(key);
    expect(await store.head(key)).toBeUndefined();
    expect(await store.getManifest(key)).toBeUndefined();
    await store.delete(key);
  });
});

describe('where S3 keeps a file list', () => {
  it('beside the artifact, outside artifacts/ (which hosts may read)', () => {
    expect(manifestKeyOf(`artifacts/shop/${'a'.repeat(64)}.tar.gz`)).toBe(`manifests/shop/${'a'.repeat(64)}.json.gz`);
  });
});
