import { ConflictError, EnvironmentLockedError, ValidationError } from '../errors.ts';
import type { ReleasePlan } from '../plan.ts';
import type {
  AppStore,
  ApprovalStore,
  ArtifactRecord,
  ArtifactRecordStore,
  EnvironmentLiveStore,
  HostInventoryStore,
  HostRecord,
  EventStore,
  IdempotencyRecord,
  IdempotencyStore,
  ListReleasesFilter,
  LockStore,
  PlanStore,
  QueueWaiter,
  ReleaseRecordStore,
  ReleaseStore,
  StepRecord,
  StepStore,
  StoredApp,
} from '../ports.ts';
import type { EnvironmentLive, EnvironmentLock, EnvironmentState, HostState, HostStepOutput, Release, ReleaseEvent } from '../release.ts';
import { compareCodeUnits, hostSummaryOf } from '../release.ts';

/**
 * In-memory fakes of the release table's ports, one per port, for unit tests. Each keeps the
 * DynamoDB store's semantics that callers rely on (create-once, compare-and-set, lease expiry, line
 * order, reads that see every write before them) and passes the same contract suite
 * (test/contract), so a test written against a fake holds against DynamoDB. Every read and write
 * copies: a caller never holds the fake's own object.
 */

const copy = <T>(value: T): T => structuredClone(value);
/** The values in key order: the order DynamoDB reads items of one partition in. */
const byKey = <T>(entries: Iterable<[string, T]>) => [...entries].sort(([a], [b]) => compareCodeUnits(a, b)).map(([, value]) => value);

/** Each fake can forget one release's records: the composed store's `deleteRelease`. */
interface Forgets {
  forgetRelease(releaseId: string): void;
}

export function createMemoryAppStore(): AppStore {
  const apps = new Map<string, StoredApp>();
  return {
    async putApp(config, actor, now, expectedRevision) {
      const current = apps.get(config.name);
      const stale = expectedRevision !== undefined && (current?.revision ?? 0) !== expectedRevision;
      if (stale) {
        throw new ConflictError(`app ${config.name} was changed by someone else (expected revision ${expectedRevision}); read it again`);
      }
      const stored = { config: copy(config), revision: (current?.revision ?? 0) + 1, updatedAt: now, updatedBy: actor };
      apps.set(config.name, stored);
      return copy(stored);
    },
    async getApp(name) {
      const stored = apps.get(name);
      return stored ? copy(stored) : undefined;
    },
    async listApps() {
      return [...apps.keys()].sort();
    },
  };
}

/** A listing's cursor: where the next page starts, and which listing gave it out. */
function encodeCursor(partition: string, lastId: string) {
  return Buffer.from(JSON.stringify({ partition, lastId }), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string, partition: string): string {
  const invalid = () =>
    new ValidationError('cursor is not one this listing gave out; start again without it', [
      { field: 'cursor', message: 'is not valid for this listing' },
    ]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  const { partition: given, lastId } = (parsed ?? {}) as { partition?: unknown; lastId?: unknown };
  if (given !== partition || typeof lastId !== 'string') throw invalid();
  return lastId;
}

export function createMemoryReleaseRecords(): ReleaseRecordStore & Forgets {
  const releases = new Map<string, Release>();
  /** releaseId -> environment -> state. */
  const environments = new Map<string, Map<string, EnvironmentState>>();

  const putState = (state: EnvironmentState) => {
    const forRelease = environments.get(state.releaseId) ?? new Map<string, EnvironmentState>();
    forRelease.set(state.environment, copy(state));
    environments.set(state.releaseId, forRelease);
  };

  /** The ids a listing walks, in release-id order, as the table's indexes hold them. */
  function partitionOf(filter: ListReleasesFilter): { partition: string; ids: string[] } {
    if (filter.environment) {
      const partition = `ENVREL#${filter.app}#${filter.environment}`;
      const ids = [...environments.entries()]
        .filter(([, states]) => [...states.values()].some((s) => s.app === filter.app && s.environment === filter.environment))
        .map(([id]) => id);
      return { partition, ids };
    }
    if (filter.app) {
      return { partition: `APPREL#${filter.app}`, ids: [...releases.values()].filter((r) => r.app === filter.app).map((r) => r.id) };
    }
    return { partition: 'RELEASES', ids: [...releases.keys()] };
  }

  return {
    async createRelease(release, states) {
      // As in DynamoDB: the environments first, then the release item, once.
      for (const state of states) putState(state);
      if (releases.has(release.id)) throw new ConflictError(`release ${release.id} already exists`);
      releases.set(release.id, copy(release));
    },

    async getRelease(id) {
      const release = releases.get(id);
      return release ? copy(release) : undefined;
    },

    async getReleases(ids) {
      return ids.flatMap((id) => (releases.has(id) ? [copy(releases.get(id)!)] : []));
    },

    async updateReleaseStatus(id, from, to, now, reason) {
      const current = releases.get(id);
      if (!current || current.status !== from) {
        throw new ConflictError(
          current ? `release ${id} is ${current.status}, not ${from}; it cannot move to ${to}` : `release ${id} does not exist`,
          { details: { expected: from, actual: current?.status ?? null } },
        );
      }
      const moved = { ...current, status: to, updatedAt: now, ...(reason === undefined ? {} : { reason }) };
      releases.set(id, moved);
      return copy(moved);
    },

    async listReleases(filter) {
      const { partition, ids } = partitionOf(filter);
      const after = filter.cursor ? decodeCursor(filter.cursor, partition) : undefined;
      const ordered = ids.sort();
      if (!filter.oldestFirst) ordered.reverse();
      const rest = after === undefined ? ordered : ordered.filter((id) => (filter.oldestFirst ? id > after : id < after));
      const page = rest.slice(0, filter.limit);
      // DynamoDB stops at the limit and says where, whether or not anything follows.
      const nextCursor = page.length === filter.limit && page.length > 0 ? encodeCursor(partition, page.at(-1)!) : undefined;
      // An environment record whose release item never landed lists nothing.
      const items = page.flatMap((id) => (releases.has(id) ? [copy(releases.get(id)!)] : []));
      return { items, ...(nextCursor ? { nextCursor } : {}) };
    },

    async getEnvironmentStates(releaseId) {
      return byKey(environments.get(releaseId) ?? []).map(copy);
    },

    async putEnvironmentState(state, expectedStatus) {
      const current = environments.get(state.releaseId)?.get(state.environment);
      if (expectedStatus !== undefined && current?.status !== expectedStatus) {
        throw new ConflictError(
          current
            ? `${state.environment} of release ${state.releaseId} is ${current.status}, not ${expectedStatus}; read it again`
            : `release ${state.releaseId} has no environment ${state.environment}`,
          { details: { expected: expectedStatus, actual: current?.status ?? null } },
        );
      }
      putState(state);
    },

    forgetRelease(releaseId) {
      releases.delete(releaseId);
      environments.delete(releaseId);
    },
  };
}

export function createMemoryEventStore(): EventStore & Forgets {
  const events = new Map<string, Map<string, ReleaseEvent>>();
  return {
    async appendEvent(event) {
      const log = events.get(event.releaseId) ?? new Map<string, ReleaseEvent>();
      if (!log.has(event.id)) log.set(event.id, copy(event));
      events.set(event.releaseId, log);
    },
    async listEvents(releaseId) {
      return byKey(events.get(releaseId) ?? []).map(copy);
    },
    forgetRelease(releaseId) {
      events.delete(releaseId);
    },
  };
}

export function createMemoryLockStore(): LockStore {
  const locks = new Map<string, EnvironmentLock>();
  /** `<app>#<env>` -> releaseId -> waiter. */
  const lines = new Map<string, Map<string, QueueWaiter>>();
  const lineOf = (app: string, environment: string) => `${app}#${environment}`;

  return {
    async acquireLock(lock, now) {
      const key = lineOf(lock.app, lock.environment);
      const current = locks.get(key);
      if (current && current.holder !== lock.holder && !(current.leaseUntil < now)) {
        throw new EnvironmentLockedError(lock.app, lock.environment, current.holder, current.leaseUntil);
      }
      locks.set(key, copy(lock));
    },
    async releaseLock(app, environment, holder) {
      if (locks.get(lineOf(app, environment))?.holder === holder) locks.delete(lineOf(app, environment));
    },
    async getLock(app, environment) {
      const lock = locks.get(lineOf(app, environment));
      return lock ? copy(lock) : undefined;
    },
    async getLocks(app, names) {
      return names.flatMap((environment) => {
        const lock = locks.get(lineOf(app, environment));
        return lock ? [copy(lock)] : [];
      });
    },

    async joinQueue(waiter) {
      const key = lineOf(waiter.app, waiter.environment);
      const line = lines.get(key) ?? new Map<string, QueueWaiter>();
      lines.set(key, line);
      const there = line.get(waiter.releaseId);
      // In line already: its place and its `since` stay, the token is the new one.
      line.set(waiter.releaseId, there ? { ...there, taskToken: waiter.taskToken } : copy(waiter));
      return { created: !there };
    },
    async listQueue(app, environment, limit) {
      const line = byKey(lines.get(lineOf(app, environment)) ?? []);
      return (limit === undefined ? line : line.slice(0, limit)).map(copy);
    },
    async leaveQueue(app, environment, releaseId) {
      lines.get(lineOf(app, environment))?.delete(releaseId);
    },
    async listQueuedEnvironments(limit) {
      const waiters = [...lines.values()]
        .flatMap((line) => [...line.values()])
        .sort((a, b) => {
          const [x, y] = [`${a.app}#${a.environment}#${a.releaseId}`, `${b.app}#${b.environment}#${b.releaseId}`];
          return x < y ? -1 : x > y ? 1 : 0;
        })
        .slice(0, limit);
      const seen = new Map<string, { app: string; environment: string }>();
      for (const { app, environment } of waiters) seen.set(lineOf(app, environment), { app, environment });
      return [...seen.values()];
    },
  };
}

export function createMemoryPlanStore(): PlanStore & Forgets {
  const plans = new Map<string, ReleasePlan>();
  /** releaseId -> `<env>#<host>` -> host without its steps. */
  const hosts = new Map<string, Map<string, Omit<HostState, 'steps'>>>();
  /** releaseId -> `<env>#<host>` -> step -> output. */
  const outputs = new Map<string, Map<string, Map<string, HostStepOutput>>>();

  const hostsOf = (releaseId: string) => {
    const found = hosts.get(releaseId) ?? new Map<string, Omit<HostState, 'steps'>>();
    hosts.set(releaseId, found);
    return found;
  };

  return {
    async savePlan(plan) {
      if (!plans.has(plan.releaseId)) plans.set(plan.releaseId, copy(plan));
      return copy(plans.get(plan.releaseId)!);
    },
    async getPlan(releaseId) {
      const plan = plans.get(releaseId);
      return plan ? copy(plan) : undefined;
    },

    async ensureHostStates(releaseId, environment, names, now) {
      const known = hostsOf(releaseId);
      for (const host of names) {
        const key = `${environment}#${host}`;
        if (!known.has(key)) known.set(key, { releaseId, environment, host, status: 'pending', updatedAt: now });
      }
    },
    async getHostOutput(releaseId, environment, host, step) {
      const output = outputs.get(releaseId)?.get(`${environment}#${host}`)?.get(step);
      return output ? copy(output) : undefined;
    },
    async recordHostOutcomes(releaseId, environment, step, outcomes, now) {
      const known = hostsOf(releaseId);
      const forRelease = outputs.get(releaseId) ?? new Map<string, Map<string, HostStepOutput>>();
      outputs.set(releaseId, forRelease);
      for (const { host, status, output } of outcomes) {
        const key = `${environment}#${host}`;
        if (status) known.set(key, { releaseId, environment, host, status, updatedAt: now });
        const forHost = forRelease.get(key) ?? new Map<string, HostStepOutput>();
        forRelease.set(key, forHost);
        forHost.set(step, copy(output));
      }
    },
    async getHostStates(releaseId) {
      return [...(hosts.get(releaseId) ?? new Map<string, Omit<HostState, 'steps'>>()).entries()]
        .sort(([a], [b]) => compareCodeUnits(a, b))
        .map(([key, host]) => ({
          ...copy(host),
          steps: Object.fromEntries([...(outputs.get(releaseId)?.get(key) ?? [])].map(([step, out]) => [step, copy(out)])),
        }));
    },

    forgetRelease(releaseId) {
      plans.delete(releaseId);
      hosts.delete(releaseId);
      outputs.delete(releaseId);
    },
  };
}

export function createMemoryStepStore(): StepStore & Forgets {
  /** `<releaseId>#<key>` -> step. */
  const steps = new Map<string, StepRecord>();
  /** commandId -> `<releaseId>#<key>`. */
  const commands = new Map<string, string>();
  /** Steps that started as running host commands and have not settled: the sweep's index. */
  const running = new Set<string>();
  const idOf = (releaseId: string, key: string) => `${releaseId}#${key}`;

  return {
    async startStep(step) {
      const id = idOf(step.releaseId, step.key);
      if (step.commandId) commands.set(step.commandId, id);
      const there = steps.get(id);
      if (there) return { created: false, step: copy(there) };
      steps.set(id, copy(step));
      if (step.state === 'running' && step.commandId) running.add(id);
      return { created: true, step: copy(step) };
    },
    async replaceStepToken(releaseId, key, taskToken, now) {
      const step = steps.get(idOf(releaseId, key));
      if (step?.state !== 'running') return undefined;
      const replaced = { ...step, taskToken, updatedAt: now };
      steps.set(idOf(releaseId, key), replaced);
      return copy(replaced);
    },
    async completeStep(releaseId, key, outcome, now) {
      const id = idOf(releaseId, key);
      const step = steps.get(id);
      if (!step) throw new Error(`step ${key} of release ${releaseId} was never started`);
      if (step.state !== 'running') return { settled: false, step: copy(step) };
      const settled: StepRecord = {
        ...step,
        state: outcome.status,
        updatedAt: now,
        ...(outcome.output ? { output: copy(outcome.output) } : {}),
        ...(outcome.error ? { error: outcome.error } : {}),
        ...(outcome.cause ? { cause: outcome.cause } : {}),
      };
      steps.set(id, settled);
      running.delete(id);
      return { settled: true, step: copy(settled) };
    },
    async getStep(releaseId, key) {
      const step = steps.get(idOf(releaseId, key));
      return step ? copy(step) : undefined;
    },
    async getStepByCommand(commandId) {
      const id = commands.get(commandId);
      const step = id === undefined ? undefined : steps.get(id);
      return step ? copy(step) : undefined;
    },
    async listSteps(releaseId) {
      return [...steps.values()]
        .filter((step) => step.releaseId === releaseId)
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
        .map(copy);
    },
    async listRunningCommandSteps(limit) {
      const order = (step: StepRecord) => `${step.createdAt}#${step.releaseId}#${step.key}`;
      return [...running]
        .map((id) => steps.get(id)!)
        .sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0))
        .slice(0, limit)
        .map(copy);
    },
    forgetRelease(releaseId) {
      for (const [id, step] of steps) {
        if (step.releaseId !== releaseId) continue;
        steps.delete(id);
        running.delete(id);
        if (step.commandId) commands.delete(step.commandId);
      }
    },
  };
}

export function createMemoryEnvironmentLive(): EnvironmentLiveStore {
  const live = new Map<string, EnvironmentLive>();
  return {
    async getEnvironmentLive(app, environment) {
      const found = live.get(`${app}#${environment}`);
      return found ? copy(found) : undefined;
    },
    async putEnvironmentLive(record) {
      live.set(`${record.app}#${record.environment}`, copy(record));
    },
  };
}

export function createMemoryArtifactRecords(): ArtifactRecordStore {
  const records = new Map<string, ArtifactRecord>();
  return {
    async putArtifactRecord(record) {
      records.set(`${record.app}#${record.sha256}`, copy(record));
    },
    async getArtifactRecord(app, sha256) {
      const record = records.get(`${app}#${sha256}`);
      return record ? copy(record) : undefined;
    },
    async listArtifactRecords(app) {
      return [...records.values()]
        .filter((record) => record.app === app)
        .sort((a, b) => (a.sha256 < b.sha256 ? -1 : 1))
        .map(copy);
    },
    async deleteArtifactRecord(app, sha256) {
      records.delete(`${app}#${sha256}`);
    },
  };
}

export function createMemoryHostInventory(): HostInventoryStore {
  const records = new Map<string, HostRecord>();
  return {
    async putHostRecords(list) {
      for (const record of list) records.set(`${record.app}#${record.environment}#${record.host}`, copy(record));
    },
    async listHostRecords(app, environment) {
      return [...records.values()]
        .filter((record) => record.app === app && record.environment === environment)
        .sort((a, b) => (a.host < b.host ? -1 : 1))
        .map(copy);
    },
  };
}

/** Every fake together, as the one object the runtimes wire; `deleteRelease` empties each of them. */
export function createMemoryIdempotencyStore(): IdempotencyStore {
  const records = new Map<string, IdempotencyRecord>();
  return {
    async claimIdempotencyKey(claim, now) {
      const held = records.get(claim.key);
      const live = held && !(held.expiresAt < now) && !(held.status === 'in_progress' && held.inProgressUntil < now);
      if (held && live) return { claimed: false, record: copy(held) };
      records.set(claim.key, { ...copy(claim), status: 'in_progress' });
      return { claimed: true };
    },
    async completeIdempotencyKey(key, response, expiresAt) {
      const held = records.get(key);
      if (held) records.set(key, { ...held, status: 'completed', response: copy(response), expiresAt });
    },
    async releaseIdempotencyKey(key) {
      records.delete(key);
    },
  };
}

/**
 * The release store's fakes composed, as the DynamoDB release store composes its ports. The approval
 * records the whole release read returns come from `approvals` (on DynamoDB they share the
 * release's partition); a store made without one reads none.
 */
export function createMemoryReleaseStore(approvals?: Pick<ApprovalStore, 'listRequests' | 'listDecisions'>): ReleaseStore {
  const records = createMemoryReleaseRecords();
  const events = createMemoryEventStore();
  const plans = createMemoryPlanStore();
  const steps = createMemoryStepStore();
  const { forgetRelease: _records, ...recordPorts } = records;
  const { forgetRelease: _events, ...eventPorts } = events;
  const { forgetRelease: _plans, ...planPorts } = plans;
  const { forgetRelease: _steps, ...stepPorts } = steps;
  return {
    ...createMemoryAppStore(),
    ...recordPorts,
    async openRelease(release, environments, firstEvents) {
      // As in DynamoDB: the events with the environments, then the release item, once.
      for (const event of firstEvents) await events.appendEvent(event);
      await records.createRelease(release, environments);
    },
    async readWholeRelease(id) {
      const release = await records.getRelease(id);
      if (!release) return undefined;
      const [plan, environments, hosts, log, stepList, requests] = await Promise.all([
        plans.getPlan(id),
        records.getEnvironmentStates(id),
        plans.getHostStates(id),
        events.listEvents(id),
        steps.listSteps(id),
        approvals?.listRequests(id) ?? [],
      ]);
      const decisions = (await Promise.all(requests.map((request) => approvals!.listDecisions(id, request.environment)))).flat();
      // As in DynamoDB: each step's outcome, not its output.
      return {
        release,
        ...(plan ? { plan } : {}),
        environments,
        hosts: hosts.map(hostSummaryOf),
        events: log,
        steps: stepList,
        approvals: { requests, decisions },
      };
    },
    ...eventPorts,
    ...createMemoryLockStore(),
    ...planPorts,
    ...stepPorts,
    ...createMemoryEnvironmentLive(),
    ...createMemoryArtifactRecords(),
    ...createMemoryIdempotencyStore(),
    ...createMemoryHostInventory(),
    async deleteRelease(id) {
      for (const part of [steps, plans, events, records]) part.forgetRelease(id);
    },
  };
}
