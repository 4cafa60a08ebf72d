import { ConflictError, type EnvironmentState, hostSummaryOf, type ReleaseEvent, type StepRecord, type WholeReleaseStore } from '@slipway/core';
import { hostStatesOf, planOf } from './dynamo-plan-store.ts';
import { environmentItem, releaseItem } from './dynamo-release-records.ts';
import type { Item, TableAccess } from './dynamo-table-access.ts';
import { keys, withoutKeys } from './table.ts';

/** The sort-key prefix of the hosts' step outputs (`HOSTSTEP#<env>#<host>#<step>`). */
const STEP_OUTPUTS = 'HOSTSTEP#';
/** What a release read takes of a step output item: everything but the text it printed. */
const OUTCOME_ATTRIBUTES = ['pk', 'sk', 'releaseId', 'environment', 'host', 'step', 'exitCode', 'startedAt', 'endedAt', 'hostStatus', 'hostStatusAt'];

/**
 * A release written and read whole. Every item of a release lives in its partition `REL#<id>`, so
 * the open is one BatchWriteItem (environments and first events) and the conditional put of the
 * release item, and the read is one Query of the partition, split here by sort-key prefix.
 */
export function createDynamoWholeRelease(table: TableAccess): WholeReleaseStore {
  const { queryAll, putOnce, batchPut } = table;
  return {
    async openRelease(release, environments, events) {
      // The release item is the anchor, written last (DynamoDB Local stand-ins have no transactions):
      // a crash before it leaves items that no listing shows and no read finds (readWholeRelease
      // answers undefined without the release item).
      await batchPut([
        ...environments.map(environmentItem),
        ...events.map((event) => ({ ...keys.releaseEvent(event.releaseId, event.id), ...event })),
      ]);
      const created = await putOnce(releaseItem(release), 'open release');
      if (!created) throw new ConflictError(`release ${release.id} already exists`);
    },

    /**
     * Three Queries of the partition at once: what sorts before the hosts' step outputs, what sorts
     * after them, and the outputs themselves without their text (a 500-host release holds a megabyte
     * of it, which the read answered whole and then dropped).
     */
    async readWholeRelease(id) {
      const partition = { ':pk': `REL#${id}`, ':steps': STEP_OUTPUTS };
      const [before, outcomes, after] = await Promise.all([
        queryAll({ KeyConditionExpression: 'pk = :pk AND sk < :steps', ExpressionAttributeValues: partition, ConsistentRead: true }),
        queryAll({
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :steps)',
          ExpressionAttributeValues: partition,
          ProjectionExpression: OUTCOME_ATTRIBUTES.map((_, i) => `#a${i}`).join(', '),
          ExpressionAttributeNames: Object.fromEntries(OUTCOME_ATTRIBUTES.map((name, i) => [`#a${i}`, name])),
          ConsistentRead: true,
        }),
        queryAll({
          KeyConditionExpression: 'pk = :pk AND sk > :beyond',
          ExpressionAttributeValues: { ':pk': `REL#${id}`, ':beyond': `${STEP_OUTPUTS}\uffff` },
          ConsistentRead: true,
        }),
      ]);
      const items = [...before, ...after];
      const releaseKey = keys.release(id).sk;
      const head = items.find((item) => item.sk === releaseKey);
      if (!head) return undefined;
      // Items come in sort-key order, which is each listing's own order (environment name, event id, step key).
      const prefixed = (prefix: string) => items.filter((item: Item) => String(item.sk).startsWith(prefix));
      const plan = planOf(id, prefixed('PLAN'));
      return {
        release: withoutKeys(head),
        ...(plan ? { plan } : {}),
        environments: prefixed('ENV#').map((item) => withoutKeys<EnvironmentState>(item)),
        hosts: hostStatesOf(prefixed('HOST#'), outcomes).map(hostSummaryOf),
        events: prefixed('EVENT#').map((item) => withoutKeys<ReleaseEvent>(item)),
        steps: prefixed('STEP#').map((item) => withoutKeys<StepRecord>(item)),
      };
    },
  };
}
