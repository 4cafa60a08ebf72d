import { HostCommandFailedError, StaleTaskTokenError } from '../errors.ts';
import type { HostScript } from '../host-scripts.ts';
import type { Clock, IdGenerator } from '../ids.ts';
import type { Logger } from '../logger.ts';
import type { Fleet, HostInvocation, PlanStore, StepKind, StepOutcome, StepRecord, StepStore, Workflow } from '../ports.ts';
import { byHostName, type HostStatus, type Release } from '../release.ts';
import { deliverOutcome } from '../steps.ts';
import { type StageContext, stepKey } from './context.ts';
import { describeFailure, tail } from './failures.ts';

/** How long a step may run on hosts before the task gives up; the ASL TimeoutSeconds are larger. */
export const COMMAND_TIMEOUT_SECONDS = { distribute: 1800, switch: 900, revert: 600, prune: 600 } as const;
const CAUSE_LIMIT = 4000;
/** How many hosts' outcomes a finished command hands the store in one call (5,000 hosts must fit in one Lambda). */
const HOST_OUTCOMES_PER_WRITE = 250;
/** How many failed hosts a step's settled event names; the rest are counted. */
const FAILED_HOSTS_NAMED = 50;

export type CommandKind = Exclude<StepKind, 'bake' | 'approval' | 'watch' | 'pause' | 'promote'>;

const HOST_STATUS_ON_SUCCESS: Record<CommandKind, HostStatus | undefined> = {
  distribute: 'distributed',
  switch: 'healthy',
  revert: 'reverted',
  prune: undefined,
};

/**
 * Runs `work` on every item, at most `limit` at a time (for adapters too: 5,000 hosts one by one
 * outlast a 60-second function, all at once overrun a service's rate). After a failure no new item
 * starts; the first failure is thrown once the running ones end.
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

export interface HostCommandDeps {
  store: StepStore & Pick<PlanStore, 'recordHostOutcomes'>;
  fleet: Fleet;
  workflow: Workflow;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  context: Pick<StageContext, 'now' | 'record'>;
  /**
   * Told each finished command's host outcomes before the step settles (the host inventory records
   * where a switch or revert left each host). A failure here is logged, never fails the step.
   */
  afterCommand?: (step: StepRecord, invocations: HostInvocation[]) => Promise<void>;
}

/**
 * The host-command protocol: a command is recorded as a step (with the waiting task's token) before
 * it is sent, the fleet reports when it finished on every host, and the step settles once and tells
 * whichever task waits on it now.
 */
export function createHostCommands({ store, fleet, workflow, clock, ids, logger, context, afterCommand }: HostCommandDeps) {
  const { now, record } = context;

  /**
   * Runs a host command as a step the waiting task is told about when it finishes. Called again
   * (retry, resume), it never sends the command twice: it hands the running step the new token, or
   * answers the new token at once with the outcome already recorded.
   */
  async function runCommandStep(
    taskToken: string,
    release: Release,
    kind: CommandKind,
    environment: string,
    hosts: string[],
    script: HostScript,
    batchIndex?: number,
  ) {
    const at = now();
    const { created, step } = await store.startStep({
      releaseId: release.id,
      key: stepKey(kind, environment, batchIndex),
      kind,
      environment,
      ...(batchIndex === undefined ? {} : { batchIndex }),
      hosts,
      commandId: ids.next(),
      taskToken,
      state: 'running',
      createdAt: at,
      updatedAt: at,
    });
    if (!created) {
      const running = await store.replaceStepToken(release.id, step.key, taskToken, at);
      if (!running) {
        await deliverOutcome(workflow, (await store.getStep(release.id, step.key))!, taskToken);
        return;
      }
    }
    // Sending is idempotent by command id: this also covers a crash between recording and sending.
    await fleet.send({ commandId: step.commandId!, hosts, script, timeoutSeconds: COMMAND_TIMEOUT_SECONDS[kind] });
    if (created) await record(release.id, `${kind}.started`, { environment, batchIndex, hosts: hosts.length });
  }

  /**
   * The command-status callback: a host command finished on every host. Records each host's
   * outcome, settles the step once, and tells the task waiting on it (whichever token it holds now).
   */
  async function commandFinished(commandId: string) {
    const step = await store.getStepByCommand(commandId);
    if (!step) {
      logger.warn('a command finished that no step knows', { commandId });
      return;
    }
    // The event may name one part of the command (SSM sends 50 hosts a part): read the whole step.
    const { finished, invocations } = await fleet.results(step.commandId ?? commandId);
    if (!finished) return;
    const at = now();
    const kind = step.kind as CommandKind;
    if (step.environment !== 'all') {
      // A slice at a time, each slice in the store's batches: two writes a host made a 500-host
      // command a thousand store calls; one call for all of 5,000 hosts holds their outputs at once.
      // In host name order, so that a command recorded twice is sliced the same way both times.
      const byHost = invocations.toSorted(byHostName);
      for (let start = 0; start < byHost.length; start += HOST_OUTCOMES_PER_WRITE) {
        await store.recordHostOutcomes(
          step.releaseId,
          step.environment,
          kind,
          byHost.slice(start, start + HOST_OUTCOMES_PER_WRITE).map((invocation) => {
            const status = invocation.status === 'success' ? HOST_STATUS_ON_SUCCESS[kind] : 'failed';
            return {
              host: invocation.host,
              ...(status ? { status } : {}),
              output: {
                exitCode: invocation.exitCode,
                stdout: invocation.stdout,
                stderr: invocation.stderr,
                startedAt: invocation.startedAt,
                endedAt: invocation.endedAt,
              },
            };
          }),
          at,
        );
      }
    }
    if (afterCommand && step.environment !== 'all') {
      await afterCommand(step, invocations).catch((error: unknown) =>
        logger.warn('could not record where the command left the hosts; a scan will tell', { commandId, error }),
      );
    }
    const failed = invocations.filter((i) => i.status !== 'success');
    const outcome: StepOutcome =
      failed.length === 0
        ? { status: 'succeeded', output: { hosts: invocations.length } }
        : {
            status: 'failed',
            error: HostCommandFailedError.name,
            cause: tail(describeFailure(kind, step.environment, failed, step.batchIndex), CAUSE_LIMIT),
          };
    const { settled, step: current } = await store.completeStep(step.releaseId, step.key, outcome, at);
    // Only the call that settled the step records it: two callbacks at the same moment record one.
    if (settled) {
      await record(step.releaseId, `${kind}.${current.state}`, {
        environment: step.environment,
        batchIndex: step.batchIndex,
        failedHosts: failed.slice(0, FAILED_HOSTS_NAMED).map((f) => f.host),
        ...(failed.length > FAILED_HOSTS_NAMED ? { failedCount: failed.length } : {}),
      });
    }
    await deliverOutcome(workflow, current);
  }

  /**
   * The reconciling check: a status event may never come (EventBridge delivers at best effort), so
   * host commands running longer than `minAgeSeconds` are asked for their results directly.
   */
  async function reconcileCommands(minAgeSeconds = 60, limit = 100): Promise<number> {
    const cutoff = new Date(clock.now().getTime() - minAgeSeconds * 1000).toISOString();
    let checked = 0;
    for (const step of await store.listRunningCommandSteps(limit)) {
      if (!step.commandId) continue;
      if (step.createdAt <= cutoff) {
        await commandFinished(step.commandId);
        checked += 1;
      }
      // Still running: the waiting task hears that it is, so its HeartbeatSeconds does not fire.
      const current = await store.getStep(step.releaseId, step.key);
      if (current?.state === 'running' && current.taskToken) {
        await workflow.sendTaskHeartbeat(current.taskToken).catch((error: unknown) => {
          if (!(error instanceof StaleTaskTokenError)) throw error;
        });
      }
    }
    return checked;
  }

  return { runCommandStep, commandFinished, reconcileCommands };
}
