import type { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ArtifactManifest, ArtifactStore, Clock } from '@slipway/core';
import { translateSdkError } from './errors.ts';

function isNotFound(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.name === 'NotFound' ||
      error.name === 'NoSuchKey' ||
      (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
  );
}

export interface S3ArtifactStoreOptions {
  /**
   * Whether hosts read artifacts straight from the bucket with their own instance role (`aws s3 cp
   * s3://bucket/key`). By default they do unless the client talks to a custom endpoint (a local S3
   * stand-in, which a host's aws CLI would not reach): then they use the presigned URL alone.
   */
  hostsReadBucket?: boolean;
}

/**
 * Where an artifact's manifest lives: `manifests/<app>/<sha256>.json.gz` beside
 * `artifacts/<app>/<sha256>.tar.gz`, outside `artifacts/` so hosts' read access never covers it.
 */
export function manifestKeyOf(artifactKey: string): string {
  return `${artifactKey.replace(/^artifacts\//, 'manifests/').replace(/\.tar\.gz$/, '')}.json.gz`;
}

export function createS3ArtifactStore(
  client: S3Client,
  bucket: string,
  clock: Clock,
  options: S3ArtifactStoreOptions = {},
): ArtifactStore {
  const hostsReadBucket = options.hostsReadBucket ?? client.config.isCustomEndpoint !== true;
  return {
    async presignUpload(key, sha256, _size, expiresInSeconds) {
      // Signing the checksum makes S3 itself refuse an upload whose bytes do not hash to sha256.
      // The uploader sends it as a header, so it must stay one: the presigner moves every x-amz-*
      // header into the query (leaving X-Amz-SignedHeaders=host) unless told not to, and S3 refuses
      // a request with an x-amz-* header that was not signed (403). signableHeaders keeps it signed
      // should the signer ever class it unsignable.
      const checksum = Buffer.from(sha256, 'hex').toString('base64');
      const command = new PutObjectCommand({ Bucket: bucket, Key: key, ChecksumSHA256: checksum });
      const url = await getSignedUrl(client, command, {
        expiresIn: expiresInSeconds,
        signingDate: clock.now(),
        unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
        signableHeaders: new Set(['x-amz-checksum-sha256']),
      });
      return {
        url,
        headers: { 'x-amz-checksum-sha256': checksum },
        expiresAt: new Date(clock.now().getTime() + expiresInSeconds * 1000).toISOString(),
      };
    },

    async presignDownload(key, expiresInSeconds) {
      return getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), {
        expiresIn: expiresInSeconds,
        signingDate: clock.now(),
      });
    },

    async locationOf(key) {
      if (!hostsReadBucket) return {};
      return { s3Uri: `s3://${bucket}/${key}`, region: await client.config.region() };
    },

    async head(key) {
      try {
        const result = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return { size: result.ContentLength ?? 0, etag: result.ETag ?? '' };
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw translateSdkError(error, 'artifact storage');
      }
    },

    async storedSha256(key) {
      try {
        // S3 keeps a verified full-object SHA-256 when the upload carried one: no need to read the bytes.
        const head = await client.send(
          new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }),
        );
        if (head.ChecksumSHA256 && head.ChecksumType !== 'COMPOSITE') {
          return Buffer.from(head.ChecksumSHA256, 'base64').toString('hex');
        }
        return undefined;
      } catch (error) {
        throw translateSdkError(error, 'artifact storage');
      }
    },

    async delete(key) {
      for (const doomed of [key, manifestKeyOf(key)]) {
        try {
          // The bucket is versioned: this leaves a delete marker, and the lifecycle rule expires the old version.
          await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: doomed }));
        } catch (error) {
          if (isNotFound(error)) continue;
          throw translateSdkError(error, 'artifact storage');
        }
      }
    },

    async read(key) {
      try {
        const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return object.Body as Readable;
      } catch (error) {
        throw translateSdkError(error, 'artifact storage');
      }
    },

    async getManifest(key) {
      try {
        const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKeyOf(key) }));
        return JSON.parse(gunzipSync(await object.Body!.transformToByteArray()).toString('utf8')) as ArtifactManifest;
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw translateSdkError(error, 'artifact storage');
      }
    },

    async putManifest(key, manifest) {
      try {
        const body = gzipSync(JSON.stringify(manifest));
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: manifestKeyOf(key), Body: body, ContentType: 'application/gzip' }));
      } catch (error) {
        throw translateSdkError(error, 'artifact storage');
      }
    },
  };
}
