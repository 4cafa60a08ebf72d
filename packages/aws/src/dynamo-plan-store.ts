import type { EnvironmentPlan, HostState, HostStatus, HostStepOutput, PlanStore, ReleasePlan } from '@slipway/core';
import type { Item, TableAccess } from './dynamo-table-access.ts';
import { keys, withoutKeys } from './table.ts';

/** One environment's part of a stored plan (the `PLAN` item names the parts, in pipeline order). */
const planEnvironmentKey = (releaseId: string, environment: string) => ({ pk: `REL#${releaseId}`, sk: `PLAN#${environment}` });

type HostStepItem = HostStepOutput & {
  releaseId: string;
  environment: string;
  host: string;
  step: string;
  /** The status the outcome set, and when (absent on outputs that set none, and on items written before). */
  hostStatus?: HostStatus;
  hostStatusAt?: string;
};

/**
 * Hosts from their `HOST#` items, each with the outputs its `HOSTSTEP#` items hold. A step item that
 * set a status keeps it too (`hostStatus`, `hostStatusAt`), and the newest status wins: an entry
 * stalled between its query and its write (ensureHostStates) may put `pending` over a host that a
 * command moved on meanwhile, but its `pending` is older than that command's outcome.
 */
export function hostStatesOf(hosts: Item[], steps: Item[]): HostState[] {
  const byHost = new Map<string, HostState>();
  for (const item of hosts) {
    const host = withoutKeys<HostState>(item);
    byHost.set(`${host.environment}#${host.host}`, { ...host, steps: {} });
  }
  for (const item of steps) {
    const { environment, host, step, hostStatus, hostStatusAt, exitCode, stdout, stderr, startedAt, endedAt } =
      withoutKeys<HostStepItem>(item);
    const state = byHost.get(`${environment}#${host}`);
    if (!state) continue;
    state.steps[step] = { exitCode, stdout, stderr, startedAt, endedAt };
    if (hostStatus && hostStatusAt && hostStatusAt > state.updatedAt) Object.assign(state, { status: hostStatus, updatedAt: hostStatusAt });
  }
  return [...byHost.values()];
}

/** The plan from its `PLAN` item and the `PLAN#<env>` parts it names; undefined without the `PLAN` item. */
export function planOf(releaseId: string, items: Item[]): ReleasePlan | undefined {
  const head = items.find((item) => item.sk === keys.plan(releaseId).sk);
  if (!head) return undefined;
  const names = head.environments as (string | EnvironmentPlan)[];
  // A plan stored whole in one item, before plans were split: as it is.
  if (names.some((name) => typeof name !== 'string')) return withoutKeys<ReleasePlan>(head);
  const byName = new Map(items.map((item) => [item.sk, item]));
  const environments = (names as string[]).map((name) => {
    const item = byName.get(planEnvironmentKey(releaseId, name).sk);
    if (!item) throw new Error(`the plan of release ${releaseId} names environment ${name}, whose part is missing`);
    const { name: stored, approval, bakeSeconds, batches, pauses } = withoutKeys<EnvironmentPlan>(item);
    return { name: stored, approval, bakeSeconds, batches, ...(pauses?.length ? { pauses } : {}) };
  });
  return { releaseId, app: String(head.app), environments, ...(typeof head.artifactChecked === 'string' ? { artifactChecked: head.artifactChecked } : {}) };
}

/**
 * A release's plan (`PLAN` naming its `PLAN#<env>` parts) and its hosts (`HOST#<env>#<host>`, with
 * each step's output in `HOSTSTEP#<env>#<host>#<step>`), all under `REL#<id>`.
 */
export function createDynamoPlanStore(table: TableAccess): PlanStore {
  const { putOnce, queryAll, queryPrefix, batchPut } = table;

  /** The stored plan, read consistently: Prepare reads back what it (or an earlier attempt) wrote. */
  async function readPlan(releaseId: string): Promise<ReleasePlan | undefined> {
    const items = await queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': `REL#${releaseId}`, ':prefix': 'PLAN' },
      ConsistentRead: true,
    });
    return planOf(releaseId, items);
  }

  return {
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
        {
          ...keys.plan(plan.releaseId),
          releaseId: plan.releaseId,
          app: plan.app,
          environments: plan.environments.map((env) => env.name),
          ...(plan.artifactChecked ? { artifactChecked: plan.artifactChecked } : {}),
        },
        'save plan',
      );
      return (await readPlan(plan.releaseId))!;
    },

    getPlan: readPlan,

    /**
     * One query of the environment's host items, then BatchWriteItem (25 a call) for the hosts it
     * lacks: a 500-host entry was 500 conditional PutItems. BatchWriteItem is not conditional, so two
     * entries at once may both put a host; both put the same `pending` item. No host moves on before
     * an entry has returned (its outcomes come from commands sent after the workflow is let in), and
     * an entry that finds a host leaves it alone. An entry that found nothing and then stalled past a
     * whole command can still put `pending` late: the reads take the newer status (hostStatesOf).
     */
    async ensureHostStates(releaseId, environment, hosts, now) {
      const existing = new Set(
        (await queryPrefix(`REL#${releaseId}`, `HOST#${environment}#`))
          .filter((item) => item.environment === environment)
          .map((item) => String(item.host)),
      );
      // A host named twice would be two puts of one key in a batch, which DynamoDB refuses.
      const missing = [...new Set(hosts)].filter((host) => !existing.has(host));
      await batchPut(
        missing.map((host) => ({ ...keys.releaseHost(releaseId, environment, host), releaseId, environment, host, status: 'pending', updatedAt: now })),
      );
    },

    /**
     * Whole items in BatchWriteItem calls of 25, where one UpdateItem and one PutItem a host made a
     * 500-host command a thousand calls: a host item holds nothing but what it is written with here
     * (ensureHostStates writes the same fields), so a put sets its status as the update did. The
     * step item keeps the status as well, for the reads to see past a late `pending` (hostStatesOf).
     */
    async recordHostOutcomes(releaseId, environment, step, outcomes, now) {
      await batchPut(
        outcomes.flatMap(({ host, status, output }) => [
          ...(status ? [{ ...keys.releaseHost(releaseId, environment, host), releaseId, environment, host, status, updatedAt: now }] : []),
          {
            ...keys.hostStep(releaseId, environment, host, step),
            releaseId,
            environment,
            host,
            step,
            ...output,
            ...(status ? { hostStatus: status, hostStatusAt: now } : {}),
          },
        ]),
      );
    },

    async getHostStates(releaseId) {
      const [hosts, steps] = await Promise.all([
        queryPrefix(`REL#${releaseId}`, 'HOST#'),
        queryPrefix(`REL#${releaseId}`, 'HOSTSTEP#'),
      ]);
      return hostStatesOf(hosts, steps);
    },
  };
}
