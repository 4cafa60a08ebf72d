import { createHash } from 'node:crypto';
import { byHostName, compareCodeUnits, type EnvironmentPlan, type HostState, type HostStatus, type HostStepOutput, type HostStepSummary, type HostSummary, type PlanStore, type ReleasePlan } from '@slipway/core';
import type { Item, TableAccess } from './dynamo-table-access.ts';
import { HOST_OUTPUT_PREFIX, keys, withoutKeys } from './table.ts';

/** One environment's part of a stored plan (the `PLAN` item names the parts, in pipeline order). */
const planEnvironmentKey = (releaseId: string, environment: string) => ({ pk: `REL#${releaseId}`, sk: `PLAN#${environment}` });

/** What a step set on a host besides its outcome: the status, and when (absent on outputs that set none, and on items written before). */
type StatusSet = { hostStatus?: HostStatus; hostStatusAt?: string };

/**
 * The hosts an environment's entry put in place, `pending` as of `recordedAt`: up to 100 an item
 * (`HOSTS#<env>#<digest>`), their names one JSON text. A host item each (`HOST#`, as written
 * before) made a 500-host release's read 500 items longer, and its entry 20 BatchWriteItems.
 */
type EnteredHostsItem = { environment: string; recordedAt: string; hosts: string };

/**
 * The hosts' outcomes of one slice of a finished command, without their output, in one item
 * (`HOSTSUM#<env>#<step>#<digest>`): a release read of 500 hosts reads a few of these where it read
 * a step item a host a step (1,000 items, each with its output). The outcomes are one JSON text:
 * DynamoDB and the SDK convert each attribute of an item one by one, and as maps the outcomes cost
 * the read about what the step items had.
 */
type OutcomeSummaryItem = { environment: string; step: string; recordedAt: string; outcomes: string };
/** One host's part of `outcomes`: its status set at the item's `recordedAt`. */
type HostOutcomeSummary = HostStepSummary & { status?: HostStatus };

/** A host's step output (`~OUTPUT#`, or `HOSTSTEP#` as written before), with the status it set. */
type HostStepItem = HostStepOutput & StatusSet & { releaseId: string; environment: string; host: string; step: string };

/** The output a `~OUTPUT#` (or `HOSTSTEP#`) item holds, without what else the item carries. */
function stepOutputOf(item: Item): HostStepOutput {
  const { exitCode, stdout, stderr, startedAt, endedAt } = withoutKeys<HostStepItem>(item);
  return { exitCode, stdout, stderr, startedAt, endedAt };
}

/** At most this many hosts in one item of entered hosts or outcomes: 100 long host names and their times stay far below 400 KB. */
const HOSTS_PER_ITEM = 100;

/**
 * `hosts` in name order, in slices of HOSTS_PER_ITEM, each with a digest of its names: the key of
 * its item. The same hosts make the same items whatever order they came in, so an entry or a
 * finished command recorded twice writes the same items again.
 */
function slicesOf<T extends { host: string }>(hosts: T[]): { digest: string; slice: T[] }[] {
  const byName = hosts.toSorted(byHostName);
  const slices = [];
  for (let start = 0; start < byName.length; start += HOSTS_PER_ITEM) {
    const slice = byName.slice(start, start + HOSTS_PER_ITEM);
    slices.push({ digest: createHash('sha256').update(slice.map(({ host }) => host).join('\n')).digest('hex').slice(0, 32), slice });
  }
  return slices;
}

/** A release's hosts and what each step did on them; the newest status wins, whatever item carries it. */
class HostsBuilder<Step> {
  private readonly byHost = new Map<string, Omit<HostState, 'steps'> & { steps: Record<string, Step> }>();
  /** When each host's step was recorded, for two records of one step to keep the newer. */
  private readonly recordedAt = new Map<string, string>();

  private readonly releaseId: string;

  /** The hosts in place: entered (`HOSTS#`), and host items as written before (`HOST#`). */
  constructor(releaseId: string, entries: Item[], hostItems: Item[]) {
    this.releaseId = releaseId;
    for (const item of hostItems) {
      const host = withoutKeys<HostState>(item);
      this.byHost.set(`${host.environment}#${host.host}`, { ...host, steps: {} });
    }
    for (const item of entries) {
      const { environment, recordedAt, hosts } = withoutKeys<EnteredHostsItem>(item);
      for (const host of JSON.parse(hosts) as string[]) {
        const key = `${environment}#${host}`;
        if (!this.byHost.has(key)) this.byHost.set(key, { releaseId, environment, host, status: 'pending', updatedAt: recordedAt, steps: {} });
      }
    }
  }

  /**
   * A host's step. Its status counts only when newer than the host's: an entry stalled between its
   * query and its write may put a host in place again, `pending` as of before the command that
   * moved it on.
   */
  set(environment: string, host: string, step: string, outcome: Step, { hostStatus, hostStatusAt }: StatusSet, recordedAt = '') {
    let state = this.byHost.get(`${environment}#${host}`);
    // An outcome that moved a host no entry put in place (as a host item was made by it before) brings the host.
    if (!state && hostStatus && hostStatusAt) {
      state = { releaseId: this.releaseId, environment, host, status: hostStatus, updatedAt: hostStatusAt, steps: {} };
      this.byHost.set(`${environment}#${host}`, state);
    }
    if (!state) return;
    const key = `${environment}#${host}#${step}`;
    if ((this.recordedAt.get(key) ?? '') > recordedAt) return;
    this.recordedAt.set(key, recordedAt);
    state.steps[step] = outcome;
    if (hostStatus && hostStatusAt && hostStatusAt > state.updatedAt) Object.assign(state, { status: hostStatus, updatedAt: hostStatusAt });
  }

  /** By environment, then host, as host items came. */
  hosts() {
    return [...this.byHost].sort(([a], [b]) => compareCodeUnits(a, b)).map(([, state]) => state);
  }
}

/** The items of a release's hosts, by kind (the sort-key prefixes above). */
export interface HostItems {
  entries: Item[];
  /** As written before the entries: a host item each. */
  hostItems: Item[];
}

/** Hosts with the output of each step (`~OUTPUT#`, and `HOSTSTEP#` as written before): the output route's read. */
export function hostStatesOf(releaseId: string, { entries, hostItems }: HostItems, outputs: Item[]): HostState[] {
  const built = new HostsBuilder<HostStepOutput>(releaseId, entries, hostItems);
  for (const item of outputs) {
    const { environment, host, step, hostStatus, hostStatusAt } = withoutKeys<HostStepItem>(item);
    built.set(environment, host, step, stepOutputOf(item), { hostStatus, hostStatusAt });
  }
  return built.hosts();
}

/**
 * Hosts as a release read shows them: each step's outcome from the summaries (`HOSTSUM#`), and from
 * the outputs written before the summaries were (`HOSTSTEP#`, their text dropped).
 */
export function hostSummariesOf(releaseId: string, hostItems: HostItems, summaries: Item[], earlierOutputs: Item[]): HostSummary[] {
  const built = new HostsBuilder<HostStepSummary>(releaseId, hostItems.entries, hostItems.hostItems);
  for (const item of earlierOutputs) {
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
 * A release's plan (`PLAN` naming its `PLAN#<env>` parts) and its hosts: those an entry put in place
 * (`HOSTS#`, 100 an item), each command's outcomes (`HOSTSUM#`, 100 hosts an item) and each host's
 * output of a step (`~OUTPUT#<env>#<host>#<step>`), all under `REL#<id>`.
 */
export function createDynamoPlanStore(table: TableAccess): PlanStore {
  const { get, putOnce, queryAll, queryPrefix, batchPut } = table;

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
     * One query of the environment's entered hosts, then the hosts it lacks in items of 100
     * (HOSTS_PER_ITEM; one BatchWriteItem for 2,500 hosts). Two entries at once may both put the
     * same items; one stalled between its query and its write puts them again later, `pending` as
     * of before: the reads take each host's newer status (HostsBuilder).
     */
    async ensureHostStates(releaseId, environment, hosts, now) {
      const entered = new Set(
        (await queryPrefix(`REL#${releaseId}`, `HOSTS#${environment}#`))
          .filter((item) => item.environment === environment)
          .flatMap((item) => JSON.parse(String(item.hosts)) as string[]),
      );
      const missing = [...new Set(hosts)].filter((host) => !entered.has(host)).map((host) => ({ host }));
      await batchPut(
        slicesOf(missing).map(({ digest, slice }) => ({
          ...keys.enteredHosts(releaseId, environment, digest),
          releaseId,
          environment,
          recordedAt: now,
          hosts: JSON.stringify(slice.map(({ host }) => host)),
        })),
      );
    },

    /**
     * Whole items in BatchWriteItem calls of 25, where one UpdateItem and one PutItem a host made a
     * 500-host command a thousand calls: each host's output in an item of its own, past the
     * partition's tail, and the outcomes without it in one summary item per 100 hosts, which the
     * release read takes instead. Both keep the status each host was moved to and when.
     */
    async recordHostOutcomes(releaseId, environment, step, outcomes, now) {
      const summaries = slicesOf(outcomes).map(({ digest, slice }) => {
        const byHost: Record<string, HostOutcomeSummary> = Object.fromEntries(
          slice.map(({ host, status, output: { exitCode, startedAt, endedAt } }) => {
            const outcome: HostOutcomeSummary = { exitCode, startedAt, endedAt, ...(status ? { status } : {}) };
            return [host, outcome];
          }),
        );
        const key = keys.hostOutcomes(releaseId, environment, step, digest);
        return { ...key, releaseId, environment, step, recordedAt: now, outcomes: JSON.stringify(byHost) };
      });
      await batchPut([
        ...outcomes.map(({ host, status, output }) => ({
          ...keys.hostOutput(releaseId, environment, host, step),
          releaseId,
          environment,
          host,
          step,
          ...output,
          ...(status ? { hostStatus: status, hostStatusAt: now } : {}),
        })),
        ...summaries,
      ]);
    },

    /** One GetItem (and one more for an output written before `~OUTPUT#`, under `HOSTSTEP#`). */
    async getHostOutput(releaseId, environment, host, step) {
      const item = (await get(keys.hostOutput(releaseId, environment, host, step))) ??
        (await get({ pk: `REL#${releaseId}`, sk: `HOSTSTEP#${environment}#${host}#${step}` }));
      return item ? stepOutputOf(item) : undefined;
    },

    /** One Query of the partition: the hosts and every output. */
    async getHostStates(releaseId) {
      const items = await queryAll({
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': `REL#${releaseId}` },
        ConsistentRead: true,
      });
      const prefixed = (prefix: string) => items.filter((item) => String(item.sk).startsWith(prefix));
      return hostStatesOf(releaseId, { entries: prefixed('HOSTS#'), hostItems: prefixed('HOST#') }, [
        ...prefixed('HOSTSTEP#'),
        ...prefixed(HOST_OUTPUT_PREFIX),
      ]);
    },
  };
}
