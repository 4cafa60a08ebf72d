import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  type AppConfig,
  type ArtifactRecord,
  ConflictError,
  type EnvironmentLive,
  type EnvironmentLock,
  EnvironmentLockedError,
  type EnvironmentPlan,
  type EnvironmentState,
  type HostState,
  type HostStepOutput,
  type ReleasePlan,
  type StepRecord,
  type ListReleasesFilter,
  type Page,
  type QueueWaiter,
  type Release,
  type ReleaseEvent,
  type ReleaseStatus,
  type ReleaseStore,
  type StoredApp,
  ValidationError,
} from '@slipway/core';
import { conditionally, putIfAbsent, translateSdkError } from './errors.ts';
import { keys, withoutKeys } from './table.ts';

type Item = Record<string, unknown>;

const CURSOR_KEYS = new Set(['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk']);

function encodeCursor(lastKey: Item | undefined): string | undefined {
  return lastKey ? Buffer.from(JSON.stringify(lastKey), 'utf8').toString('base64url') : undefined;
}

/** A cursor is only ever a key of the same listing; anything else is refused, not passed to DynamoDB. */
function decodeCursor(cursor: string, partitionAttribute: string, partitionValue: string): Item {
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
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid();
  const entries = Object.entries(parsed);
  const wellFormed = entries.every(([key, value]) => CURSOR_KEYS.has(key) && typeof value === 'string');
  if (!wellFormed || (parsed as Item)[partitionAttribute] !== partitionValue) throw invalid();
  return parsed as Item;
}

/** One environment's part of a stored plan (the `PLAN` item names the parts, in pipeline order). */
const planEnvironmentKey = (releaseId: string, environment: string) => ({ pk: `REL#${releaseId}`, sk: `PLAN#${environment}` });

/**
 * A release waiting in line for an environment's lock: `QUEUE#<app>#<env>` / `WAIT#<releaseId>`, so
 * a query lists the line in release-id order (ULIDs: the order releases were opened). gsi2
 * `QUEUED` / `<app>#<env>#<releaseId>` lists every waiter, environment by environment, for the sweep.
 */
const queueKey = (app: string, environment: string, releaseId: string) => ({ pk: `QUEUE#${app}#${environment}`, sk: `WAIT#${releaseId}` });
const QUEUED_INDEX_KEY = 'QUEUED';

export function createDynamoReleaseStore(client: DynamoDBDocumentClient, tableName: string): ReleaseStore {
  async function call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw translateSdkError(error, `the release table (${what})`);
    }
  }

  async function queryAll(input: Omit<QueryCommandInput, 'TableName'>): Promise<Item[]> {
    const items: Item[] = [];
    let start: Item | undefined;
    do {
      const page = await call('query', () =>
        client.send(new QueryCommand({ TableName: tableName, ...input, ExclusiveStartKey: start })),
      );
      items.push(...((page.Items ?? []) as Item[]));
      start = page.LastEvaluatedKey as Item | undefined;
    } while (start);
    return items;
  }

  async function queryPrefix(pk: string, prefix: string): Promise<Item[]> {
    // Strongly consistent: a stage reads an environment's status, then writes the next one.
    return queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': pk, ':prefix': prefix },
      ConsistentRead: true,
    });
  }

  async function get(key: Item): Promise<Item | undefined> {
    const result = await call('get', () =>
      client.send(new GetCommand({ TableName: tableName, Key: key, ConsistentRead: true })),
    );
    return result.Item as Item | undefined;
  }

  async function put(item: Item): Promise<void> {
    await call('put', () => client.send(new PutCommand({ TableName: tableName, Item: item })));
  }

  const putOnce = (item: Item, what: string) => putIfAbsent(client, tableName, item, `the release table (${what})`);

  async function batchGetReleases(ids: string[]): Promise<Release[]> {
    if (ids.length === 0) return [];
    const found = new Map<string, Release>();
    let pending: Item[] = ids.map((id) => keys.release(id));
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 1000)));
      const result = await call('batch get', () =>
        client.send(
          new BatchGetCommand({ RequestItems: { [tableName]: { Keys: pending, ConsistentRead: true } } }),
        ),
      );
      for (const item of (result.Responses?.[tableName] ?? []) as Item[]) {
        const release = withoutKeys<Release>(item);
        found.set(release.id, release);
      }
      pending = (result.UnprocessedKeys?.[tableName]?.Keys ?? []) as Item[];
    }
    // Environment records written before a release record that never landed have no release: skip them.
    return ids.flatMap((id) => (found.has(id) ? [found.get(id)!] : []));
  }

  async function batchPut(items: Item[]): Promise<void> {
    for (let i = 0; i < items.length; i += 25) {
      let requests = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
      for (let attempt = 0; requests.length > 0; attempt++) {
        if (attempt > 0)
          await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 1000)));
        const result = await call('batch write', () =>
          client.send(new BatchWriteCommand({ RequestItems: { [tableName]: requests } })),
        );
        requests = (result.UnprocessedItems?.[tableName] ?? []) as typeof requests;
      }
    }
  }

  async function batchDelete(keyList: Item[]): Promise<void> {
    for (let i = 0; i < keyList.length; i += 25) {
      let requests = keyList.slice(i, i + 25).map((Key) => ({ DeleteRequest: { Key } }));
      for (let attempt = 0; requests.length > 0; attempt++) {
        if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 1000)));
        const result = await call('batch delete', () => client.send(new BatchWriteCommand({ RequestItems: { [tableName]: requests } })));
        requests = (result.UnprocessedItems?.[tableName] ?? []) as typeof requests;
      }
    }
  }

  /** The stored plan, read consistently: Prepare reads back what it (or an earlier attempt) wrote. */
  async function readPlan(releaseId: string): Promise<ReleasePlan | undefined> {
    const items = await queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': `REL#${releaseId}`, ':prefix': 'PLAN' },
      ConsistentRead: true,
    });
    const head = items.find((item) => item.sk === keys.plan(releaseId).sk);
    if (!head) return undefined;
    const names = head.environments as (string | EnvironmentPlan)[];
    // A plan stored whole in one item, before plans were split: as it is.
    if (names.some((name) => typeof name !== 'string')) return withoutKeys<ReleasePlan>(head);
    const byName = new Map(items.map((item) => [item.sk, item]));
    const environments = (names as string[]).map((name) => {
      const item = byName.get(planEnvironmentKey(releaseId, name).sk);
      if (!item) throw new Error(`the plan of release ${releaseId} names environment ${name}, whose part is missing`);
      const { name: stored, approval, bakeSeconds, batches } = withoutKeys<EnvironmentPlan>(item);
      return { name: stored, approval, bakeSeconds, batches };
    });
    return { releaseId, app: String(head.app), environments };
  }

  return {
    async putApp(
      config: AppConfig,
      actor: string,
      now: string,
      expectedRevision?: number,
    ): Promise<StoredApp> {
      const guard =
        expectedRevision === undefined
          ? {}
          : expectedRevision === 0
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : {
                ConditionExpression: 'revision = :expected',
                ExpressionAttributeValues: { ':expected': expectedRevision },
              };
      return conditionally(
        'the release table (put app)',
        async () => {
          const result = await client.send(
            new UpdateCommand({
              TableName: tableName,
              Key: keys.app(config.name),
              UpdateExpression:
                'SET config = :config, updatedAt = :now, updatedBy = :actor, gsi2pk = :apps, gsi2sk = :name, ' +
                'revision = if_not_exists(revision, :zero) + :one',
              ...guard,
              ExpressionAttributeValues: {
                ':config': config,
                ':now': now,
                ':actor': actor,
                ':apps': 'APPS',
                ':name': config.name,
                ':zero': 0,
                ':one': 1,
                ...(guard.ExpressionAttributeValues ?? {}),
              },
              ReturnValues: 'ALL_NEW',
            }),
          );
          return withoutKeys<StoredApp>(result.Attributes as Item);
        },
        () => {
          throw new ConflictError(
            `app ${config.name} was changed by someone else (expected revision ${expectedRevision}); read it again`,
          );
        },
      );
    },

    async getApp(name) {
      const item = await get(keys.app(name));
      return item ? withoutKeys<StoredApp>(item) : undefined;
    },

    async listApps() {
      const items = await queryAll({
        IndexName: 'gsi2',
        KeyConditionExpression: 'gsi2pk = :apps',
        ExpressionAttributeValues: { ':apps': 'APPS' },
      });
      return items.map((item) => String(item.gsi2sk));
    },

    async createRelease(release: Release, environments: EnvironmentState[]) {
      // The release item is the anchor: environment items are written first, so a crash in between
      // leaves only records that no listing shows (batchGetReleases skips them).
      await batchPut(
        environments.map((env) => ({
          ...keys.releaseEnv(release.id, env.environment),
          gsi1pk: `ENVREL#${release.app}#${env.environment}`,
          gsi1sk: release.id,
          ...env,
        })),
      );
      const created = await putOnce(
        {
          ...keys.release(release.id),
          gsi1pk: `APPREL#${release.app}`,
          gsi1sk: release.id,
          gsi2pk: 'RELEASES',
          gsi2sk: release.id,
          ...release,
        },
        'create release',
      );
      if (!created) throw new ConflictError(`release ${release.id} already exists`);
    },

    async getRelease(id) {
      const item = await get(keys.release(id));
      return item ? withoutKeys<Release>(item) : undefined;
    },

    async updateReleaseStatus(
      id: string,
      from: ReleaseStatus,
      to: ReleaseStatus,
      now: string,
      reason?: string,
    ) {
      return conditionally(
        'the release table (update release)',
        async () => {
          const result = await client.send(
            new UpdateCommand({
              TableName: tableName,
              Key: keys.release(id),
              UpdateExpression: `SET #status = :to, updatedAt = :now${reason === undefined ? '' : ', reason = :reason'}`,
              ConditionExpression: 'attribute_exists(pk) AND #status = :from',
              ExpressionAttributeNames: { '#status': 'status' },
              ExpressionAttributeValues: {
                ':to': to,
                ':from': from,
                ':now': now,
                ...(reason === undefined ? {} : { ':reason': reason }),
              },
              ReturnValues: 'ALL_NEW',
            }),
          );
          return withoutKeys<Release>(result.Attributes as Item);
        },
        async () => {
          const current = await get(keys.release(id));
          throw new ConflictError(
            current
              ? `release ${id} is ${String(current.status)}, not ${from}; it cannot move to ${to}`
              : `release ${id} does not exist`,
            { details: { expected: from, actual: current?.status ?? null } },
          );
        },
      );
    },

    async listReleases(filter: ListReleasesFilter): Promise<Page<Release>> {
      const [index, partitionAttribute, partition] = filter.environment
        ? (['gsi1', 'gsi1pk', `ENVREL#${filter.app}#${filter.environment}`] as const)
        : filter.app
          ? (['gsi1', 'gsi1pk', `APPREL#${filter.app}`] as const)
          : (['gsi2', 'gsi2pk', 'RELEASES'] as const);
      const start = filter.cursor ? decodeCursor(filter.cursor, partitionAttribute, partition) : undefined;
      const page = await call('list releases', () =>
        client.send(
          new QueryCommand({
            TableName: tableName,
            IndexName: index,
            KeyConditionExpression: `${partitionAttribute} = :partition`,
            ExpressionAttributeValues: { ':partition': partition },
            ScanIndexForward: filter.oldestFirst === true,
            Limit: filter.limit,
            ExclusiveStartKey: start,
          }),
        ),
      );
      const found = (page.Items ?? []) as Item[];
      const items = filter.environment
        ? await batchGetReleases(found.map((item) => String(item.releaseId)))
        : found.map((item) => withoutKeys<Release>(item));
      const nextCursor = encodeCursor(page.LastEvaluatedKey as Item | undefined);
      return { items, ...(nextCursor ? { nextCursor } : {}) };
    },

    async getEnvironmentStates(releaseId) {
      return (await queryPrefix(`REL#${releaseId}`, 'ENV#')).map((item) =>
        withoutKeys<EnvironmentState>(item),
      );
    },

    async putEnvironmentState(state) {
      await put({
        ...keys.releaseEnv(state.releaseId, state.environment),
        gsi1pk: `ENVREL#${state.app}#${state.environment}`,
        gsi1sk: state.releaseId,
        ...state,
      });
    },

    async getHostStates(releaseId) {
      const [hosts, steps] = await Promise.all([
        queryPrefix(`REL#${releaseId}`, 'HOST#'),
        queryPrefix(`REL#${releaseId}`, 'HOSTSTEP#'),
      ]);
      const byHost = new Map<string, HostState>();
      for (const item of hosts) {
        const host = withoutKeys<HostState>(item);
        byHost.set(`${host.environment}#${host.host}`, { ...host, steps: {} });
      }
      for (const item of steps) {
        const { environment, host, step, exitCode, stdout, stderr, startedAt, endedAt } = withoutKeys<
          HostStepOutput & { releaseId: string; environment: string; host: string; step: string }
        >(item);
        const state = byHost.get(`${environment}#${host}`);
        if (state) state.steps[step] = { exitCode, stdout, stderr, startedAt, endedAt };
      }
      return [...byHost.values()];
    },

    async ensureHostStates(releaseId, environment, hosts, now) {
      for (let i = 0; i < hosts.length; i += 25) {
        await Promise.all(
          hosts
            .slice(i, i + 25)
            .map((host) =>
              putOnce(
                { ...keys.releaseHost(releaseId, environment, host), releaseId, environment, host, status: 'pending', updatedAt: now },
                'host states',
              ),
            ),
        );
      }
    },

    async setHostStatus(releaseId, environment, host, status, now) {
      await call('host status', () =>
        client.send(
          new UpdateCommand({
            TableName: tableName,
            Key: keys.releaseHost(releaseId, environment, host),
            UpdateExpression: 'SET #status = :status, updatedAt = :now, releaseId = :release, environment = :env, host = :host',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':status': status, ':now': now, ':release': releaseId, ':env': environment, ':host': host },
          }),
        ),
      );
    },

    async putHostStep(releaseId, environment, host, step, output) {
      await put({ ...keys.hostStep(releaseId, environment, host, step), releaseId, environment, host, step, ...output });
    },

    /**
     * One item per environment (`PLAN#<env>`, 5,000 instance ids are about 110 KB, and an item
     * holds at most 400 KB), then the `PLAN` item naming them, which makes the plan exist. Each is
     * written once: a second Prepare (a retry after a crash) gets the plan stored first.
     */
    async savePlan(plan: ReleasePlan) {
      await Promise.all(
        plan.environments.map((env) =>
          putOnce({ ...planEnvironmentKey(plan.releaseId, env.name), releaseId: plan.releaseId, ...env }, 'save plan'),
        ),
      );
      await putOnce(
        { ...keys.plan(plan.releaseId), releaseId: plan.releaseId, app: plan.app, environments: plan.environments.map((env) => env.name) },
        'save plan',
      );
      return (await readPlan(plan.releaseId))!;
    },

    getPlan: readPlan,

    async startStep(step: StepRecord) {
      if (step.commandId) {
        // The lookup goes first: an orphan lookup is harmless, a step the callback cannot find is not.
        await put({ ...keys.command(step.commandId), releaseId: step.releaseId, key: step.key });
      }
      const created = await putOnce(
        {
          ...keys.step(step.releaseId, step.key),
          // Running host commands sit in an index, so the reconciling sweep can find them.
          ...(step.state === 'running' && step.commandId
            ? { gsi2pk: 'STEPS#RUNNING', gsi2sk: `${step.createdAt}#${step.releaseId}#${step.key}` }
            : {}),
          ...step,
        },
        'start step',
      );
      if (created) return { created: true, step };
      return { created: false, step: withoutKeys<StepRecord>((await get(keys.step(step.releaseId, step.key)))!) };
    },

    async replaceStepToken(releaseId, key, taskToken, now) {
      return conditionally(
        'the release table (replace step token)',
        async () => {
          const result = await client.send(
            new UpdateCommand({
              TableName: tableName,
              Key: keys.step(releaseId, key),
              UpdateExpression: 'SET taskToken = :token, updatedAt = :now',
              ConditionExpression: '#state = :running',
              ExpressionAttributeNames: { '#state': 'state' },
              ExpressionAttributeValues: { ':token': taskToken, ':now': now, ':running': 'running' },
              ReturnValues: 'ALL_NEW',
            }),
          );
          return withoutKeys<StepRecord>(result.Attributes as Item);
        },
        () => undefined,
      );
    },

    async completeStep(releaseId, key, outcome, now) {
      return conditionally(
        'the release table (complete step)',
        async () => {
          const result = await client.send(
            new UpdateCommand({
              TableName: tableName,
              Key: keys.step(releaseId, key),
              UpdateExpression: [
                'SET #state = :state, updatedAt = :now',
                ...(outcome.output ? ['#output = :output'] : []),
                ...(outcome.error ? ['#error = :error'] : []),
                ...(outcome.cause ? ['#cause = :cause'] : []),
              ].join(', ') + ' REMOVE gsi2pk, gsi2sk',
              ConditionExpression: '#state = :running',
              ExpressionAttributeNames: {
                '#state': 'state',
                ...(outcome.output ? { '#output': 'output' } : {}),
                ...(outcome.error ? { '#error': 'error' } : {}),
                ...(outcome.cause ? { '#cause': 'cause' } : {}),
              },
              ExpressionAttributeValues: {
                ':state': outcome.status,
                ':now': now,
                ':running': 'running',
                ...(outcome.output ? { ':output': outcome.output } : {}),
                ...(outcome.error ? { ':error': outcome.error } : {}),
                ...(outcome.cause ? { ':cause': outcome.cause } : {}),
              },
              ReturnValues: 'ALL_NEW',
            }),
          );
          return withoutKeys<StepRecord>(result.Attributes as Item);
        },
        async () => withoutKeys<StepRecord>((await get(keys.step(releaseId, key)))!),
      );
    },

    async getStep(releaseId, key) {
      const item = await get(keys.step(releaseId, key));
      return item ? withoutKeys<StepRecord>(item) : undefined;
    },

    async getStepByCommand(commandId) {
      const lookup = await get(keys.command(commandId));
      if (!lookup) return undefined;
      const item = await get(keys.step(String(lookup.releaseId), String(lookup.key)));
      return item ? withoutKeys<StepRecord>(item) : undefined;
    },

    async listRunningCommandSteps(limit) {
      const page = await call('running steps', () =>
        client.send(
          new QueryCommand({
            TableName: tableName,
            IndexName: 'gsi2',
            KeyConditionExpression: 'gsi2pk = :running',
            ExpressionAttributeValues: { ':running': 'STEPS#RUNNING' },
            Limit: limit,
          }),
        ),
      );
      return ((page.Items ?? []) as Item[]).map((item) => withoutKeys<StepRecord>(item));
    },

    async listSteps(releaseId) {
      return (await queryPrefix(`REL#${releaseId}`, 'STEP#')).map((item) => withoutKeys<StepRecord>(item));
    },

    async appendEvent(event) {
      // Event ids are unique per append: an event already there is this very event, written before.
      await putOnce({ ...keys.releaseEvent(event.releaseId, event.id), ...event }, 'append event');
    },

    async listEvents(releaseId) {
      return (await queryPrefix(`REL#${releaseId}`, 'EVENT#')).map((item) => withoutKeys<ReleaseEvent>(item));
    },

    async acquireLock(lock: EnvironmentLock, now: string) {
      await conditionally(
        'the release table (acquire lock)',
        () =>
          client.send(
            new PutCommand({
              TableName: tableName,
              Item: { ...keys.lock(lock.app, lock.environment), ...lock },
              ConditionExpression: 'attribute_not_exists(pk) OR holder = :holder OR leaseUntil < :now',
              ExpressionAttributeValues: { ':holder': lock.holder, ':now': now },
            }),
          ),
        async () => {
          const current = await get(keys.lock(lock.app, lock.environment));
          throw new EnvironmentLockedError(
            lock.app,
            lock.environment,
            String(current?.holder ?? 'unknown'),
            String(current?.leaseUntil ?? now),
          );
        },
      );
    },

    async releaseLock(app, environment, holder) {
      // Freeing a lock one does not hold changes nothing.
      await conditionally(
        'the release table (release lock)',
        () =>
          client.send(
            new DeleteCommand({
              TableName: tableName,
              Key: keys.lock(app, environment),
              ConditionExpression: 'holder = :holder',
              ExpressionAttributeValues: { ':holder': holder },
            }),
          ),
        () => undefined,
      );
    },

    async getLock(app, environment) {
      const item = await get(keys.lock(app, environment));
      return item ? withoutKeys<EnvironmentLock>(item) : undefined;
    },

    async joinQueue(waiter: QueueWaiter) {
      const key = queueKey(waiter.app, waiter.environment, waiter.releaseId);
      const created = await putOnce(
        { ...key, gsi2pk: QUEUED_INDEX_KEY, gsi2sk: `${waiter.app}#${waiter.environment}#${waiter.releaseId}`, ...waiter },
        'join queue',
      );
      if (!created) {
        // In line already (a retried or resumed task): keep its place and its `since`, take the new token.
        await call('queue token', () =>
          client.send(
            new UpdateCommand({
              TableName: tableName,
              Key: key,
              UpdateExpression: 'SET taskToken = :token',
              ExpressionAttributeValues: { ':token': waiter.taskToken },
            }),
          ),
        );
      }
      return { created };
    },

    async listQueue(app, environment, limit) {
      const input = {
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': `QUEUE#${app}#${environment}`, ':prefix': 'WAIT#' },
        ConsistentRead: true,
      };
      const items =
        limit === undefined
          ? await queryAll(input)
          : (((await call('queue', () => client.send(new QueryCommand({ TableName: tableName, ...input, Limit: limit })))).Items ?? []) as Item[]);
      return items.map((item) => withoutKeys<QueueWaiter>(item));
    },

    async leaveQueue(app, environment, releaseId) {
      await call('leave queue', () => client.send(new DeleteCommand({ TableName: tableName, Key: queueKey(app, environment, releaseId) })));
    },

    async listQueuedEnvironments(limit) {
      const page = await call('queued environments', () =>
        client.send(
          new QueryCommand({
            TableName: tableName,
            IndexName: 'gsi2',
            KeyConditionExpression: 'gsi2pk = :queued',
            ExpressionAttributeValues: { ':queued': QUEUED_INDEX_KEY },
            Limit: limit,
          }),
        ),
      );
      const seen = new Map<string, { app: string; environment: string }>();
      for (const item of (page.Items ?? []) as Item[]) {
        const { app, environment } = withoutKeys<QueueWaiter>(item);
        seen.set(`${app}#${environment}`, { app, environment });
      }
      return [...seen.values()];
    },

    async getEnvironmentLive(app, environment) {
      const item = await get(keys.live(app, environment));
      return item ? withoutKeys<EnvironmentLive>(item) : undefined;
    },

    async putEnvironmentLive(live) {
      await put({ ...keys.live(live.app, live.environment), ...live });
    },

    async putArtifactRecord(record: ArtifactRecord) {
      await put({ ...keys.artifact(record.app, record.sha256), gsi1pk: `ARTS#${record.app}`, gsi1sk: record.sha256, ...record });
    },

    async listArtifactRecords(app) {
      const items = await queryAll({
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :arts',
        ExpressionAttributeValues: { ':arts': `ARTS#${app}` },
      });
      return items.map((item) => withoutKeys<ArtifactRecord>(item));
    },

    async deleteArtifactRecord(app, sha256) {
      await call('delete artifact', () => client.send(new DeleteCommand({ TableName: tableName, Key: keys.artifact(app, sha256) })));
    },

    async deleteRelease(id) {
      // The release item goes last: until then the release still lists, and a crash leaves it to the next pass.
      const items = await queryAll({ KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `REL#${id}` } });
      const commands = items.filter((item) => typeof item.commandId === 'string').map((item) => keys.command(String(item.commandId)));
      const release = keys.release(id);
      const rest = items.map((item) => ({ pk: item.pk, sk: item.sk })).filter((key) => key.sk !== release.sk);
      await batchDelete([...commands, ...rest]);
      await batchDelete([release]);
    },

    async getArtifactRecord(app, sha256) {
      const item = await get(keys.artifact(app, sha256));
      return item ? withoutKeys<ArtifactRecord>(item) : undefined;
    },
  };
}
