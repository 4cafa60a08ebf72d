import { createAppService } from './apps.ts';
import { createArtifactService } from './artifacts.ts';
import { createAuthService } from './auth.ts';
import { createHttpApi } from './http.ts';
import type { Clock, IdGenerator } from './ids.ts';
import type { Logger } from './logger.ts';
import type { ArtifactStore, ReleaseStore, TokenStore, Workflow } from './ports.ts';
import { createReleaseService } from './releases.ts';

export * from './apps.ts';
export * from './artifacts.ts';
export * from './auth.ts';
export * from './errors.ts';
export * from './http.ts';
export * from './ids.ts';
export * from './logger.ts';
export * from './ports.ts';
export * from './release.ts';
export * from './releases.ts';
export * from './schemas.ts';

export interface SlipwayDeps {
  store: ReleaseStore;
  tokens: TokenStore;
  objects: ArtifactStore;
  workflow: Workflow;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
}

/** Wires the use-cases once per runtime (Lambda cold start, dev server, test). */
export function createSlipway(deps: SlipwayDeps) {
  const { store, tokens, objects, workflow, clock, ids, logger } = deps;
  const auth = createAuthService({ tokens, clock });
  const apps = createAppService({ store, clock });
  const artifacts = createArtifactService({ store, objects, apps, clock });
  const releases = createReleaseService({ store, apps, artifacts, workflow, clock, ids, logger });
  const api = createHttpApi({ auth, apps, artifacts, releases, logger });
  return { auth, apps, artifacts, releases, api };
}
export type Slipway = ReturnType<typeof createSlipway>;
export * from './host-scripts.ts';
export * from './plan.ts';
export * from './stages.ts';
export * from './stage-inputs.ts';
