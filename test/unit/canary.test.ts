import {
  AnalysisFailedError,
  AppConfig,
  ConflictError,
  ForbiddenError,
  historyEventsOf,
  planEnvironment,
  ReleaseEndedError,
  type ReleaseStore,
  summarizePlan,
} from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createTestSlipway, type TestSlipway } from '../../packages/core/src/testing/harness.ts';

/**
 * Canary steps, pauses, promote and analysis on fakes with a hand-moved clock, the stages driven in
 * the order the state machine drives them (SwitchBatch, then Watch until it stops saying wait, then
 * Pause when it says so).
 */

const hosts = (n: number) => Array.from({ length: n }, (_, i) => `web-${i + 1}`);
type Steps = NonNullable<Extract<AppConfig['environments'][number]['strategy'], { type: 'canary' }>['steps']>;
const canary = (steps: Steps) => ({ type: 'canary' as const, steps });

function config(environment: Record<string, unknown>) {
  return AppConfig.parse({
    name: 'shop',
    deployRoot: '/srv/shop',
    environments: [{ name: 'production', targets: { hosts: hosts(4) }, ...environment }],
  });
}

describe('canary steps in the config', () => {
  const problems = (strategy: unknown) => {
    const parsed = AppConfig.safeParse({ name: 'shop', deployRoot: '/srv/shop', environments: [{ name: 'production', targets: { hosts: ['a'] }, strategy }] });
    return parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  };

  it('takes hosts by count or percent, pauses for a person or for seconds, and keeps the old form', () => {
    expect(problems(canary([{ hosts: 1 }, { pause: {} }, { hosts: '50%' }, { pause: { seconds: 600 } }, { hosts: '100%' }]))).toEqual([]);
    expect(problems({ type: 'canary', canaryHosts: 1, batchSize: '25%' })).toEqual([]);
    expect(problems({ type: 'canary', batchSize: 2 })).toEqual([]);
  });

  it('refuses a last step short of 100%, a leading pause, a mix of both forms and unknown step shapes, naming the field and the fix', () => {
    expect(problems(canary([{ hosts: 1 }, { pause: {} }, { hosts: '50%' }]))).toEqual([
      'environments.0.strategy.steps.2: the last step must be {"hosts": "100%"} so every host gets the release: add it at the end',
    ]);
    expect(problems(canary([{ pause: {} }, { hosts: '100%' }]))).toEqual(['environments.0.strategy.steps.0: a pause must follow a hosts step: start with {"hosts": 1}']);
    expect(problems({ type: 'canary', canaryHosts: 1, steps: [{ hosts: '100%' }] })).toEqual([
      'environments.0.strategy.steps: steps replace canaryHosts and batchSize: remove those two fields',
    ]);
    expect(problems({ type: 'canary' })[0]).toContain('give either steps');
    expect(problems(canary([{ hosts: 1, pause: {} } as never, { hosts: '100%' }]))[0]).toContain('each step must be');
    expect(problems(canary([{ pause: { seconds: 0 } } as never, { hosts: '100%' }])).length).toBeGreaterThan(0);
  });

  it('refuses an analysis with nothing to watch, and defaults the rest', () => {
    const parsed = AppConfig.safeParse({ name: 'shop', deployRoot: '/srv/shop', environments: [{ name: 'p', targets: { hosts: ['a'] }, analysis: { intervalSeconds: 5 } }] });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toContain('give http');
    const ok = config({ analysis: { http: { url: 'https://shop.example.com/health' } } });
    expect(ok.environments[0]!.analysis).toEqual({ http: { url: 'https://shop.example.com/health', expectStatus: 200, timeoutSeconds: 5 }, intervalSeconds: 10, failureLimit: 3 });
  });
});

describe('planning canary steps', () => {
  it('cuts 10 hosts into 1, to 50%, to 100%, with each pause after the batch it follows', () => {
    const plan = planEnvironment(hosts(10), canary([{ hosts: 1 }, { pause: {} }, { hosts: '50%' }, { pause: { seconds: 600 } }, { hosts: '100%' }]));
    expect(plan.batches.map((batch) => batch.length)).toEqual([1, 4, 5]);
    expect(plan.batches.flat()).toEqual(hosts(10));
    expect(plan.pauses).toEqual([
      { afterBatch: 0, step: 1 },
      { afterBatch: 1, step: 3, seconds: 600 },
    ]);
  });

  it('adds no batch for a step that reaches no new host, and merges two pauses after one batch (a person wins)', () => {
    const plan = planEnvironment(hosts(2), canary([{ hosts: 1 }, { pause: { seconds: 60 } }, { hosts: '50%' }, { pause: {} }, { hosts: '100%' }]));
    expect(plan.batches).toEqual([['web-1'], ['web-2']]);
    expect(plan.pauses).toEqual([{ afterBatch: 0, step: 1 }]);
  });

  it('keeps the old canaryHosts/batchSize form, and the summary carries no host, only whether a batch is watched', () => {
    expect(planEnvironment(hosts(5), { type: 'canary', canaryHosts: 1, batchSize: 2 }).batches.map((b) => b.length)).toEqual([1, 2, 2]);
    const summary = summarizePlan({
      releaseId: 'r',
      app: 'shop',
      environments: [
        { name: 'a', approval: false, bakeSeconds: 0, batches: [hosts(3)] },
        { name: 'b', approval: false, bakeSeconds: 0, batches: [['x'], ['y']], pauses: [{ afterBatch: 0, step: 1 }] },
      ],
    });
    expect(summary.environments.map((env) => env.watch)).toEqual([false, true]);
    expect(JSON.stringify(summary)).not.toContain('web-');
  });
});

/** Opens and prepares a release of `environment` on the fakes, and enters and distributes it. */
async function entered(t: TestSlipway, environment: Record<string, unknown>, version = '1.0.0') {
  await t.appWithArtifact(config(environment));
  const { id } = await t.open('shop', version);
  await t.stages.prepare({ releaseId: id, app: 'shop' });
  await t.stages.enterEnvironment({ taskToken: `enter-${id}`, releaseId: id, environment: 'production' });
  await t.stages.distribute({ taskToken: `distribute-${id}`, releaseId: id, environment: 'production' });
  await t.finish('distribute');
  return id;
}

async function switched(t: TestSlipway, id: string, batchIndex: number) {
  await t.stages.switchBatch({ taskToken: `switch-${id}-${batchIndex}`, releaseId: id, environment: 'production', batchIndex });
  await t.finish('switch');
}

/** Watch as the ASL loops on it: the clock moves to each `until` until it says pause or done. */
async function watched(t: TestSlipway, id: string, batchIndex: number, rounds = 100) {
  for (let round = 0; round < rounds; round++) {
    const outcome = await t.stages.watch({ releaseId: id, environment: 'production', batchIndex });
    if (outcome.next !== 'wait') return outcome;
    t.clock.set(outcome.until);
  }
  return t.stages.watch({ releaseId: id, environment: 'production', batchIndex });
}

const deployer = { name: 'dev@example.com', role: 'deployer' as const };
const approver = { name: 'lead@example.com', role: 'approver' as const };

describe('the history a plan may use', () => {
  it('counts each probe and each round of a timed pause; without an analysis a timed pause is one round however long it lasts', () => {
    const batches = [hosts(1), hosts(1)];
    const plain = historyEventsOf({ batches, bakeSeconds: 0 }, undefined);
    expect(plain).toBe(54);
    expect(historyEventsOf({ batches, bakeSeconds: 60 }, undefined)).toBe(plain + 2 * 9);
    expect(historyEventsOf({ batches, bakeSeconds: 60 }, 10)).toBe(plain + 2 * (9 + 5 * 10));
    // Nothing looks for a promote: it completes the TimedPause task's token.
    const dayLong = historyEventsOf({ batches, bakeSeconds: 0, pauses: [{ afterBatch: 0, step: 1, seconds: 86_400 }] }, undefined);
    expect(dayLong).toBe(plain + 9 + 13);
    const probedHour = historyEventsOf({ batches, bakeSeconds: 0, pauses: [{ afterBatch: 0, step: 1, seconds: 3600 }] }, 60);
    expect(probedHour).toBe(plain + 9 + 60 * 13);
  });

  it('Prepare refuses, before any host is touched, an analysis that would probe more often than the history holds', async () => {
    const t = createTestSlipway();
    await t.appWithArtifact(config({ strategy: { type: 'rolling', batchSize: 1 }, bakeSeconds: 86_400, analysis: { http: { url: 'https://shop.example.com/' }, intervalSeconds: 1 } }));
    const { id } = await t.open('shop', '1.0.0');
    await expect(t.stages.prepare({ releaseId: id, app: 'shop' })).rejects.toThrow(/raise analysis.intervalSeconds/);
    expect(t.fleet.sends).toHaveLength(0);
  });
});

describe('a pause for a person', () => {
  const steps = canary([{ hosts: 1 }, { pause: {} }, { hosts: '100%' }]);

  /** Switched and watched its first batch, and paused there: the Pause task holds token `pause-1`. */
  async function heldAtFirstPause(t: TestSlipway, strategy = steps) {
    const id = await entered(t, { strategy });
    await switched(t, id, 0);
    await watched(t, id, 0);
    await t.stages.pause({ taskToken: 'pause-1', releaseId: id, environment: 'production', batchIndex: 0 });
    return id;
  }

  it('says paused with the step and since when, mails the opener once, and goes on when promoted', async () => {
    const t = createTestSlipway();
    const id = await entered(t, { strategy: steps });
    await switched(t, id, 0);
    expect(await watched(t, id, 0)).toMatchObject({ next: 'pause' });
    await t.stages.pause({ taskToken: 'pause-1', releaseId: id, environment: 'production', batchIndex: 0 });
    expect(t.workflow.outcomeOf('pause-1')).toBeUndefined();
    const view = await t.slipway.releases.view(id);
    expect(view.status).toBe('paused');
    expect(view.pause).toEqual({ environment: 'production', step: 1, batch: 1, pausedAt: t.clock.now().toISOString() });
    expect(view.environments[0]!.status).toBe('paused');
    // Its lease outlives the pause: no line takes the environment over from a paused canary.
    const lease = (await t.store.getLock('shop', 'production'))!;
    expect(lease.holder).toBe(id);
    expect(Date.parse(lease.leaseUntil) - t.clock.now().getTime()).toBeGreaterThan(20 * 24 * 3600 * 1000);
    // A resumed Pause task (a restart) waits on its new token, and mails nobody again.
    await t.stages.pause({ taskToken: 'pause-2', releaseId: id, environment: 'production', batchIndex: 0 });
    const pausedMails = t.mailer.sent.filter((mail) => mail.subject.includes('paused'));
    expect(pausedMails).toHaveLength(1);
    expect(pausedMails[0]!.text).toContain(`/v1/releases/${id}`);

    expect(await t.slipway.releases.promote(id, {}, approver)).toEqual({ id, status: 'switching' });
    expect(t.workflow.outcomeOf('pause-2')).toMatchObject({ kind: 'success' });
    expect(t.workflow.outcomeOf('pause-1')).toBeUndefined();
    expect((await t.slipway.releases.view(id)).pause).toBeUndefined();
    await expect(t.slipway.releases.promote(id, {}, approver)).rejects.toThrow(ConflictError);
    const audit = await t.slipway.audit.list({});
    expect(audit.items.find((entry) => entry.action === 'release.promoted')).toMatchObject({ actor: 'lead@example.com', subject: `releases/${id}` });
  });

  it('a promote before the Pause task stored its token ends the pause at once', async () => {
    const t = createTestSlipway();
    const id = await entered(t, { strategy: steps });
    await switched(t, id, 0);
    // The Watch said pause; the promote comes in before the Pause task runs (status is paused only then).
    await expect(t.slipway.releases.promote(id, {}, deployer)).rejects.toThrow(ConflictError);
    await t.stages.pause({ taskToken: 'pause-1', releaseId: id, environment: 'production', batchIndex: 0 });
    await t.slipway.releases.promote(id, {}, deployer);
    // Run again (a retry after the answer was lost): it answers at once.
    await t.stages.pause({ taskToken: 'pause-again', releaseId: id, environment: 'production', batchIndex: 0 });
    expect(t.workflow.outcomeOf('pause-again')).toMatchObject({ kind: 'success' });
  });

  it('two promotes at once: one goes on, the other is refused, and the promote is recorded once', async () => {
    const t = createTestSlipway();
    const id = await heldAtFirstPause(t);
    const results = await Promise.allSettled([t.slipway.releases.promote(id, {}, deployer), t.slipway.releases.promote(id, {}, approver)]);
    expect(results.map((result) => result.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect((await t.store.listEvents(id)).filter((e) => e.type === 'release.promoted')).toHaveLength(1);
    expect((await t.slipway.audit.list({})).items.filter((entry) => entry.action === 'release.promoted')).toHaveLength(1);
    expect(t.workflow.outcomes.filter((outcome) => outcome.token === 'pause-1')).toHaveLength(1);
  });

  it('full skips every pause still ahead', async () => {
    const t = createTestSlipway();
    const id = await heldAtFirstPause(t, canary([{ hosts: 1 }, { pause: {} }, { hosts: 2 }, { pause: {} }, { hosts: '100%' }]));
    await t.slipway.releases.promote(id, { full: true }, deployer);
    await switched(t, id, 1);
    expect(await watched(t, id, 1)).toMatchObject({ next: 'done' });
    await t.stages.pause({ taskToken: 'pause-2', releaseId: id, environment: 'production', batchIndex: 1 });
    expect(t.workflow.outcomeOf('pause-2')).toMatchObject({ kind: 'success' });
    expect((await t.store.getRelease(id))!.status).toBe('switching');
  });

  it('a cancel while paused fails the waiting task, so the workflow puts the switched hosts back', async () => {
    const t = createTestSlipway();
    const id = await heldAtFirstPause(t);
    await t.slipway.releases.cancel(id, deployer);
    expect(t.workflow.outcomeOf('pause-1')).toMatchObject({ kind: 'failure', error: ReleaseEndedError.name });
    expect(await t.stages.planRevert({ releaseId: id, environment: 'production' })).toEqual({ batches: [0] });
  });

  it('only deployers, approvers and admins may promote', async () => {
    const { hasPermission } = await import('@slipway/core');
    expect(['viewer', 'deployer', 'approver', 'admin'].filter((role) => hasPermission(role as never, 'releases:promote'))).toEqual(['deployer', 'approver', 'admin']);
    expect(ForbiddenError).toBeDefined();
  });
});

/**
 * One round of a timed pause as the ASL runs it: the TimedPause task stores its token, then either
 * a promote completes it, or its timeout (Watch's `seconds`, at `until`) sends the workflow back to
 * Watch, the token then dead.
 */
async function timedPauseTask(t: TestSlipway, id: string, batchIndex: number, taskToken: string) {
  await t.stages.pause({ taskToken, releaseId: id, environment: 'production', batchIndex });
}
function timedOut(t: TestSlipway, taskToken: string, until: string) {
  t.workflow.expireToken(taskToken);
  t.clock.set(until);
}
const eventsOf = async (t: TestSlipway, id: string, type: string) => (await t.store.listEvents(id)).filter((e) => e.type === type);

describe('a timed pause', () => {
  const twoTimedPauses = canary([{ hosts: 1 }, { pause: { seconds: 600 } }, { hosts: 2 }, { pause: { seconds: 600 } }, { hosts: '100%' }]);

  /** Switched its first batch and watched into the 600 s pause: `pausing` is Watch's answer. */
  async function pausedAfterFirstBatch(t: TestSlipway) {
    const id = await entered(t, { strategy: twoTimedPauses });
    await switched(t, id, 0);
    return { id, pausing: await watched(t, id, 0) };
  }

  it('bakes, then holds the pause on a callback token until its end; the task\'s timeout brings Watch back, which goes on by itself', async () => {
    const t = createTestSlipway();
    const id = await entered(t, { strategy: twoTimedPauses, bakeSeconds: 60 });
    const start = t.clock.now().getTime();
    await switched(t, id, 0);
    const baking = await t.stages.watch({ releaseId: id, environment: 'production', batchIndex: 0 });
    expect(baking).toEqual({ next: 'wait', until: new Date(start + 60_000).toISOString() });
    expect((await t.store.getRelease(id))!.status).toBe('switching');
    t.clock.set(baking.until);
    const pausing = await t.stages.watch({ releaseId: id, environment: 'production', batchIndex: 0 });
    // The whole pause in one task: no look for a promote in between.
    expect(pausing).toEqual({ next: 'timed-pause', until: new Date(start + 660_000).toISOString(), seconds: 600 });
    await timedPauseTask(t, id, 0, 'timed-1');
    expect(t.workflow.outcomeOf('timed-1')).toBeUndefined();
    const view = await t.slipway.releases.view(id);
    expect(view.status).toBe('paused');
    expect(view.pause).toMatchObject({ environment: 'production', step: 1, resumeAt: new Date(start + 660_000).toISOString() });
    // The lease lasts the pause out.
    expect(Date.parse((await t.store.getLock('shop', 'production'))!.leaseUntil)).toBeGreaterThan(start + 660_000);

    timedOut(t, 'timed-1', pausing.until);
    expect(await t.stages.watch({ releaseId: id, environment: 'production', batchIndex: 0 })).toMatchObject({ next: 'done' });
    expect((await t.store.getRelease(id))!.status).toBe('switching');
    expect(await eventsOf(t, id, 'release.paused')).toHaveLength(1);
    expect(await eventsOf(t, id, 'release.resumed')).toHaveLength(1);
    expect(await eventsOf(t, id, 'release.promoted')).toHaveLength(0);
  });

  it('a promote ends it at once: the waiting task\'s token completes without the clock moving, recorded once', async () => {
    const t = createTestSlipway();
    const { id, pausing } = await pausedAfterFirstBatch(t);
    expect(pausing).toMatchObject({ next: 'timed-pause', seconds: 600 });
    await timedPauseTask(t, id, 0, 'timed-1');
    const pausedAt = t.clock.now().toISOString();
    expect(await t.slipway.releases.promote(id, {}, deployer)).toEqual({ id, status: 'switching' });
    expect(t.workflow.outcomeOf('timed-1')).toMatchObject({ kind: 'success' });
    expect(t.clock.now().toISOString()).toBe(pausedAt);
    expect((await t.slipway.releases.view(id)).pause).toBeUndefined();
    // A retried Watch (its answer lost) says done, and records nothing more.
    expect(await t.stages.watch({ releaseId: id, environment: 'production', batchIndex: 0 })).toMatchObject({ next: 'done' });
    expect(await eventsOf(t, id, 'release.promoted')).toHaveLength(1);
    expect(await eventsOf(t, id, 'release.resumed')).toHaveLength(0);
    expect(t.workflow.outcomes.filter((outcome) => outcome.token.startsWith('timed-'))).toHaveLength(1);
  });

  it('two promotes at once: one goes on, the other is refused; one event, one audit entry, one answer to the task', async () => {
    const t = createTestSlipway();
    const { id } = await pausedAfterFirstBatch(t);
    await timedPauseTask(t, id, 0, 'timed-1');
    const results = await Promise.allSettled([
      t.slipway.releases.promote(id, {}, deployer),
      t.slipway.releases.promote(id, { full: true }, approver),
    ]);
    const fulfilled = results.filter((result) => result.status === 'fulfilled');
    const rejected = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    expect(fulfilled).toHaveLength(1);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]!.reason).toBeInstanceOf(ConflictError);
    expect((rejected[0]!.reason as Error).message).toMatch(/ended a moment ago.*nothing to promote/);
    expect(await eventsOf(t, id, 'release.promoted')).toHaveLength(1);
    expect((await t.slipway.audit.list({})).items.filter((entry) => entry.action === 'release.promoted')).toHaveLength(1);
    expect(t.workflow.outcomes.filter((outcome) => outcome.token === 'timed-1')).toHaveLength(1);
    // The loser's `full` (if it was the loser) skips nothing: only the promote that went on counts.
    const won = (await eventsOf(t, id, 'release.promoted'))[0]!;
    await switched(t, id, 1);
    expect((await watched(t, id, 1)).next).toBe(won.data?.full ? 'done' : 'timed-pause');
  });

  it('a promote racing the timer: the end of the pause settles it between the promote\'s look and its write, so the promote is refused and records nothing', async () => {
    // Once armed, holds the next settling write of the pause step (the promote's) until the test lets it go.
    const signal = () => {
      let resolve!: () => void;
      const promise = new Promise<void>((done) => (resolve = done));
      return { promise, resolve };
    };
    const held = { arrived: signal(), go: signal(), armed: false };
    const holding = (store: ReleaseStore): ReleaseStore =>
      new Proxy(store, {
        get(target, property, receiver) {
          if (property !== 'completeStep') return Reflect.get(target, property, receiver) as unknown;
          return async (...args: Parameters<ReleaseStore['completeStep']>) => {
            if (held.armed && args[1].startsWith('pause#')) {
              held.armed = false;
              held.arrived.resolve();
              await held.go.promise;
            }
            return target.completeStep(...args);
          };
        },
      });
    const t = createTestSlipway({ storeSeenBy: holding });
    const { id, pausing } = await pausedAfterFirstBatch(t);
    await timedPauseTask(t, id, 0, 'timed-1');
    held.armed = true;
    const promoting = t.slipway.releases.promote(id, {}, deployer);
    promoting.catch(() => undefined);
    await Promise.race([held.arrived.promise, promoting.then(() => Promise.reject(new Error('the promote went on without settling the pause step')))]);
    // The promote saw the release paused; now the pause's time is up and its task times out.
    timedOut(t, 'timed-1', pausing.until);
    expect(await t.stages.watch({ releaseId: id, environment: 'production', batchIndex: 0 })).toMatchObject({ next: 'done' });
    held.go.resolve();
    await expect(promoting).rejects.toThrow(ConflictError);
    expect(await eventsOf(t, id, 'release.resumed')).toHaveLength(1);
    expect(await eventsOf(t, id, 'release.promoted')).toHaveLength(0);
    expect((await t.slipway.audit.list({})).items.filter((entry) => entry.action === 'release.promoted')).toHaveLength(0);
    expect((await t.store.getRelease(id))!.status).toBe('switching');
  });

  it('a promote that settles the pause just before its timeout: the timed-out task\'s Watch goes on without a second record', async () => {
    const t = createTestSlipway();
    const { id, pausing } = await pausedAfterFirstBatch(t);
    await timedPauseTask(t, id, 0, 'timed-1');
    t.clock.set(new Date(Date.parse(pausing.until) - 1).toISOString());
    await t.slipway.releases.promote(id, {}, deployer);
    timedOut(t, 'timed-1', pausing.until);
    expect(await t.stages.watch({ releaseId: id, environment: 'production', batchIndex: 0 })).toMatchObject({ next: 'done' });
    expect(await eventsOf(t, id, 'release.promoted')).toHaveLength(1);
    expect(await eventsOf(t, id, 'release.resumed')).toHaveLength(0);
  });

  it('a promote between two rounds (the old token dead, the next not stored yet) reaches the next round\'s task', async () => {
    const analysis = { http: { url: 'https://shop.example.com/health' }, intervalSeconds: 10 };
    const t = createTestSlipway({ analysis: { http: { get: async () => ({ status: 200 }) } } });
    const id = await entered(t, { strategy: twoTimedPauses, analysis });
    await switched(t, id, 0);
    const first = await watched(t, id, 0);
    // With an analysis each round lasts until the next probe.
    expect(first).toMatchObject({ next: 'timed-pause', seconds: 10 });
    await timedPauseTask(t, id, 0, 'round-1');
    timedOut(t, 'round-1', first.until);
    expect(await t.stages.watch({ releaseId: id, environment: 'production', batchIndex: 0 })).toMatchObject({ next: 'timed-pause', seconds: 10 });
    // The promote settles the step, which still holds round 1's dead token.
    await t.slipway.releases.promote(id, {}, deployer);
    await timedPauseTask(t, id, 0, 'round-2');
    expect(t.workflow.outcomeOf('round-2')).toMatchObject({ kind: 'success' });
    expect(await eventsOf(t, id, 'release.paused')).toHaveLength(1);
    expect(t.mailer.sent.filter((mail) => mail.subject.includes('paused'))).toHaveLength(1);
    expect(await eventsOf(t, id, 'release.promoted')).toHaveLength(1);
    expect(await eventsOf(t, id, 'analysis.probe')).toHaveLength(2);
  });

  it('a task resumed on the same token after a restart holds the pause again silently, and a promote then answers it once', async () => {
    const t = createTestSlipway();
    const { id, pausing } = await pausedAfterFirstBatch(t);
    await timedPauseTask(t, id, 0, 'timed-1');
    // The executor restarts and calls the function again on the same token (Lambda is at least once too).
    await timedPauseTask(t, id, 0, 'timed-1');
    expect(await eventsOf(t, id, 'release.paused')).toHaveLength(1);
    expect((await t.slipway.releases.view(id)).pause).toMatchObject({ resumeAt: pausing.until });
    await t.slipway.releases.promote(id, {}, deployer);
    expect(t.workflow.outcomeOf('timed-1')).toMatchObject({ kind: 'success' });
    // Once more after the promote (the answer raced the restart): no error, nothing recorded.
    await timedPauseTask(t, id, 0, 'timed-1');
    expect(t.workflow.outcomes.filter((outcome) => outcome.token === 'timed-1')).toHaveLength(1);
    expect(await eventsOf(t, id, 'release.promoted')).toHaveLength(1);
  });

  it('a TimedPause task that starts after the pause\'s end goes on at once, resumed once', async () => {
    const t = createTestSlipway();
    const { id, pausing } = await pausedAfterFirstBatch(t);
    t.clock.set(pausing.until);
    await timedPauseTask(t, id, 0, 'late');
    expect(t.workflow.outcomeOf('late')).toMatchObject({ kind: 'success' });
    expect((await t.store.getRelease(id))!.status).toBe('switching');
    expect(await eventsOf(t, id, 'release.resumed')).toHaveLength(0);
    expect(await eventsOf(t, id, 'release.paused')).toHaveLength(0);
  });

  it('a cancel while timed-paused fails the waiting task at once', async () => {
    const t = createTestSlipway();
    const { id } = await pausedAfterFirstBatch(t);
    await timedPauseTask(t, id, 0, 'timed-1');
    await t.slipway.releases.cancel(id, deployer);
    expect(t.workflow.outcomeOf('timed-1')).toMatchObject({ kind: 'failure', error: ReleaseEndedError.name });
    await expect(t.slipway.releases.promote(id, {}, deployer)).rejects.toThrow(ConflictError);
  });
});

describe('a day-long bake', () => {
  it('keeps the environment\'s lease beyond the bake\'s end (a lease alone lasts 6 hours)', async () => {
    const t = createTestSlipway();
    const id = await entered(t, { strategy: { type: 'rolling', batchSize: 2 }, bakeSeconds: 86_400 });
    await switched(t, id, 0);
    await t.stages.watch({ releaseId: id, environment: 'production', batchIndex: 0 });
    const lease = (await t.store.getLock('shop', 'production'))!;
    expect(Date.parse(lease.leaseUntil) - t.clock.now().getTime()).toBeGreaterThan(86_400_000);
  });
});

describe('analysis through the bake', () => {
  const analysis = { http: { url: 'https://shop.example.com/health?key=secret' }, intervalSeconds: 10, failureLimit: 2 };

  function probing(statuses: (number | Error)[]) {
    const seen: string[] = [];
    return {
      seen,
      http: {
        async get(url: string) {
          seen.push(url);
          const next = statuses.length > 1 ? statuses.shift()! : statuses[0]!;
          if (next instanceof Error) throw next;
          return { status: next };
        },
      },
    };
  }

  async function slipwayProbing(statuses: (number | Error)[]) {
    const probe = probing(statuses);
    const t = createTestSlipway({ analysis: { http: probe.http } });
    const id = await entered(t, { strategy: { type: 'rolling', batchSize: 2 }, bakeSeconds: 60, analysis });
    await switched(t, id, 0);
    return { t, id, probe };
  }

  it('probes every interval through the bake and records each probe\'s time and status, without the URL\'s query', async () => {
    const { t, id, probe } = await slipwayProbing([200]);
    expect(await watched(t, id, 0)).toMatchObject({ next: 'done' });
    expect(probe.seen.length).toBe(6);
    const probes = (await t.store.listEvents(id)).filter((e) => e.type === 'analysis.probe');
    expect(probes).toHaveLength(6);
    expect(probes[0]!.data).toEqual({ environment: 'production', batch: 1, check: 'GET https://shop.example.com/health', ok: true, status: '200' });
    expect(new Set(probes.map((p) => p.at)).size).toBe(6);
    expect(JSON.stringify(probes)).not.toContain('secret');
  });

  it('fails the release when failures reach the limit, with what failed and its last status', async () => {
    const { t, id } = await slipwayProbing([200, 500, 200, 503]);
    const error = await watched(t, id, 0).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AnalysisFailedError);
    expect((error as Error).message).toBe('analysis failed: GET https://shop.example.com/health, last status 503 (expected 200) (2 failed probes, limit 2)');
  });

  it('fails safe when the very first probe cannot run, and when no probe is wired at all', async () => {
    const { t, id } = await slipwayProbing([new Error('connect ECONNREFUSED 127.0.0.1:9')]);
    await expect(t.stages.watch({ releaseId: id, environment: 'production', batchIndex: 0 })).rejects.toThrow(/could not run at the start.*ECONNREFUSED/);

    const bare = createTestSlipway();
    const other = await entered(bare, { strategy: { type: 'rolling', batchSize: 2 }, bakeSeconds: 60, analysis });
    await switched(bare, other, 0);
    await expect(bare.stages.watch({ releaseId: other, environment: 'production', batchIndex: 0 })).rejects.toThrow(AnalysisFailedError);
  });

  it('a probe that cannot run later counts as one failure, not an instant one', async () => {
    const { t, id } = await slipwayProbing([200, new Error('timeout'), 200]);
    expect(await watched(t, id, 0)).toMatchObject({ next: 'done' });
  });
});

describe('the line: positions and leaving it', () => {
  const queued = () =>
    AppConfig.parse({
      name: 'shop',
      deployRoot: '/srv/shop',
      queue: true,
      environments: [
        { name: 'a', targets: { hosts: ['a-1'] } },
        { name: 'b', targets: { hosts: ['b-1'] } },
      ],
    });

  async function openedAndPrepared(t: TestSlipway, version: string) {
    const { id } = await t.open('shop', version);
    await t.stages.prepare({ releaseId: id, app: 'shop' });
    return id;
  }

  it('shows each waiter\'s position (1 is next); a cancel behind another in a later environment leaves at once, and the holder\'s end lets the first in', async () => {
    const t = createTestSlipway();
    await t.appWithArtifact(queued());
    const holder = await openedAndPrepared(t, '1.0.0');
    await t.stages.enterEnvironment({ taskToken: 'holder-b', releaseId: holder, environment: 'b' });
    const second = await openedAndPrepared(t, '2.0.0');
    const third = await openedAndPrepared(t, '3.0.0');
    await t.stages.enterEnvironment({ taskToken: 'second-b', releaseId: second, environment: 'b' });
    await t.stages.enterEnvironment({ taskToken: 'third-b', releaseId: third, environment: 'b' });
    expect(await t.slipway.releases.view(second)).toMatchObject({ queuePosition: 1, queuedFor: 'b' });
    expect(await t.slipway.releases.view(third)).toMatchObject({ queuePosition: 2, queuedFor: 'b' });
    expect((await t.slipway.releases.view(holder)).queuePosition).toBeUndefined();

    // The third has moved on from pending (its first environment is done), so the cancel does not stop its execution.
    await t.store.updateReleaseStatus(third, 'pending', 'switching', t.clock.now().toISOString());
    await t.slipway.releases.cancel(third, deployer);
    expect(t.workflow.outcomeOf('third-b')).toMatchObject({ kind: 'failure', error: ReleaseEndedError.name });
    expect((await t.store.listQueue('shop', 'b')).map((w) => w.releaseId)).toEqual([second]);

    // The holder ends: the first in line is let in by that call, without the sweep.
    await t.stages.failEnvironment({ releaseId: holder, environment: 'b', failure: { Error: 'HostCommandFailedError', Cause: 'boom' } });
    expect(t.workflow.outcomeOf('second-b')).toMatchObject({ kind: 'success' });
    expect((await t.slipway.releases.view(second)).queuePosition).toBeUndefined();
  });
});
