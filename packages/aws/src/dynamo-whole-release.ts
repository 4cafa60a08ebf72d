import {
  type ApprovalDecision,
  type ApprovalRequest,
  ConflictError,
  type EnvironmentState,
  type ReleaseEvent,
  type StepRecord,
  type WholeReleaseStore,
} from '@slipway/core';
import { hostSummariesOf, planOf } from './dynamo-plan-store.ts';
import { environmentItem, releaseItem } from './dynamo-release-records.ts';
import type { Item, TableAccess } from './dynamo-table-access.ts';
import { keys, RELEASE_TAIL, withoutKeys } from './table.ts';

/**
 * A release written and read whole. Every item of a release lives in its partition `REL#<id>`, so
 * the open is one BatchWriteItem (environments and first events) and the conditional put of the
 * release item, and the read is one Query of the partition below its tail (`~`, the hosts'
 * outputs), split here by sort-key prefix, the approval gates' items among them.
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
     * One Query of the partition below its tail, where the hosts' outputs are: the hosts come from
     * the entered hosts' items (`HOSTS#`) and their steps from the outcomes' summaries (`HOSTSUM#`),
     * 100 hosts an item each. Three Queries that projected the outputs' text away read no faster on
     * the embedded DynamoDB (it reads whole items either way) and doubled a small release's read
     * (bench/api.ts: p50 2.8 → 5.3 ms).
     */
    async readWholeRelease(id) {
      const items = await queryAll({
        KeyConditionExpression: 'pk = :pk AND sk < :tail',
        ExpressionAttributeValues: { ':pk': `REL#${id}`, ':tail': RELEASE_TAIL },
        ConsistentRead: true,
      });
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
        hosts: hostSummariesOf(id, { entries: prefixed('HOSTS#'), hostItems: prefixed('HOST#') }, prefixed('HOSTSUM#'), prefixed('HOSTSTEP#')),
        events: prefixed('EVENT#').map((item) => withoutKeys<ReleaseEvent>(item)),
        steps: prefixed('STEP#').map((item) => withoutKeys<StepRecord>(item)),
        // The approval store's items (dynamo-approval-store.ts), in the same partition.
        approvals: {
          requests: prefixed('APPROVAL#').map((item) => withoutKeys<ApprovalRequest>(item)),
          decisions: prefixed('DECISION#').map((item) => withoutKeys<ApprovalDecision>(item)),
        },
      };
    },
  };
}
