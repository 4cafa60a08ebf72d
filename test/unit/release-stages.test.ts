import { createHash } from 'node:crypto';
import { AppConfig, artifactKey, EnvironmentLockedError, NotFoundError, ReleaseEndedError, UnprocessableError, UnsafeArtifactError } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createFakeFleet } from '../../packages/core/src/testing/fakes.ts';
import { createTestSlipway, type TestSlipway } from '../../packages/core/src/testing/harness.ts';
import { shopConfigInput } from '../support/fixtures.ts';
import { tarball } from '../support/hostile-archive.ts';

/**
 * The stages on fakes and a hand-moved clock, driven as the state machine drives them: each test
 * calls the stages in the ASL's order, with tokens it names, and reads what the fakes were told.
 */

const HOUR = 3_600_000;
const [stagingInput, productionInput] = shopConfigInput.environments;
/** staging: one host; production: four hosts in four batches, a 60-second bake after each, no gate. */
const shop = AppConfig.parse({ ...shopConfigInput, environments: [stagingInput, { ...productionInput, approval: undefined }] });
const gated = AppConfig.parse(shopConfigInput);
const queued = AppConfig.parse({ ...shopConfigInput, queue: true, environments: [stagingInput] });

async function opened(config = shop, t: TestSlipway = createTestSlipway()) {
  await t.appWithArtifact(config);
  const { id } = await t.open('shop', `1.0.${t.workflow.started.size}`);
  return { t, id };
}

async function prepared(config = shop) {
  const { t, id } = await opened(config);
  await t.stages.prepare({ releaseId: id, app: 'shop' });
  return { t, id };
}

/** Enter, distribute, switch every batch (baking between), complete: one environment as the ASL runs it. */
async function through(t: TestSlipway, id: string, environment: string) {
  await t.stages.enterEnvironment({ taskToken: `enter-${id}-${environment}`, releaseId: id, environment });
  const entered = t.workflow.outcomeOf(`enter-${id}-${environment}`);
  if (entered?.kind !== 'success') throw new Error(`${environment} did not let release ${id} in`);
  await t.stages.distribute({ taskToken: `distribute-${id}-${environment}`, releaseId: id, environment });
  await t.finish('distribute');
  const { batches } = entered.output as { batches: number[] };
  for (const batchIndex of batches) {
    await t.stages.switchBatch({ taskToken: `switch-${id}-${environment}-${batchIndex}`, releaseId: id, environment, batchIndex });
    await t.finish('switch');
    // The bake is recorded; the clock stays where it is (the tests below read times from it).
    await t.stages.watch({ releaseId: id, environment, batchIndex });
  }
  await t.stages.completeEnvironment({ releaseId: id, environment });
}

const eventTypes = async (t: TestSlipway, id: string) => (await t.store.listEvents(id)).map((e) => e.type);

describe('Prepare', () => {
  it('stores the plan once and answers its summary', async () => {
    const { t, id } = await opened();
    const summary = await t.stages.prepare({ releaseId: id, app: 'shop' });
    expect(summary).toEqual(await t.stages.prepare({ releaseId: id, app: 'shop' }));
    expect((await t.store.getPlan(id))?.environments.map((e) => [e.name, e.batches])).toEqual([
      ['staging', [['i-0a1b2c3d4e5f60718']]],
      ['production', [['i-web-1'], ['i-web-2'], ['i-web-3'], ['i-web-4']]],
    ]);
    expect((await eventTypes(t, id)).filter((type) => type === 'release.planned')).toHaveLength(1);
  });

  it('refuses, before touching a host, hosts that cannot take commands, naming them', async () => {
    const t = createTestSlipway();
    const fleet = createFakeFleet({ resolve: () => ({ hosts: ['i-1'], unreachable: [{ host: 'i-2', reason: 'ConnectionLost' }] }) });
    t.fleet.resolveTargets = fleet.resolveTargets;
    const { id } = await opened(shop, t);
    const refused = t.stages.prepare({ releaseId: id, app: 'shop' });
    await expect(refused).rejects.toBeInstanceOf(UnprocessableError);
    await expect(refused).rejects.toThrow(/staging: 1 of 2 hosts cannot take commands now: i-2 \(ConnectionLost\)/);
    expect(await t.store.getPlan(id)).toBeUndefined();
    expect(t.fleet.sends).toEqual([]);
  });

  it('refuses targets that match nothing, and a release that ended', async () => {
    const t = createTestSlipway();
    t.fleet.resolveTargets = async () => ({ hosts: [], unreachable: [] });
    const { id } = await opened(shop, t);
    await expect(t.stages.prepare({ releaseId: id, app: 'shop' })).rejects.toBeInstanceOf(NotFoundError);
    await t.slipway.releases.cancel(id, { name: 'dev@example.com', role: 'deployer' });
    await expect(t.stages.prepare({ releaseId: id, app: 'shop' })).rejects.toBeInstanceOf(ReleaseEndedError);
  });
});

describe('the artifact\'s containment, checked once on the server', () => {
  async function openedWith(bytes: Buffer | undefined, sha256 = createHash('sha256').update(bytes ?? '').digest('hex')) {
    const t = createTestSlipway();
    await t.appWithArtifact(shop, sha256);
    if (bytes) t.objects.store(artifactKey('shop', sha256), sha256, bytes.length, bytes);
    const { id } = await t.open('shop', '1.0.0', sha256);
    return { t, id };
  }

  it('refuses an artifact with a link out of the release before any host is touched, naming the member and the fix', async () => {
    const { t, id } = await openedWith(tarball([
      { name: 'index.html', type: 'file', content: 'x' },
      { name: 'conf', type: 'symlink', target: '/etc' },
    ]));
    const refused = t.stages.prepare({ releaseId: id, app: 'shop' });
    await expect(refused).rejects.toBeInstanceOf(UnsafeArtifactError);
    await expect(refused).rejects.toThrow(/member 'conf' is a symbolic link to '\/etc' and its target is an absolute path.*Rebuild it/);
    expect(await t.store.getPlan(id)).toBeUndefined();
    expect(t.fleet.last('distribute')).toBeUndefined();
  });

  it('reads an artifact its store keeps no checksum of once: the open hashes it, and Prepare lists what the open read', async () => {
    const bytes = tarball([{ name: 'index.html', type: 'file', content: 'x' }]);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const t = createTestSlipway();
    await t.appWithArtifact(shop, sha256);
    t.objects.store(artifactKey('shop', sha256), sha256, bytes.length, bytes);
    let reads = 0;
    const read = t.objects.read.bind(t.objects);
    t.objects.read = (key) => {
      reads += 1;
      return read(key);
    };
    const { id } = await t.open('shop', '1.0.0', sha256);
    expect(reads).toBe(1);
    expect((await t.objects.getManifest(artifactKey('shop', sha256)))?.files.map((file) => file.path)).toEqual(['index.html']);
    await t.stages.prepare({ releaseId: id, app: 'shop' });
    expect(reads).toBe(1);
    expect((await t.store.getPlan(id))?.artifactChecked).toBe(sha256);
  });

  it('tells hosts to skip their own listing of an artifact it read whole, and not of one it could not read', async () => {
    const good = await openedWith(tarball([{ name: 'index.html', type: 'file', content: 'x' }, { name: 'latest', type: 'symlink', target: 'index.html' }]));
    // The store holds no bytes for this one: nothing was read, so nothing is vouched for.
    const unread = await openedWith(undefined, 'b'.repeat(64));
    for (const [{ t, id }, checked] of [[good, true], [unread, false]] as const) {
      await t.stages.prepare({ releaseId: id, app: 'shop' });
      await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'staging' });
      await t.stages.distribute({ taskToken: 'distribute', releaseId: id, environment: 'staging' });
      const script = t.fleet.last('distribute')?.script;
      expect(script?.kind === 'distribute' && script.artifactChecked).toBe(checked);
    }
  });
});

describe('EnterEnvironment', () => {
  it('takes the lock for the longest step, marks the environment and the release distributing, and lets the task in', async () => {
    const { t, id } = await prepared();
    t.clock.advance(HOUR);
    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'staging' });
    expect(t.workflow.outcomeOf('enter')).toEqual({ token: 'enter', kind: 'success', output: { batches: [0] } });
    expect(await t.store.getLock('shop', 'staging')).toMatchObject({ holder: id, leaseUntil: '2026-01-01T07:00:00.000Z' });
    expect((await t.store.getEnvironmentStates(id)).find((e) => e.environment === 'staging')).toMatchObject({
      status: 'distributing',
      startedAt: '2026-01-01T01:00:00.000Z',
    });
    expect(await t.store.getRelease(id)).toMatchObject({ status: 'distributing' });
    expect((await t.store.getHostStates(id)).map((h) => [h.host, h.status])).toEqual([['i-0a1b2c3d4e5f60718', 'pending']]);
    // Entered again (a retry): let in again, nothing recorded twice.
    await t.stages.enterEnvironment({ taskToken: 'enter-again', releaseId: id, environment: 'staging' });
    expect(t.workflow.outcomeOf('enter-again')?.kind).toBe('success');
    expect((await eventTypes(t, id)).filter((type) => type === 'environment.entered')).toHaveLength(1);
  });

  it('leases a gated environment for the approval timeout on top', async () => {
    const { t, id } = await prepared(gated);
    await through(t, id, 'staging');
    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'production' });
    expect((await t.store.getLock('shop', 'production'))?.leaseUntil).toBe('2026-01-04T06:00:00.000Z');
  });

  it('fails the release for a held environment of an app that does not queue, until the holder\'s lease ran out', async () => {
    const { t, id } = await prepared();
    const lock = { app: 'shop', environment: 'production', holder: 'crashed', acquiredAt: '2026-01-01T00:00:00.000Z', leaseUntil: '2026-01-01T06:00:00.000Z' };
    await t.store.acquireLock(lock, lock.acquiredAt);
    await through(t, id, 'staging');
    const refused = t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'production' });
    await expect(refused).rejects.toBeInstanceOf(EnvironmentLockedError);
    t.clock.set('2026-01-01T06:00:00.001Z');
    await t.stages.enterEnvironment({ taskToken: 'enter-later', releaseId: id, environment: 'production' });
    expect((await t.store.getLock('shop', 'production'))?.holder).toBe(id);
  });
});

describe('the line (queue: true)', () => {
  async function threeInLine() {
    const t = createTestSlipway();
    await t.appWithArtifact(queued);
    const ids: string[] = [];
    for (const version of ['1.0.0', '1.0.1', '1.0.2']) {
      const { id } = await t.open('shop', version);
      await t.stages.prepare({ releaseId: id, app: 'shop' });
      await t.stages.enterEnvironment({ taskToken: `enter-${version}`, releaseId: id, environment: 'staging' });
      ids.push(id);
    }
    return { t, ids: ids as [string, string, string] };
  }

  it('lets the first in and parks the others in order, each recording its place once', async () => {
    const { t, ids } = await threeInLine();
    expect(t.workflow.outcomeOf('enter-1.0.0')?.kind).toBe('success');
    expect(t.workflow.outcomeOf('enter-1.0.1')).toBeUndefined();
    expect((await t.store.listQueue('shop', 'staging')).map((w) => w.releaseId)).toEqual([ids[1], ids[2]]);
    const queuedEvent = (await t.store.listEvents(ids[2])).find((e) => e.type === 'environment.queued');
    expect(queuedEvent?.data).toEqual({ environment: 'staging', position: 2, holder: ids[0] });
    // A retried task in line takes the new token and keeps its place.
    await t.stages.enterEnvironment({ taskToken: 'enter-1.0.2-retry', releaseId: ids[2], environment: 'staging' });
    expect((await t.store.listQueue('shop', 'staging')).map((w) => [w.releaseId, w.taskToken])).toEqual([
      [ids[1], 'enter-1.0.1'],
      [ids[2], 'enter-1.0.2-retry'],
    ]);
  });

  it('hands the environment to the next in line when the holder completes', async () => {
    const { t, ids } = await threeInLine();
    await t.stages.distribute({ taskToken: 'd', releaseId: ids[0], environment: 'staging' });
    await t.finish('distribute');
    await t.stages.switchBatch({ taskToken: 's', releaseId: ids[0], environment: 'staging', batchIndex: 0 });
    await t.finish('switch');
    await t.stages.completeEnvironment({ releaseId: ids[0], environment: 'staging' });
    expect(t.workflow.outcomeOf('enter-1.0.1')).toEqual({ token: 'enter-1.0.1', kind: 'success', output: { batches: [0] } });
    expect(t.workflow.outcomeOf('enter-1.0.2')).toBeUndefined();
    expect((await t.store.getLock('shop', 'staging'))?.holder).toBe(ids[1]);
    expect((await t.store.listQueue('shop', 'staging')).map((w) => w.releaseId)).toEqual([ids[2]]);
  });

  it('tells a release cancelled while it waited that it ended, and lets the one after it in', async () => {
    const { t, ids } = await threeInLine();
    await t.slipway.releases.cancel(ids[1], { name: 'dev@example.com', role: 'deployer' });
    await t.stages.failEnvironment({ releaseId: ids[0], environment: 'staging', failure: { Error: 'HostCommandFailedError', Cause: 'broke' } });
    expect(t.workflow.outcomeOf('enter-1.0.1')).toMatchObject({ kind: 'failure', error: 'ReleaseEndedError' });
    expect(t.workflow.outcomeOf('enter-1.0.2')?.kind).toBe('success');
  });

  it('the sweep wakes a line whose holder crashed, once its lease ran out', async () => {
    const { t, ids } = await threeInLine();
    expect(await t.stages.wakeQueues()).toBe(0);
    expect(t.workflow.outcomeOf('enter-1.0.1')).toBeUndefined();
    t.clock.advance(6 * HOUR + 1);
    expect(await t.stages.wakeQueues()).toBe(1);
    expect(t.workflow.outcomeOf('enter-1.0.1')?.kind).toBe('success');
    expect((await t.store.getLock('shop', 'staging'))?.holder).toBe(ids[1]);
  });

  it('lets a waiter in once when its resumed task, the sweep and the freed lock\'s wake-up all run at the same moment', async () => {
    const { t, ids } = await threeInLine();
    t.clock.advance(6 * HOUR + 1);
    await Promise.all([
      t.stages.wakeQueues(),
      t.stages.enterEnvironment({ taskToken: 'enter-1.0.1-resumed', releaseId: ids[1], environment: 'staging' }),
      t.stages.wakeQueues(),
    ]);
    expect((await eventTypes(t, ids[1])).filter((type) => type === 'environment.entered')).toHaveLength(1);
    expect((await t.store.getLock('shop', 'staging'))?.holder).toBe(ids[1]);
    expect((await eventTypes(t, ids[2])).filter((type) => type === 'environment.entered')).toHaveLength(0);
  });
});

describe('host commands', () => {
  it('distributes once: a retried task takes over the running command, a late one gets the outcome at once', async () => {
    const { t, id } = await prepared();
    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'staging' });
    await t.stages.distribute({ taskToken: 'first', releaseId: id, environment: 'staging' });
    const command = t.fleet.last('distribute')!;
    expect(command).toMatchObject({ hosts: ['i-0a1b2c3d4e5f60718'], timeoutSeconds: 1800 });
    expect(command.script).toMatchObject({ artifactUrl: `memory://download/artifacts/shop/${'a'.repeat(64)}.tar.gz?expires=300`, sha256: 'a'.repeat(64) });
    await t.stages.distribute({ taskToken: 'second', releaseId: id, environment: 'staging' });
    expect(t.fleet.commands.size).toBe(1);
    await t.finish('distribute');
    await t.finish('distribute');
    expect(t.workflow.outcomeOf('second')).toEqual({ token: 'second', kind: 'success', output: { hosts: 1 } });
    expect(t.workflow.outcomeOf('first')).toBeUndefined();
    expect((await eventTypes(t, id)).filter((type) => type.startsWith('distribute.'))).toEqual(['distribute.started', 'distribute.succeeded']);
    expect((await t.store.getHostStates(id))[0]).toMatchObject({ status: 'distributed', steps: { distribute: { exitCode: 0 } } });
    await t.stages.distribute({ taskToken: 'late', releaseId: id, environment: 'staging' });
    expect(t.workflow.outcomeOf('late')?.kind).toBe('success');
    expect(t.fleet.commands.size).toBe(1);
  });

  it('waits for every host: a command still running on one settles nothing', async () => {
    const { t, id } = await prepared();
    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'production' });
    await t.stages.distribute({ taskToken: 'd', releaseId: id, environment: 'production' });
    t.fleet.outcome = (_command, host) => (host === 'i-web-3' ? 'running' : 'success');
    await t.finish('distribute');
    expect(t.workflow.outcomeOf('d')).toBeUndefined();
    expect((await t.store.getStep(id, 'distribute#production'))?.state).toBe('running');
  });

  it('the reconciling sweep asks for a command older than a minute and keeps younger ones alive', async () => {
    const { t, id } = await prepared();
    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'staging' });
    await t.stages.distribute({ taskToken: 'd', releaseId: id, environment: 'staging' });
    t.clock.advance(59_000);
    expect(await t.stages.reconcileCommands()).toBe(0);
    expect(t.workflow.heartbeats).toEqual(['d']);
    expect(t.workflow.outcomeOf('d')).toBeUndefined();
    t.clock.advance(1_000);
    expect(await t.stages.reconcileCommands()).toBe(1);
    expect(t.workflow.outcomeOf('d')?.kind).toBe('success');
    expect(await t.store.listRunningCommandSteps(10)).toEqual([]);
  });
});

describe('a finished command\'s host outcomes', () => {
  const hosts = Array.from({ length: 300 }, (_, i) => `i-${String(i).padStart(17, '0')}`);
  const wide = AppConfig.parse({ ...shopConfigInput, environments: [{ ...stagingInput, targets: { hosts } }] });

  it('are written a slice of hosts per store call, not two calls a host', async () => {
    const calls: number[] = [];
    const t = createTestSlipway({
      storeSeenBy: (store) => ({
        ...store,
        recordHostOutcomes: (...args) => {
          calls.push(args[3].length);
          return store.recordHostOutcomes(...args);
        },
      }),
    });
    const { id } = await opened(wide, t);
    await t.stages.prepare({ releaseId: id, app: 'shop' });
    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'staging' });
    await t.stages.distribute({ taskToken: 'd', releaseId: id, environment: 'staging' });
    await t.finish('distribute');
    expect(calls).toEqual([250, 50]);
    expect(t.workflow.outcomeOf('d')).toEqual({ token: 'd', kind: 'success', output: { hosts: 300 } });
    expect((await t.store.getHostStates(id)).filter((h) => h.status === 'distributed' && h.steps.distribute)).toHaveLength(300);
  });

  it('a store failure part-way settles nothing; the status callback again writes every host and settles once', async () => {
    let failNext = false;
    let writes = 0;
    const t = createTestSlipway({
      storeSeenBy: (store) => ({
        ...store,
        recordHostOutcomes: (...args) => {
          writes += 1;
          if (failNext && writes === 2) return Promise.reject(new Error('the table is away'));
          return store.recordHostOutcomes(...args);
        },
      }),
    });
    const { id } = await opened(wide, t);
    await t.stages.prepare({ releaseId: id, app: 'shop' });
    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'staging' });
    await t.stages.distribute({ taskToken: 'd', releaseId: id, environment: 'staging' });
    failNext = true;
    await expect(t.finish('distribute')).rejects.toThrow('the table is away');
    // The first slice is written, the second not: the step still runs and nobody was told.
    expect((await t.store.getHostStates(id)).filter((h) => h.status === 'distributed')).toHaveLength(250);
    expect((await t.store.getStep(id, 'distribute#staging'))?.state).toBe('running');
    expect(t.workflow.outcomeOf('d')).toBeUndefined();
    failNext = false;
    await t.finish('distribute');
    expect((await t.store.getHostStates(id)).filter((h) => h.status === 'distributed' && h.steps.distribute)).toHaveLength(300);
    expect(t.workflow.outcomeOf('d')?.kind).toBe('success');
    expect((await eventTypes(t, id)).filter((type) => type.startsWith('distribute.'))).toEqual(['distribute.started', 'distribute.succeeded']);
  });
});

describe('switching batch by batch', () => {
  it('switches every batch, bakes between them, and completes: live, retained, succeeded, lock freed', async () => {
    const { t, id } = await prepared();
    await through(t, id, 'staging');
    // Completing an environment again (a retry) records nothing twice.
    await t.stages.completeEnvironment({ releaseId: id, environment: 'staging' });
    await through(t, id, 'production');
    expect(t.fleet.sends.filter((c) => c.script.kind === 'switch').map((c) => c.hosts)).toEqual([
      ['i-0a1b2c3d4e5f60718'],
      ['i-web-1'],
      ['i-web-2'],
      ['i-web-3'],
      ['i-web-4'],
    ]);
    expect(await t.store.getRelease(id)).toMatchObject({ status: 'succeeded' });
    expect(await t.store.getEnvironmentLive('shop', 'production')).toEqual({
      app: 'shop',
      environment: 'production',
      liveRelease: { id, version: '1.0.0', since: '2026-01-01T00:00:00.000Z' },
      retained: [{ id, version: '1.0.0' }],
    });
    expect(await t.store.getLock('shop', 'production')).toBeUndefined();
    expect((await t.store.getHostStates(id)).map((h) => h.status)).toEqual(['healthy', 'healthy', 'healthy', 'healthy', 'healthy']);
    expect((await eventTypes(t, id)).filter((type) => type === 'environment.live' || type === 'release.succeeded')).toEqual([
      'environment.live',
      'environment.live',
      'release.succeeded',
    ]);
  });

  it('completes the last environment again (a Lambda retry after the release succeeded) without an error, changing nothing', async () => {
    const { t, id } = await prepared();
    await through(t, id, 'staging');
    await through(t, id, 'production');
    const events = await eventTypes(t, id);
    // Throwing here would send the workflow down its failure path and put back a release that is live.
    await expect(t.stages.completeEnvironment({ releaseId: id, environment: 'production' })).resolves.toEqual({});
    expect(await eventTypes(t, id)).toEqual(events);
    expect(await t.store.getRelease(id)).toMatchObject({ status: 'succeeded' });
    // A release that ended otherwise still stops the stage.
    const other = await opened(shop, t);
    await t.stages.prepare({ releaseId: other.id, app: 'shop' });
    await t.slipway.releases.cancel(other.id, { name: 'dev@example.com', role: 'deployer' });
    await expect(t.stages.completeEnvironment({ releaseId: other.id, environment: 'staging' })).rejects.toBeInstanceOf(ReleaseEndedError);
  });

  it('keeps the release live before for rollback, and at most keepReleases', async () => {
    const t = createTestSlipway();
    const config = AppConfig.parse({ ...shopConfigInput, keepReleases: 2, environments: [stagingInput] });
    const ids: string[] = [];
    for (let n = 0; n < 3; n++) {
      const { id } = await opened(config, t);
      await t.stages.prepare({ releaseId: id, app: 'shop' });
      await through(t, id, 'staging');
      ids.push(id);
    }
    const live = await t.store.getEnvironmentLive('shop', 'staging');
    expect(live?.liveRelease?.id).toBe(ids[2]);
    expect(live?.previousRelease?.id).toBe(ids[1]);
    expect(live?.retained.map((r) => r.id)).toEqual([ids[2], ids[1]]);
  });

  it('bakes once: a resumed Watch keeps the bake\'s end, and says go on once it passed', async () => {
    const { t, id } = await prepared();
    const first = await t.stages.watch({ releaseId: id, environment: 'production', batchIndex: 0 });
    expect(first).toEqual({ next: 'wait', until: '2026-01-01T00:01:00.000Z' });
    t.clock.advance(30_000);
    expect(await t.stages.watch({ releaseId: id, environment: 'production', batchIndex: 0 })).toEqual(first);
    t.clock.advance(HOUR);
    expect((await t.stages.watch({ releaseId: id, environment: 'production', batchIndex: 0 })).next).toBe('done');
  });

  it('a failure in the middle batch fails its task, and the switched batches are put back newest first', async () => {
    const { t, id } = await prepared();
    await through(t, id, 'staging');
    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'production' });
    await t.stages.distribute({ taskToken: 'd', releaseId: id, environment: 'production' });
    await t.finish('distribute');
    await t.stages.switchBatch({ taskToken: 'switch-0', releaseId: id, environment: 'production', batchIndex: 0 });
    await t.finish('switch');
    t.fleet.outcome = (command, host) => (command.script.kind === 'switch' && host === 'i-web-2' ? 'failed' : 'success');
    await t.stages.switchBatch({ taskToken: 'switch-1', releaseId: id, environment: 'production', batchIndex: 1 });
    await t.finish('switch');
    const failure = t.workflow.outcomeOf('switch-1');
    expect(failure).toEqual({
      token: 'switch-1',
      kind: 'failure',
      error: 'HostCommandFailedError',
      cause: 'switch of batch 2 in production failed on i-web-2 exited 1: switch broke on i-web-2',
    });

    const caught = { Error: 'HostCommandFailedError', Cause: failure?.kind === 'failure' ? failure.cause : '' };
    expect(await t.stages.planRevert({ releaseId: id, environment: 'production', failure: caught })).toEqual({ batches: [1, 0] });
    for (const batchIndex of [1, 0]) {
      await t.stages.revertBatch({ taskToken: `revert-${batchIndex}`, releaseId: id, environment: 'production', batchIndex });
      await t.finish('revert');
    }
    expect(t.fleet.sends.filter((c) => c.script.kind === 'revert').map((c) => c.hosts)).toEqual([['i-web-2'], ['i-web-1']]);
    expect(t.workflow.outcomeOf('revert-0')?.kind).toBe('success');
    await t.stages.failEnvironment({ releaseId: id, environment: 'production', failure: caught });

    expect(await t.store.getRelease(id)).toMatchObject({ status: 'failed', reason: caught.Cause });
    expect((await t.store.getEnvironmentStates(id)).find((e) => e.environment === 'production')).toMatchObject({ status: 'failed', failure: caught.Cause });
    expect((await t.store.getHostStates(id)).filter((h) => h.environment === 'production').map((h) => [h.host, h.status])).toEqual([
      ['i-web-1', 'reverted'],
      ['i-web-2', 'reverted'],
      ['i-web-3', 'distributed'],
      ['i-web-4', 'distributed'],
    ]);
    expect(await t.store.getLock('shop', 'production')).toBeUndefined();
    expect(t.mailer.sent.map((m) => [m.to, m.subject])).toEqual([[['dev@example.com'], '[Slipway] shop 1.0.0 failed']]);
    expect(t.mailer.sent[0]?.text).toContain(`Reason: ${caught.Cause}`);
    // Nothing of the failed batch's successors was switched.
    expect(t.fleet.sends.filter((c) => c.script.kind === 'switch' && c.hosts.includes('i-web-3'))).toEqual([]);
  });

  it('a failure landing between a stage\'s read and its write is not overwritten: the environment never moves back', async () => {
    const { t, id } = await prepared();
    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'staging' });
    const put = t.store.putEnvironmentState.bind(t.store);
    let raced = false;
    t.store.putEnvironmentState = async (state, expectedStatus) => {
      if (state.status === 'switching' && !raced) {
        raced = true;
        // failEnvironment of a racing execution path lands first.
        await put({ ...state, status: 'failed', endedAt: t.clock.now().toISOString() });
      }
      return put(state, expectedStatus);
    };
    await t.stages.switchBatch({ taskToken: 's', releaseId: id, environment: 'staging', batchIndex: 0 });
    expect(raced).toBe(true);
    expect((await t.store.getEnvironmentStates(id)).find((e) => e.environment === 'staging')?.status).toBe('failed');
  });

  it('never switches a host for a release that ended', async () => {
    const { t, id } = await prepared();
    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'staging' });
    await t.slipway.releases.cancel(id, { name: 'dev@example.com', role: 'deployer' });
    await expect(t.stages.switchBatch({ taskToken: 's', releaseId: id, environment: 'staging', batchIndex: 0 })).rejects.toBeInstanceOf(ReleaseEndedError);
    expect(t.fleet.sends.filter((c) => c.script.kind === 'switch')).toEqual([]);
  });
});

describe('timeouts and failures', () => {
  it('a gate the workflow gave up on ends the release as "approval timed out" and closes the gate', async () => {
    const { t, id } = await prepared(gated);
    await through(t, id, 'staging');
    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'production' });
    await t.stages.awaitApproval({ taskToken: 'gate', releaseId: id, environment: 'production' });
    t.clock.advance(72 * HOUR);
    await t.stages.failEnvironment({ releaseId: id, environment: 'production', failure: { Error: 'States.Timeout' } });
    expect(await t.store.getRelease(id)).toMatchObject({ status: 'failed', reason: 'approval timed out' });
    expect(await t.approvalStore.getRequest(id, 'production')).toMatchObject({ status: 'timed_out' });
    expect(await t.store.getLock('shop', 'production')).toBeUndefined();
  });

  it('a rejected gate ends the release as rejected', async () => {
    const { t, id } = await prepared(gated);
    await through(t, id, 'staging');
    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'production' });
    await t.stages.awaitApproval({ taskToken: 'gate', releaseId: id, environment: 'production' });
    await t.stages.failEnvironment({ releaseId: id, environment: 'production', failure: { Error: 'ApprovalRejectedError', Cause: 'rejected by lead@example.com' } });
    expect(await t.store.getRelease(id)).toMatchObject({ status: 'rejected', reason: 'rejected by lead@example.com' });
  });

  it('a task that timed out reads as such, and the execution\'s last word frees every lock', async () => {
    const { t, id } = await prepared();
    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'staging' });
    await t.stages.recordFailure({ releaseId: id, failure: { Error: 'States.Timeout', Cause: 'Distribute ran longer than its TimeoutSeconds (1900)' } });
    expect(await t.store.getRelease(id)).toMatchObject({ status: 'failed', reason: 'timed out: Distribute ran longer than its TimeoutSeconds (1900)' });
    expect(await t.store.getLock('shop', 'staging')).toBeUndefined();
    await t.stages.recordFailure({ releaseId: id });
    expect((await eventTypes(t, id)).filter((type) => type === 'release.failed')).toHaveLength(1);
    expect(t.mailer.sent).toHaveLength(1);
  });

  it('a failure that raced a cancel is recorded and told, and the release stays cancelled', async () => {
    const { t, id } = await prepared();
    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'staging' });
    await t.slipway.releases.cancel(id, { name: 'ops@example.com', role: 'deployer' });
    await t.stages.failEnvironment({ releaseId: id, environment: 'staging', failure: { Error: 'HostCommandFailedError', Cause: 'h1 exited 2' } });
    expect(await t.store.getRelease(id)).toMatchObject({ status: 'cancelled', reason: 'cancelled by ops@example.com' });
    expect(await eventTypes(t, id)).toContain('release.failed_while_cancelled');
    expect(t.mailer.sent.map((m) => m.subject)).toEqual(['[Slipway] shop 1.0.0 failed']);
  });
});

describe('the outcome mail', () => {
  it('goes once; one that cannot go is tried again from its retry time on, and the release stays as it ended', async () => {
    const { t, id } = await prepared();
    await through(t, id, 'staging');
    await through(t, id, 'production');
    t.mailer.refuse = new Error('MessageRejected: Email address is not verified');
    await t.stages.finalize({ releaseId: id });
    expect(await t.store.getRelease(id)).toMatchObject({ status: 'succeeded' });
    expect((await t.store.listEvents(id)).find((e) => e.type === 'notification.mail_failed')?.data).toMatchObject({
      to: 'dev@example.com',
      attempt: 1,
      retryAt: '2026-01-01T00:00:05.000Z',
    });
    t.mailer.refuse = undefined;
    await t.stages.finalize({ releaseId: id });
    expect(t.mailer.sent).toEqual([]);
    t.clock.advance(5_000);
    await t.stages.finalize({ releaseId: id });
    await t.stages.finalize({ releaseId: id });
    expect(t.mailer.sent.map((m) => m.subject)).toEqual(['[Slipway] shop 1.0.0 succeeded']);
  });

  it('posts the outcome to the app\'s webhook once', async () => {
    const { t, id } = await prepared(AppConfig.parse({ ...shopConfigInput, webhookUrl: 'https://chat.example.com/hook', environments: [stagingInput] }));
    await through(t, id, 'staging');
    await t.stages.finalize({ releaseId: id });
    await t.stages.finalize({ releaseId: id });
    expect(t.notifier.posts.map((p) => [p.url, p.payload.event])).toEqual([['https://chat.example.com/hook', 'release.succeeded']]);
    expect(await eventTypes(t, id)).toContain('notification.webhook');
  });
});
