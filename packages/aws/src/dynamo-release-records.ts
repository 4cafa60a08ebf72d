import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  ConflictError,
  type EnvironmentState,
  type ListReleasesFilter,
  type Page,
  type Release,
  type ReleasePurge,
  type ReleaseRecordStore,
  type ReleaseStatus,
} from '@slipway/core';
import { decodeCursor, encodeCursor, type Item, type TableAccess } from './dynamo-table-access.ts';
import { keys, withoutKeys } from './table.ts';

/** A release's item, with the index keys that list it by app and among all releases. */
export const releaseItem = (release: Release) => ({
  ...keys.release(release.id),
  gsi1pk: `APPREL#${release.app}`,
  gsi1sk: release.id,
  gsi2pk: 'RELEASES',
  gsi2sk: release.id,
  ...release,
});

/** An environment's item, with the index keys that list releases by app and environment. */
export const environmentItem = (state: EnvironmentState) => ({
  ...keys.releaseEnv(state.releaseId, state.environment),
  gsi1pk: `ENVREL#${state.app}#${state.environment}`,
  gsi1sk: state.releaseId,
  ...state,
});

/**
 * Releases (`REL#<id>` / `RELEASE`, by app in gsi1 `APPREL#<app>`, all in gsi2 `RELEASES`) and their
 * environments (`REL#<id>` / `ENV#<env>`, by app and environment in gsi1 `ENVREL#<app>#<env>`).
 */
export function createDynamoReleaseRecords(table: TableAccess): ReleaseRecordStore {
  const { client, get, put, putOnce, queryPage, queryPrefix, batchGet, batchPut, conditional } = table;

  async function releasesById(ids: string[]): Promise<Release[]> {
    if (ids.length === 0) return [];
    const found = new Map<string, Release>();
    // A batch may not name a key twice.
    for (const item of await batchGet([...new Set(ids)].map((id) => keys.release(id)))) {
      const release = withoutKeys<Release>(item);
      found.set(release.id, release);
    }
    // Environment records written before a release record that never landed have no release: skip them.
    return ids.flatMap((id) => (found.has(id) ? [found.get(id)!] : []));
  }

  return {
    async createRelease(release: Release, environments: EnvironmentState[]) {
      // The release item is the anchor: environment items are written first, so a crash in between
      // leaves only records that no listing shows (releasesById skips them).
      await batchPut(environments.map(environmentItem));
      const created = await putOnce(releaseItem(release), 'create release');
      if (!created) throw new ConflictError(`release ${release.id} already exists`);
    },

    async getRelease(id) {
      const item = await get(keys.release(id));
      return item ? withoutKeys<Release>(item) : undefined;
    },

    getReleases: releasesById,

    async updateReleaseStatus(id: string, from: ReleaseStatus, to: ReleaseStatus, now: string, reason?: string) {
      return conditional(
        'update release',
        async (tableName) => {
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
      const page = await queryPage('list releases', {
        IndexName: index,
        KeyConditionExpression: `${partitionAttribute} = :partition`,
        ExpressionAttributeValues: { ':partition': partition },
        ScanIndexForward: filter.oldestFirst === true,
        Limit: filter.limit,
        ExclusiveStartKey: start,
      });
      const items = filter.environment
        ? await releasesById(page.items.map((item) => String(item.releaseId)))
        : page.items.map((item) => withoutKeys<Release>(item));
      const nextCursor = encodeCursor(page.lastKey);
      return { items, ...(nextCursor ? { nextCursor } : {}) };
    },

    async getEnvironmentStates(releaseId) {
      return (await queryPrefix(`REL#${releaseId}`, 'ENV#')).map((item) => withoutKeys<EnvironmentState>(item));
    },

    async putEnvironmentState(state, expectedStatus) {
      if (expectedStatus === undefined) return put(environmentItem(state));
      await conditional(
        'put environment state',
        (tableName) =>
          client.send(
            new PutCommand({
              TableName: tableName,
              Item: environmentItem(state),
              ConditionExpression: '#status = :expected',
              ExpressionAttributeNames: { '#status': 'status' },
              ExpressionAttributeValues: { ':expected': expectedStatus },
            }),
          ),
        async () => {
          const current = await get(keys.releaseEnv(state.releaseId, state.environment));
          throw new ConflictError(
            current
              ? `${state.environment} of release ${state.releaseId} is ${String(current.status)}, not ${expectedStatus}; read it again`
              : `release ${state.releaseId} has no environment ${state.environment}`,
            { details: { expected: expectedStatus, actual: current?.status ?? null } },
          );
        },
      );
    },
  };
}

/** Everything under `REL#<id>` and the command lookups its steps made; the release item last. */
export function createDynamoReleasePurge(table: TableAccess): ReleasePurge {
  const { queryAll, batchDelete } = table;
  return {
    async deleteRelease(id) {
      // The release item goes last: until then the release still lists, and a crash leaves it to the next pass.
      const items = await queryAll({ KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `REL#${id}` } });
      const commands = items.filter((item) => typeof item.commandId === 'string').map((item) => keys.command(String(item.commandId)));
      const release = keys.release(id);
      const rest = items.map((item) => ({ pk: item.pk, sk: item.sk })).filter((key) => key.sk !== release.sk);
      await batchDelete([...commands, ...rest]);
      await batchDelete([release]);
    },
  };
}
