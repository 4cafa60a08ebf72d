import type { Clock } from './ids.ts';
import type { Logger } from './logger.ts';
import type { AppStore, ArtifactRecordStore, ArtifactStore, EnvironmentLiveStore, ReleasePurge, ReleaseRecordStore, Workflow } from './ports.ts';
import { isTerminal, type Release } from './release.ts';

/**
 * What Slipway keeps and for how long. A release record goes once it ended more than `releaseDays`
 * ago, unless an environment still runs it, ran it just before, or keeps it for rollback; an artifact
 * goes once no such release and no running release uses it and nothing asked for it in
 * `artifactDays`. Host command output and mails follow `outputDays` (in the local runtime; on AWS,
 * an S3 lifecycle rule and SES keep none).
 */
export interface RetentionPolicy {
  releaseDays: number;
  artifactDays: number;
  outputDays: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = { releaseDays: 365, artifactDays: 30, outputDays: 30 };

export interface RetentionDeps {
  store: Pick<AppStore, 'getApp' | 'listApps'> &
    Pick<EnvironmentLiveStore, 'getEnvironmentLive'> &
    Pick<ReleaseRecordStore, 'listReleases'> &
    ReleasePurge &
    Pick<ArtifactRecordStore, 'listArtifactRecords' | 'deleteArtifactRecord'>;
  objects: ArtifactStore;
  workflow: Workflow;
  clock: Clock;
  logger: Logger;
  policy?: Partial<RetentionPolicy>;
}

const DAY_MS = 86_400_000;
const PAGE = 100;

export function createRetention(deps: RetentionDeps) {
  const { store, objects, workflow, clock, logger } = deps;
  const policy = { ...DEFAULT_RETENTION, ...deps.policy };
  const cutoff = (days: number) => new Date(clock.now().getTime() - days * DAY_MS).toISOString();

  /** Every release an environment of the app runs, ran just before, or keeps for rollback. */
  async function keptReleaseIds(app: string): Promise<Set<string>> {
    const stored = await store.getApp(app);
    const kept = new Set<string>();
    for (const env of stored?.config.environments ?? []) {
      const live = await store.getEnvironmentLive(app, env.name);
      if (live?.liveRelease) kept.add(live.liveRelease.id);
      if (live?.previousRelease) kept.add(live.previousRelease.id);
      for (const retained of live?.retained ?? []) kept.add(retained.id);
    }
    return kept;
  }

  async function* releasesOf(filter: { app?: string; oldestFirst?: boolean }): AsyncGenerator<Release> {
    let cursor: string | undefined;
    do {
      const page = await store.listReleases({ ...filter, limit: PAGE, ...(cursor ? { cursor } : {}) });
      yield* page.items;
      cursor = page.nextCursor;
    } while (cursor);
  }

  return {
    policy,

    /** Deletes the records of releases past `releaseDays` that nothing keeps; returns their ids. */
    async sweepReleases(limit = 500): Promise<string[]> {
      const before = cutoff(policy.releaseDays);
      const kept = new Map<string, Set<string>>();
      const deleted: string[] = [];
      for await (const release of releasesOf({ oldestFirst: true })) {
        if (release.createdAt >= before || deleted.length >= limit) break;
        if (!isTerminal(release.status) || release.updatedAt >= before) continue;
        if (!kept.has(release.app)) kept.set(release.app, await keptReleaseIds(release.app));
        if (kept.get(release.app)!.has(release.id)) continue;
        await workflow.forget?.(release.id);
        await store.deleteRelease(release.id);
        deleted.push(release.id);
      }
      if (deleted.length > 0) logger.info('retention: release records deleted', { count: deleted.length, olderThan: before });
      return deleted;
    },

    /** Deletes artifacts (object and record) that no kept or running release uses and nobody used lately. */
    async sweepArtifacts(): Promise<string[]> {
      const before = cutoff(policy.artifactDays);
      const deleted: string[] = [];
      for (const app of await store.listApps()) {
        const records = await store.listArtifactRecords(app);
        if (records.length === 0) continue;
        const kept = await keptReleaseIds(app);
        const inUse = new Set<string>();
        const lastUsed = new Map<string, string>();
        for await (const release of releasesOf({ app })) {
          const sha = release.artifact.sha256;
          if (!isTerminal(release.status) || kept.has(release.id)) inUse.add(sha);
          if ((lastUsed.get(sha) ?? '') < release.createdAt) lastUsed.set(sha, release.createdAt);
        }
        for (const record of records) {
          const used = [record.requestedAt, record.verified?.at ?? '', lastUsed.get(record.sha256) ?? ''].sort().at(-1)!;
          if (inUse.has(record.sha256) || used >= before) continue;
          // The object first: a record without its object is what a crash here leaves, and the next pass ends it.
          await objects.delete(record.key);
          await store.deleteArtifactRecord(app, record.sha256);
          deleted.push(record.key);
        }
      }
      if (deleted.length > 0) logger.info('retention: artifacts deleted', { count: deleted.length, olderThan: before });
      return deleted;
    },
  };
}
export type Retention = ReturnType<typeof createRetention>;
