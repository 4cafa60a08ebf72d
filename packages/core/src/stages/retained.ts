import type { EnvironmentLiveStore } from '../ports.ts';
import type { EnvironmentLive, Release } from '../release.ts';
import { targetOf } from './context.ts';

/**
 * What an environment keeps on its hosts for rollback once `release` is live there. A rollback goes
 * back to a release already retained; a release joins the retained ones, and so does the one live
 * before it, however old: it is where a rollback goes by default. At most `keepReleases`.
 */
export function liveAfter(release: Release, environment: string, live: EnvironmentLive | undefined, since: string): EnvironmentLive {
  const previous = live?.liveRelease ? [{ id: live.liveRelease.id, version: live.liveRelease.version }] : [];
  const retained = release.rollback
    ? (live?.retained ?? [])
    : [{ id: release.id, version: release.version }, ...previous, ...(live?.retained ?? [])]
        .filter((kept, index, all) => all.findIndex((other) => other.id === kept.id) === index)
        .slice(0, release.config.keepReleases);
  return {
    app: release.app,
    environment,
    liveRelease: { id: targetOf(release), version: release.version, since },
    ...(live?.liveRelease ? { previousRelease: { id: live.liveRelease.id, version: live.liveRelease.version } } : {}),
    retained,
  };
}

/** Every release some environment of the app keeps for rollback: a prune on any host leaves them. */
export async function protectedReleases(store: Pick<EnvironmentLiveStore, 'getEnvironmentLive'>, release: Release): Promise<string[]> {
  const protect = new Set<string>();
  for (const env of release.config.environments) {
    const live = await store.getEnvironmentLive(release.app, env.name);
    for (const kept of live?.retained ?? []) protect.add(kept.id);
  }
  return [...protect];
}
