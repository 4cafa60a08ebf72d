import { createHash } from 'node:crypto';
import { byHostName, type EnvironmentPlan, type HostState, type HostStatus, type HostStepOutput, type HostStepSummary, type HostSummary, type PlanStore, type ReleasePlan } from '@slipway/core';
import type { Item, TableAccess } from './dynamo-table-access.ts';
import { HOST_OUTPUT_PREFIX, keys, withoutKeys } from './table.ts';

/** One environment's part of a stored plan (the `PLAN` item names the parts, in pipeline order). */
const planEnvironmentKey = (releaseId: string, environment: string) => ({ pk: `REL#${releaseId}`, sk: `PLAN#${environment}` });

/** What a step set on a host besides its outcome: the status, and when (absent on outputs that set none, and on items written before). */
type StatusSet = { hostStatus?: HostStatus; hostStatusAt?: string };

/**
 * The hosts' outcomes of one slice of a finished command, without their output, in one item
 * (`HOSTSUM#`): a release read of 500 hosts reads 500 host items and a few of these, where it read
 * a step item a host a step beside each host item (1,500 items, each with its output). The
 * outcomes are one JSON text: DynamoDB and the SDK convert each attribute of an item one by one,
 * and as maps the outcomes cost the read about what the step items had.
 */
type OutcomeSummaryItem = { environment: string; step: string; recordedAt: string; outcomes: string };
/** One host's part of `outcomes`: its status set at the item's `recordedAt`. */
type HostOutcomeSummary = HostStepSummary & { status?: HostStatus };

/** At most this many hosts' outcomes in one summary item: 100 long host names and their times stay far below 400 KB. */
const OUTCOMES_PER_SUMMARY = 100;

/** A host's outcome, newest status first: the same rule for every kind of item that carries one. */
class HostsBuilder<Step> {
  readonly byHost = new Map<string, Omit<HostState, 'steps'> & { steps: Record<string, Step> }>();
  /** When each host's step was recorded, for two records of one step to keep the newer. */
  private readonly recordedAt = new Map<string, string>();

  constructor(hosts: Item[]) {
    for (const item of hosts) {
      const host = withoutKeys<HostState>(item);
      this.byHost.set(`${host.environment}#${host.host}`, { ...host, steps: {} });
    }
  }

  /**
   * The newest status wins: an entry stalled between its query and its write (ensureHostStates)
   * may put `pending` over a host that a command moved on meanwhile, but its `pending` is older than
   * that command's outcome.
   */
  set(environment: string, host: string, step: string, outcome: Step, { hostStatus, hostStatusAt }: StatusSet, recordedAt = '') {
    const state = this.byHost.get(`${environment}#${host}`);
    if (!state) return;
    const key = `${environment}#${host}#${step}`;
    if ((this.recordedAt.get(key) ?? '') > recordedAt) return;
    this.recordedAt.set(key, recordedAt);
    state.steps[step] = outcome;
    if (hostStatus && hostStatusAt && hostStatusAt > state.updatedAt) Object.assign(state, { status: hostStatus, updatedAt: hostStatusAt });
  }

  hosts() {
    return [...this.byHost.values()];
  }
}

/** A host's step output (`~OUTPUT#`, or `HOSTSTEP#` as written before). */
type HostStepItem = HostStepOutput & StatusSet & { releaseId: string; environment: string; host: string; step: string };

/** Hosts from their `HOST#` items, each with the outputs its output items hold (`~OUTPUT#`, and `HOSTSTEP#` as written before). */
export function hostStatesOf(hosts: Item[], steps: Item[]): HostState[] {
  const built = new HostsBuilder<HostStepOutput>(hosts);
  for (const item of steps) {
    const { environment, host, step, hostStatus, hostStatusAt, ...output } = withoutKeys<HostStepItem>(item);
    const { exitCode, stdout, stderr, startedAt, endedAt } = output;
    built.set(environment, host, step, { exitCode, stdout, stderr, startedAt, endedAt }, { hostStatus, hostStatusAt });
  }
  return built.hosts();
}

/**
 * Hosts as a release read shows them, from their `HOST#` items and the outcomes' summary items
 * (`HOSTSUM#`); `HOSTSTEP#` items are outputs written before the summaries were, read as they are.
 */
export function hostSummariesOf(hosts: Item[], summaries: Item[], earlierSteps: Item[]): HostSummary[] {
  const built = new HostsBuilder<HostStepSummary>(hosts);
  for (const item of earlierSteps) {
    const { environment, host, step, hostStatus, hostStatusAt, exitCode, startedAt, endedAt } = withoutKeys<HostStepItem>(item);
    built.set(environment, host, step, { exitCode, startedAt, endedAt }, { hostStatus, hostStatusAt });
  }
  for (const item of summaries) {
    const { environment, step, recordedAt, outcomes } = withoutKeys<OutcomeSummaryItem>(item);
    const byHost = JSON.parse(outcomes) as Record<string, HostOutcomeSummary>;
    for (const [host, { status, exitCode, startedAt, endedAt }] of Object.entries(byHost)) {
      const statusSet = status ? { hostStatus: status, hostStatusAt: recordedAt } : {};
      built.set(environment, host, step, { exitCode, startedAt, endedAt }, statusSet, recordedAt);
    }
  }
  return built.hosts();
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
 * each step's output in `~OUTPUT#<env>#<host>#<step>` and its hosts' outcomes in `HOSTSUM#`), all under `REL#<id>`.
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
     * (ensureHostStates writes the same fields), so a put sets its status as the update did. Each
     * host's output goes to an item of its own, and the outcomes without it to one summary item per
     * 100 hosts, which the release read takes instead; both keep the status as well, for the reads
     * to see past a late `pending` (HostsBuilder). A summary's key is a digest of its hosts, taken
     * in name order: a finished command recorded twice writes the same items again, whatever order
     * the fleet reported its hosts in (commandFinished hands them over in name order too).
     */
    async recordHostOutcomes(releaseId, environment, step, outcomes, now) {
      const summaries: Item[] = [];
      const byHost = outcomes.toSorted(byHostName);
      for (let start = 0; start < byHost.length; start += OUTCOMES_PER_SUMMARY) {
        const slice = byHost.slice(start, start + OUTCOMES_PER_SUMMARY);
        const digest = createHash('sha256').update(slice.map(({ host }) => host).join('\n')).digest('hex').slice(0, 32);
        const hosts: Record<string, HostOutcomeSummary> = Object.fromEntries(
          slice.map(({ host, status, output: { exitCode, startedAt, endedAt } }) => {
            const outcome: HostOutcomeSummary = { exitCode, startedAt, endedAt, ...(status ? { status } : {}) };
            return [host, outcome];
          }),
        );
        const key = keys.hostOutcomes(releaseId, environment, step, digest);
        summaries.push({ ...key, releaseId, environment, step, recordedAt: now, outcomes: JSON.stringify(hosts) });
      }
      await batchPut([
        ...outcomes.flatMap(({ host, status, output }) => [
          ...(status ? [{ ...keys.releaseHost(releaseId, environment, host), releaseId, environment, host, status, updatedAt: now }] : []),
          {
            ...keys.hostOutput(releaseId, environment, host, step),
            releaseId,
            environment,
            host,
            step,
            ...output,
            ...(status ? { hostStatus: status, hostStatusAt: now } : {}),
          },
        ]),
        ...summaries,
      ]);
    },

    async getHostStates(releaseId) {
      const [hosts, outputs, earlierOutputs] = await Promise.all([
        queryPrefix(`REL#${releaseId}`, 'HOST#'),
        queryPrefix(`REL#${releaseId}`, HOST_OUTPUT_PREFIX),
        queryPrefix(`REL#${releaseId}`, 'HOSTSTEP#'),
      ]);
      return hostStatesOf(hosts, [...earlierOutputs, ...outputs]);
    },
  };
}
