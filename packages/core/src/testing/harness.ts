import type { AnalysisSources } from '../analysis.ts';
import { composeSlipway } from '../composition.ts';
import { silentLogger } from '../logger.ts';
import type { ApprovalStore, ReleaseStore } from '../ports.ts';
import type { AppConfig } from '../schemas.ts';
import { artifactKey } from '../schemas.ts';
import { createFakeArtifactStore, createFakeFleet, createFakeMailer, createFakeNotifier, createFakeWorkflow, createManualClock, createSequentialIds } from './fakes.ts';
import { createMemoryApprovalStore } from './memory-approval-store.ts';
import { createMemoryReleaseStore } from './memory-release-store.ts';
import { createMemoryAuditStore, createMemoryTokenStore } from './memory-stores.ts';

export const BASE_URL = 'https://deploy.example.com';

/**
 * Slipway wired on fakes only: every store in memory, a clock the test moves, ids in creation
 * order, a workflow that records the tokens it is told about, a fleet that runs nothing. What
 * `composeSlipway` (the runtimes' composition root) builds from these is the code under test.
 */
export function createTestSlipway(options: {
  start?: string;
  analysis?: AnalysisSources;
  /** What the services see of the release store: a test counts its calls, or fails one, here. */
  storeSeenBy?: (store: ReleaseStore) => ReleaseStore;
  /** What the services see of the approval store (the release store reads the gates it holds itself). */
  approvalStoreSeenBy?: (store: ApprovalStore) => ApprovalStore;
} = {}) {
  const clock = createManualClock(options.start);
  const ids = createSequentialIds();
  const approvalStore = createMemoryApprovalStore();
  const store = createMemoryReleaseStore(approvalStore);
  const workflow = createFakeWorkflow();
  const fleet = createFakeFleet();
  const mailer = createFakeMailer();
  const notifier = createFakeNotifier();
  const objects = createFakeArtifactStore();
  const slipway = composeSlipway(
    {
      store: options.storeSeenBy ? options.storeSeenBy(store) : store,
      tokens: createMemoryTokenStore(),
      objects,
      approvalStore: options.approvalStoreSeenBy ? options.approvalStoreSeenBy(approvalStore) : approvalStore,
      auditStore: createMemoryAuditStore(),
      workflow,
      fleet,
      mailer,
      notifier,
      clock,
      ids,
      logger: silentLogger,
      ...(options.analysis ? { analysis: options.analysis } : {}),
    },
    { baseUrl: () => BASE_URL, signingKey: 'test-signing-key' },
  );
  const stages = slipway.stages!;

  /** Stores the app's config and one uploaded artifact of it; answers the artifact's sha256. */
  async function appWithArtifact(config: AppConfig, sha256 = 'a'.repeat(64)) {
    await store.putApp(config, 'admin', clock.now().toISOString());
    objects.store(artifactKey(config.name, sha256), sha256, 1024);
    return sha256;
  }

  /** Opens a release of `app` at `version` as `openedBy`, through the release service. */
  async function open(app: string, version: string, sha256 = 'a'.repeat(64), openedBy = 'dev@example.com') {
    return slipway.releases.open(
      { app, version, artifact: { key: artifactKey(app, sha256), sha256 } },
      { name: openedBy, role: 'deployer' },
    );
  }

  /** Lets the fleet report the command last sent of `kind` as finished (the status callback). */
  async function finish(kind: string) {
    const command = fleet.last(kind);
    if (!command) throw new Error(`no ${kind} command was sent`);
    await stages.commandFinished(command.commandId);
    return command;
  }

  return { slipway, stages, store, approvalStore, workflow, fleet, mailer, notifier, objects, clock, ids, appWithArtifact, open, finish };
}
export type TestSlipway = ReturnType<typeof createTestSlipway>;
