import { createS3ArtifactStore } from '@slipway/aws';
import { type ArtifactStore, systemClock } from '@slipway/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock, sha256 } from '../support/fixtures.ts';
import { localS3 } from '../support/stand-ins.ts';

let s3: Awaited<ReturnType<typeof localS3>>;
let store: ArtifactStore;

beforeAll(async () => {
  s3 = await localS3();
  store = createS3ArtifactStore(s3.client, s3.bucket, systemClock);
});
afterAll(async () => s3.close());

describe('S3 artifact store', () => {
  it('hands out a presigned PUT that uploads, then heads and hashes the stored bytes', async () => {
    const body = Buffer.from('a tarball, honestly');
    const digest = sha256(body);
    const key = `artifacts/shop/${digest}.tar.gz`;
    expect(await store.head(key)).toBeUndefined();

    const upload = await store.presignUpload(key, digest, body.length, 60);
    expect(upload.url).toContain('X-Amz-Signature=');
    expect(upload.headers['x-amz-checksum-sha256']).toBe(Buffer.from(digest, 'hex').toString('base64'));
    expect(new Date(upload.expiresAt).getTime()).toBeGreaterThan(Date.now() + 50_000);

    const response = await fetch(upload.url, { method: 'PUT', headers: upload.headers, body });
    expect(response.status).toBe(200);

    const head = await store.head(key);
    expect(head?.size).toBe(body.length);
    expect(head?.etag).toMatch(/\S/);
    expect(await store.sha256Of(key)).toBe(digest);
  });

  it('reports the hash of what was really stored, not what was claimed', async () => {
    const claimed = sha256('what I said');
    const key = `artifacts/shop/${claimed}.tar.gz`;
    const upload = await store.presignUpload(key, claimed, 10, 60);
    // The local server does not verify checksums (S3 does); the hash on open is what catches this.
    await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: 'something else' });
    expect(await store.sha256Of(key)).toBe(sha256('something else'));
  });

  it('refuses an expired upload URL', async () => {
    const digest = sha256('late');
    const anHourAgo = manualClock(new Date(Date.now() - 3_600_000).toISOString());
    const pastStore = createS3ArtifactStore(s3.client, s3.bucket, anHourAgo);
    const upload = await pastStore.presignUpload(`artifacts/shop/${digest}.tar.gz`, digest, 4, 60);
    expect(new Date(upload.expiresAt).getTime()).toBeLessThan(Date.now());
    const response = await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: 'late' });
    expect(response.status).toBe(403);
  });
});
