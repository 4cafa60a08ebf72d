import { NotFoundError } from './errors.ts';
import { diffManifests } from './manifest.ts';
import type { ArtifactStore, EnvironmentLiveStore, ReleaseRecordStore } from './ports.ts';
import { EnvironmentName, parse, ReleaseId } from './schemas.ts';

export interface DiffDeps {
  store: ReleaseRecordStore & EnvironmentLiveStore;
  objects: Pick<ArtifactStore, 'getManifest'>;
}

export interface ReleaseDiff {
  /** What the environment runs now (what it ran before this release, once this one is live); null for a first release. */
  from: { releaseId: string; version: string } | null;
  to: { releaseId: string; version: string };
  environment: string;
  files: { added: string[]; removed: string[]; changed: string[] };
  /** Bytes of the files added or changed. */
  bytes: number;
  /** False when a file list is missing or incomplete: `reason` says which and why. */
  complete: boolean;
  reason?: string;
}

/** How many paths of each list an approval mail or page shows before linking to the whole diff. */
export const DIFF_PREVIEW_PATHS = 50;

/** What a release changes on the hosts of one environment: files added, removed and changed. */
export function createDiffService({ store, objects }: DiffDeps) {
  return {
    async diff(releaseIdInput: string, environmentInput: string): Promise<ReleaseDiff> {
      const releaseId = parse(ReleaseId, releaseIdInput, 'release id');
      const environment = parse(EnvironmentName, environmentInput, 'environment');
      const release = await store.getRelease(releaseId);
      if (!release) throw new NotFoundError(`release ${releaseId} does not exist`);
      if (!release.config.environments.some((env) => env.name === environment)) {
        const names = release.config.environments.map((env) => env.name).join(', ');
        throw new NotFoundError(`release ${releaseId} does not go to environment ${environment}; it goes to ${names}`);
      }
      const live = await store.getEnvironmentLive(release.app, environment);
      const fromRef = live?.liveRelease?.id === release.id ? live.previousRelease : live?.liveRelease;
      const fromRelease = fromRef ? await store.getRelease(fromRef.id) : undefined;
      const [toManifest, fromManifest] = await Promise.all([
        objects.getManifest(release.artifact.key),
        fromRelease ? objects.getManifest(fromRelease.artifact.key) : Promise.resolve(undefined),
      ]);
      const answer = {
        from: fromRef ? { releaseId: fromRef.id, version: fromRef.version } : null,
        to: { releaseId: release.id, version: release.version },
        environment,
      };
      if (!toManifest) {
        return {
          ...answer,
          files: { added: [], removed: [], changed: [] },
          bytes: 0,
          complete: false,
          reason: 'no file list was recorded for this release\'s artifact yet: it is made when the release is planned',
        };
      }
      const diff = diffManifests(fromManifest, toManifest);
      const reasons = [
        toManifest.complete ? undefined : `this release's file list is incomplete (${toManifest.reason})`,
        fromRef && !fromManifest
          ? `no file list for ${fromRef.version} (recorded before file lists existed, or its artifact was deleted): every file shows as added`
          : undefined,
        fromManifest && !fromManifest.complete ? `the file list of ${fromRef?.version} is incomplete (${fromManifest.reason})` : undefined,
      ].filter((reason): reason is string => reason !== undefined);
      return {
        ...answer,
        files: { added: diff.added, removed: diff.removed, changed: diff.changed },
        bytes: diff.bytes,
        complete: reasons.length === 0,
        ...(reasons.length > 0 ? { reason: reasons.join('; ') } : {}),
      };
    },
  };
}
export type DiffService = ReturnType<typeof createDiffService>;
