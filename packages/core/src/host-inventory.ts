import type { AppService } from './apps.ts';
import type { Principal } from './auth.ts';
import { NotFoundError } from './errors.ts';
import { parseScanOutput } from './host-scripts.ts';
import type { Clock, IdGenerator } from './ids.ts';
import type { Logger } from './logger.ts';
import type {
  EnvironmentLiveStore,
  Fleet,
  HostInventoryStore,
  HostInvocation,
  HostRecord,
  ReleaseRecordStore,
  StepRecord,
} from './ports.ts';
import { targetOf } from './stages/context.ts';

/**
 * Which release each host of an environment runs, against the one the environment says is live.
 * Known from every switch and revert as it ends on a host (no scan needed after a release or a
 * rollback), and from a scan: a read-only command that reads `current` and `releases/` on each host.
 */

export interface HostView {
  host: string;
  current: { releaseId: string; version: string } | null;
  /** The release the environment says is live; null when none is. */
  expected: string | null;
  /** Not on `expected`, or not answering the last scan. */
  drift: boolean;
  retained: string[];
  /** When the host was last seen; null for a target host never seen yet. */
  checkedAt: string | null;
  source: HostRecord['source'] | null;
  unreachable?: string;
}

export interface ScanResult {
  hosts: HostView[];
  scanned: number;
  unreachable: number;
}

/** The one drift rule: a host drifts when it is not on the live release, or did not answer. */
export function hostView(host: string, record: HostRecord | undefined, expected: string | null): HostView {
  const current = record?.current ?? null;
  return {
    host,
    current,
    expected,
    drift: record?.unreachable !== undefined || (current?.releaseId ?? null) !== expected,
    retained: record?.retained ?? [],
    checkedAt: record?.checkedAt ?? null,
    source: record?.source ?? null,
    ...(record?.unreachable !== undefined ? { unreachable: record.unreachable } : {}),
  };
}

/** How long a scan waits for every host to answer: within an API request's 30 seconds. */
export const SCAN_WAIT_MS = 25_000;
/** What the scan command may run on a host before it is stopped. */
const SCAN_TIMEOUT_SECONDS = 20;
const SCAN_POLL_MS = 250;
const REASON_LIMIT = 300;

export interface HostInventoryDeps {
  store: HostInventoryStore & Pick<EnvironmentLiveStore, 'getEnvironmentLive'> & Pick<ReleaseRecordStore, 'getRelease'>;
  apps: Pick<AppService, 'requireApp'>;
  /** Absent where no host can be reached (then the list is what switches and earlier scans recorded). */
  fleet?: Fleet;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  /** Waits between looks at a running scan; a test hands in its own. */
  sleep?: (ms: number) => Promise<void>;
}

export function createHostInventory({ store, apps, fleet, clock, ids, logger, sleep }: HostInventoryDeps) {
  const pause = sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));

  async function environmentOf(appName: string, environment: string) {
    const app = await apps.requireApp(appName);
    const env = app.config.environments.find((e) => e.name === environment);
    if (!env) throw new NotFoundError(`app ${appName} has no environment ${environment}`);
    return { app, env };
  }

  async function views(app: string, environment: string, targetHosts: string[]): Promise<HostView[]> {
    const [records, live] = await Promise.all([store.listHostRecords(app, environment), store.getEnvironmentLive(app, environment)]);
    const byHost = new Map(records.map((record) => [record.host, record]));
    const expected = live?.liveRelease?.id ?? null;
    const hosts = [...new Set([...targetHosts, ...byHost.keys()])].sort();
    return hosts.map((host) => hostView(host, byHost.get(host), expected));
  }

  /** Versions of release ids, each looked up once. */
  function versionLookup() {
    const cache = new Map<string, Promise<string>>();
    return (releaseId: string) => {
      if (!cache.has(releaseId)) cache.set(releaseId, store.getRelease(releaseId).then((r) => r?.version ?? 'unknown'));
      return cache.get(releaseId)!;
    };
  }

  return {
    /** Every target host of the environment (and any recorded before), with what it runs and whether it drifts. */
    async list(appName: string, environment: string): Promise<HostView[]> {
      const { app, env } = await environmentOf(appName, environment);
      const resolved = fleet ? await fleet.resolveTargets(env.targets) : undefined;
      const targets = resolved ? [...resolved.hosts, ...resolved.unreachable.map((u) => u.host)] : 'hosts' in env.targets ? env.targets.hosts : [];
      return views(app.config.name, env.name, targets);
    },

    /**
     * Runs the read-only scan command on every target host (the releases' transport), records what
     * each answered, and answers the list. A host that cannot take commands, fails the scan or does
     * not answer within SCAN_WAIT_MS is recorded unreachable, keeping what it was last seen running.
     */
    async scan(appName: string, environment: string, actor: Principal): Promise<ScanResult> {
      const { app, env } = await environmentOf(appName, environment);
      if (!fleet) throw new NotFoundError('this runtime has no fleet to scan');
      const resolved = await fleet.resolveTargets(env.targets);
      const commandId = ids.next();
      const at = () => clock.now().toISOString();
      logger.info('host scan started', { app: app.config.name, environment: env.name, hosts: resolved.hosts.length, commandId, actor: actor.name });
      let invocations: HostInvocation[] = [];
      if (resolved.hosts.length > 0) {
        await fleet.send({ commandId, hosts: resolved.hosts, script: { kind: 'scan', deployRoot: app.config.deployRoot }, timeoutSeconds: SCAN_TIMEOUT_SECONDS });
        const deadline = clock.now().getTime() + SCAN_WAIT_MS;
        for (;;) {
          const results = await fleet.results(commandId);
          invocations = results.invocations;
          if (results.finished || clock.now().getTime() >= deadline) break;
          await pause(SCAN_POLL_MS);
        }
      }
      const previous = new Map((await store.listHostRecords(app.config.name, env.name)).map((r) => [r.host, r]));
      const versionOf = versionLookup();
      const answered = new Map(invocations.map((invocation) => [invocation.host, invocation]));
      const records: HostRecord[] = [];
      const unreachable = (host: string, reason: string): HostRecord => ({
        app: app.config.name,
        environment: env.name,
        host,
        current: previous.get(host)?.current ?? null,
        retained: previous.get(host)?.retained ?? [],
        checkedAt: at(),
        source: 'scan',
        unreachable: reason.slice(0, REASON_LIMIT),
      });
      for (const { host, reason } of resolved.unreachable) records.push(unreachable(host, reason));
      for (const host of resolved.hosts) {
        const invocation = answered.get(host);
        if (!invocation) {
          records.push(unreachable(host, `no answer to the scan within ${SCAN_WAIT_MS / 1000} s`));
        } else if (invocation.status !== 'success') {
          const said = invocation.stderr.trim().split('\n').at(-1) ?? '';
          records.push(unreachable(host, `the scan ${invocation.status} (exit ${invocation.exitCode ?? 'none'})${said ? `: ${said}` : ''}`));
        } else {
          const scanned = parseScanOutput(invocation.stdout);
          records.push({
            app: app.config.name,
            environment: env.name,
            host,
            current: scanned.currentReleaseId
              ? { releaseId: scanned.currentReleaseId, version: await versionOf(scanned.currentReleaseId) }
              : null,
            retained: scanned.releases,
            checkedAt: at(),
            source: 'scan',
          });
        }
      }
      await store.putHostRecords(records);
      const hosts = await views(app.config.name, env.name, [...resolved.hosts, ...resolved.unreachable.map((u) => u.host)]);
      const result = { hosts, scanned: records.length, unreachable: records.filter((r) => r.unreachable !== undefined).length };
      logger.info('host scan ended', {
        app: app.config.name,
        environment: env.name,
        commandId,
        scanned: result.scanned,
        unreachable: result.unreachable,
        drifting: hosts.filter((h) => h.drift).length,
      });
      return result;
    },
  };
}

/**
 * Records where a switch or a revert left each host it ended on, from the command's outcome: a
 * switched host is on the release it switched to; a reverted one is back on what is live (the
 * environment's live record does not move until the environment completes). Failed hosts are left
 * as last known: where a failed switch stopped is for the revert, or a scan, to say.
 */
export function createHostOutcomeRecorder(deps: {
  store: HostInventoryStore & Pick<EnvironmentLiveStore, 'getEnvironmentLive'> & Pick<ReleaseRecordStore, 'getRelease'>;
  clock: Clock;
}) {
  const { store, clock } = deps;
  return async function recordCommandOutcome(step: StepRecord, invocations: HostInvocation[]): Promise<void> {
    if (step.kind !== 'switch' && step.kind !== 'revert') return;
    const succeeded = invocations.filter((invocation) => invocation.status === 'success');
    if (succeeded.length === 0) return;
    const release = await store.getRelease(step.releaseId);
    if (!release) return;
    let current: HostRecord['current'];
    if (step.kind === 'switch') {
      current = { releaseId: targetOf(release), version: release.version };
    } else {
      const live = (await store.getEnvironmentLive(release.app, step.environment))?.liveRelease;
      current = live ? { releaseId: live.id, version: live.version } : null;
    }
    const previous = new Map((await store.listHostRecords(release.app, step.environment)).map((r) => [r.host, r]));
    const at = clock.now().toISOString();
    await store.putHostRecords(
      succeeded.map(({ host }) => {
        const retained = previous.get(host)?.retained ?? [];
        return {
          app: release.app,
          environment: step.environment,
          host,
          current,
          // Newest first, as a scan lists them (release ids sort by creation).
          retained: current && !retained.includes(current.releaseId) ? [...retained, current.releaseId].sort().reverse() : retained,
          checkedAt: at,
          source: step.kind as 'switch' | 'revert',
        };
      }),
    );
  };
}

export type HostInventory = ReturnType<typeof createHostInventory>;
