import { createHash } from 'node:crypto';
import type { AppService } from './apps.ts';
import type { Principal } from './auth.ts';
import { ArtifactMismatchError, ArtifactMissingError, PayloadTooLargeError } from './errors.ts';
import type { Clock } from './ids.ts';
import { manifestOf } from './manifest.ts';
import type { ArtifactStore, ReleaseStore } from './ports.ts';
import type { ArtifactRef } from './release.ts';
import { artifactKey, type ArtifactSource, CreateArtifactRequest, MAX_ARTIFACT_BYTES, parse } from './schemas.ts';

export interface ArtifactDeps {
  store: ReleaseStore;
  objects: ArtifactStore;
  apps: AppService;
  clock: Clock;
  uploadUrlTtlSeconds?: number;
}

export interface UploadTicket {
  key: string;
  sha256: string;
  /** Absent when this exact content is already stored and verified: nothing to upload. */
  uploadUrl?: string;
  uploadHeaders?: Record<string, string>;
  expiresAt?: string;
  alreadyUploaded: boolean;
}

export function createArtifactService({
  store,
  objects,
  apps,
  clock,
  uploadUrlTtlSeconds = 900,
}: ArtifactDeps) {
  /** True when the stored object is the one we hashed before (same ETag), so it needs no new hash. */
  async function verifiedCopy(app: string, sha256: string) {
    const key = artifactKey(app, sha256);
    const [record, object] = await Promise.all([store.getArtifactRecord(app, sha256), objects.head(key)]);
    return { key, record, object, verified: !!object && record?.verified?.etag === object.etag };
  }

  /**
   * Reads a store's bytes once for both what the open needs (their sha256) and what Prepare would
   * read them again for (the file list, manifest.ts), which is kept when the bytes are the ones named.
   * A list that stops short (a refused or unreadable archive) leaves the hash to a second read.
   */
  async function readOnce(key: string, expected: string): Promise<string> {
    const manifest = await manifestOf(await objects.read(key));
    if (manifest.sha256 === expected) await objects.putManifest(key, manifest);
    if (manifest.sha256) return manifest.sha256;
    const whole = createHash('sha256');
    for await (const chunk of await objects.read(key)) whole.update(chunk);
    return whole.digest('hex');
  }

  return {
    async requestUpload(body: unknown, actor: Principal): Promise<UploadTicket> {
      const request = parse(CreateArtifactRequest, body, 'artifact request');
      if (request.size > MAX_ARTIFACT_BYTES) {
        throw new PayloadTooLargeError(
          `an artifact may be at most ${MAX_ARTIFACT_BYTES} bytes (5 GiB); this one declares ${request.size}`,
        );
      }
      await apps.requireApp(request.app);
      const { key, record, verified } = await verifiedCopy(request.app, request.sha256);
      if (verified) {
        // The same bytes pushed again, from a commit named this time: remember where they came from.
        if (request.source && record) await store.putArtifactRecord({ ...record, source: request.source });
        return { key, sha256: request.sha256, alreadyUploaded: true };
      }

      const now = clock.now().toISOString();
      await store.putArtifactRecord({
        app: request.app,
        sha256: request.sha256,
        key,
        size: request.size,
        requestedBy: actor.name,
        requestedAt: now,
        ...(request.source ? { source: request.source } : {}),
      });
      const upload = await objects.presignUpload(key, request.sha256, request.size, uploadUrlTtlSeconds);
      return {
        key,
        sha256: request.sha256,
        uploadUrl: upload.url,
        uploadHeaders: upload.headers,
        expiresAt: upload.expiresAt,
        alreadyUploaded: false,
      };
    },

    /**
     * Confirms the object under the content-addressed key holds exactly the bytes named by sha256.
     * The hash is computed once per stored object (keyed by ETag) and remembered.
     */
    async verify(app: string, sha256: string): Promise<ArtifactRef> {
      const { key, record, object, verified } = await verifiedCopy(app, sha256);
      if (!object) {
        throw new ArtifactMissingError(
          `no artifact is stored at ${key}; upload it first (slipway artifact push, or POST /v1/artifacts and PUT to its uploadUrl)`,
        );
      }
      if (verified) return { key, sha256, size: object.size };

      const actual = (await objects.storedSha256(key)) ?? (await readOnce(key, sha256));
      if (actual !== sha256) {
        throw new ArtifactMismatchError(
          `the object at ${key} has sha256 ${actual}, not ${sha256}; upload the artifact again`,
          { details: { key, expected: sha256, actual } },
        );
      }
      await store.putArtifactRecord({
        app,
        sha256,
        key,
        size: object.size,
        requestedBy: record?.requestedBy ?? 'unknown',
        requestedAt: record?.requestedAt ?? clock.now().toISOString(),
        verified: { etag: object.etag, at: clock.now().toISOString() },
        ...(record?.source ? { source: record.source } : {}),
      });
      return { key, sha256, size: object.size };
    },

    /** The checked artifact, and the commit it was built from when the pusher said. */
    async describe(app: string, sha256: string): Promise<ArtifactRef & { source?: ArtifactSource }> {
      const ref = await this.verify(app, sha256);
      const source = (await store.getArtifactRecord(app, sha256))?.source;
      return { ...ref, ...(source ? { source } : {}) };
    },
  };
}
export type ArtifactService = ReturnType<typeof createArtifactService>;
