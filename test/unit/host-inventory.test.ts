import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  AppConfig,
  createHostInventory,
  createHostOutcomeRecorder,
  type Fleet,
  type HostCommand,
  type HostInvocation,
  hostView,
  parseScanOutput,
  renderHostScript,
  type Release,
  silentLogger,
  type StepRecord,
} from '@slipway/core';
import { afterAll, describe, expect, it } from 'vitest';
import { createManualClock, createSequentialIds } from '../../packages/core/src/testing/fakes.ts';
import { createMemoryReleaseStore } from '../../packages/core/src/testing/memory-release-store.ts';

/** Drift on fakes: the rule, the scan (with a fleet that answers as told), and what switches and reverts record. */

const run = promisify(execFile);
const R1 = '01aaaaaaaaaaaaaaaaaaaaaaa1';
const R2 = '01aaaaaaaaaaaaaaaaaaaaaaa2';
const config = AppConfig.parse({
  name: 'shop',
  deployRoot: '/srv/shop',
  environments: [{ name: 'production', targets: { hosts: ['web-1', 'web-2', 'web-3', 'web-4'] } }],
});
const admin = { name: 'ops@example.com', role: 'deployer' as const };

function releaseRecord(id: string, version: string, rollback?: Release['rollback']): Release {
  return {
    id,
    app: 'shop',
    version,
    artifact: { key: 'k', sha256: 'a'.repeat(64), size: 1 },
    description: '',
    status: 'succeeded',
    openedBy: 'dev',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    config,
    ...(rollback ? { rollback } : {}),
  };
}

async function world() {
  const store = createMemoryReleaseStore();
  const clock = createManualClock();
  await store.putApp(config, 'admin', clock.now().toISOString());
  await store.createRelease(releaseRecord(R1, '1.0'), []);
  await store.createRelease(releaseRecord(R2, '2.0'), []);
  await store.putEnvironmentLive({ app: 'shop', environment: 'production', liveRelease: { id: R2, version: '2.0', since: 'x' }, retained: [] });
  return { store, clock };
}

/** A fleet whose hosts answer the scan as `answers` says; a host left out never answers. */
function scanFleet(answers: Record<string, Partial<HostInvocation>>, unreachable: { host: string; reason: string }[] = []) {
  const sent: HostCommand[] = [];
  const fleet: Fleet = {
    async resolveTargets(targets) {
      const hosts = 'hosts' in targets ? targets.hosts : [];
      return { hosts: hosts.filter((h) => !unreachable.some((u) => u.host === h)), unreachable };
    },
    async send(command) {
      sent.push(command);
    },
    async results() {
      const hosts = sent[0]!.hosts;
      const invocations = hosts
        .filter((host) => answers[host])
        .map((host) => ({ host, status: 'success' as const, exitCode: 0, stdout: '', stderr: '', startedAt: 'x', endedAt: 'y', ...answers[host] }));
      return { finished: invocations.length === hosts.length, invocations };
    },
  };
  return { fleet, sent };
}

describe('the drift rule', () => {
  it('drifts when not on the live release, or when the host did not answer', () => {
    const record = (current: string | null, unreachable?: string) => ({
      app: 'shop',
      environment: 'production',
      host: 'web-1',
      current: current ? { releaseId: current, version: 'v' } : null,
      retained: [],
      checkedAt: 't',
      source: 'scan' as const,
      ...(unreachable ? { unreachable } : {}),
    });
    expect(hostView('web-1', record(R2), R2).drift).toBe(false);
    expect(hostView('web-1', record(R1), R2).drift).toBe(true);
    expect(hostView('web-1', record(null), R2).drift).toBe(true);
    expect(hostView('web-1', record(R2, 'no answer'), R2).drift).toBe(true);
    // Nothing live and nothing there: in step.
    expect(hostView('web-1', record(null), null).drift).toBe(false);
    expect(hostView('web-1', undefined, null)).toMatchObject({ drift: false, current: null, checkedAt: null, source: null });
    expect(hostView('web-1', undefined, R2).drift).toBe(true);
  });
});

describe('a scan', () => {
  it('sends the read-only scan script and records each host: on the live release, flipped by hand, without current, failed, unreachable, silent', async () => {
    const { store, clock } = await world();
    const { fleet, sent } = scanFleet(
      {
        'web-1': { stdout: `current\treleases/${R2}\nrelease\t${R2}\nrelease\t${R1}\n` },
        'web-2': { stdout: `current\treleases/${R1}\nrelease\t${R2}\nrelease\t${R1}\n` },
        'web-3': { status: 'failed', exitCode: 1, stderr: 'permission denied\n' },
      },
      [{ host: 'web-4', reason: 'SSM PingStatus ConnectionLost' }],
    );
    const inventory = createHostInventory({ store, apps: { requireApp: async () => (await store.getApp('shop'))! }, fleet, clock, ids: createSequentialIds(), logger: silentLogger });
    const result = await inventory.scan('shop', 'production', admin);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ hosts: ['web-1', 'web-2', 'web-3'], script: { kind: 'scan', deployRoot: '/srv/shop' } });
    const byHost = Object.fromEntries(result.hosts.map((h) => [h.host, h]));
    expect(byHost['web-1']).toMatchObject({ current: { releaseId: R2, version: '2.0' }, expected: R2, drift: false, retained: [R2, R1] });
    expect(byHost['web-2']).toMatchObject({ current: { releaseId: R1, version: '1.0' }, drift: true });
    expect(byHost['web-3']).toMatchObject({ drift: true, unreachable: 'the scan failed (exit 1): permission denied' });
    expect(byHost['web-4']).toMatchObject({ drift: true, unreachable: 'SSM PingStatus ConnectionLost' });
    expect(result).toMatchObject({ scanned: 4, unreachable: 2 });
    // Recorded: the list answers the same without a scan.
    expect(await inventory.list('shop', 'production')).toEqual(result.hosts);
  });

  it('gives up on a host that does not answer within the wait, keeping what it last ran', async () => {
    const { store, clock } = await world();
    await store.putHostRecords([{ app: 'shop', environment: 'production', host: 'web-2', current: { releaseId: R2, version: '2.0' }, retained: [R2], checkedAt: 'before', source: 'switch' }]);
    const { fleet } = scanFleet({ 'web-1': { stdout: `current\treleases/${R2}\n` }, 'web-3': { stdout: '' }, 'web-4': { stdout: '' } });
    let waited = 0;
    const inventory = createHostInventory({
      store,
      apps: { requireApp: async () => (await store.getApp('shop'))! },
      fleet,
      clock,
      ids: createSequentialIds(),
      logger: silentLogger,
      sleep: async (ms) => {
        waited += ms;
        clock.advance(ms);
      },
    });
    const result = await inventory.scan('shop', 'production', admin);
    expect(waited).toBeGreaterThanOrEqual(25_000);
    expect(result.hosts.find((h) => h.host === 'web-2')).toMatchObject({
      current: { releaseId: R2 },
      retained: [R2],
      drift: true,
      unreachable: 'no answer to the scan within 25 s',
    });
    // No current link at all: a host with nothing live drifts from the live release.
    expect(result.hosts.find((h) => h.host === 'web-3')).toMatchObject({ current: null, drift: true });
  });

  it('refuses an environment the app does not have', async () => {
    const { store, clock } = await world();
    const inventory = createHostInventory({ store, apps: { requireApp: async () => (await store.getApp('shop'))! }, clock, ids: createSequentialIds(), logger: silentLogger });
    await expect(inventory.list('shop', 'staging')).rejects.toThrow('app shop has no environment staging');
  });
});

describe('switch and revert outcomes', () => {
  const step = (kind: StepRecord['kind'], releaseId: string): StepRecord => ({
    releaseId,
    key: `${kind}#production#0`,
    kind,
    environment: 'production',
    hosts: ['web-1', 'web-2'],
    commandId: 'c',
    state: 'running',
    createdAt: 't',
    updatedAt: 't',
  });
  const invocation = (host: string, status: HostInvocation['status']): HostInvocation => ({
    host, status, exitCode: status === 'success' ? 0 : 1, stdout: '', stderr: '', startedAt: 't', endedAt: 't',
  });

  it('records a switched host on the release it switched to, and leaves a failed one as last known', async () => {
    const { store, clock } = await world();
    const record = createHostOutcomeRecorder({ store, clock });
    await record(step('switch', R1), [invocation('web-1', 'success'), invocation('web-2', 'success')]);
    await record(step('switch', R2), [invocation('web-1', 'success'), invocation('web-2', 'failed')]);
    const records = await store.listHostRecords('shop', 'production');
    expect(records.map((r) => [r.host, r.current?.releaseId, r.retained, r.source])).toEqual([
      ['web-1', R2, [R2, R1], 'switch'],
      ['web-2', R1, [R1], 'switch'],
    ]);
  });

  it('records a rollback\'s hosts on its target, and a reverted host back on what is live', async () => {
    const { store, clock } = await world();
    const ROLLBACK = '01aaaaaaaaaaaaaaaaaaaaaaa3';
    await store.createRelease(releaseRecord(ROLLBACK, '1.0', { environment: 'production', target: R1, from: { id: R2, version: '2.0' } }), []);
    const record = createHostOutcomeRecorder({ store, clock });
    await record(step('switch', ROLLBACK), [invocation('web-1', 'success'), invocation('web-2', 'success')]);
    expect((await store.listHostRecords('shop', 'production')).map((r) => r.current)).toEqual([
      { releaseId: R1, version: '1.0' },
      { releaseId: R1, version: '1.0' },
    ]);
    await record(step('revert', ROLLBACK), [invocation('web-2', 'success')]);
    const records = await store.listHostRecords('shop', 'production');
    expect(records.map((r) => [r.host, r.current?.releaseId, r.source])).toEqual([['web-1', R1, 'switch'], ['web-2', R2, 'revert']]);
    // Distribute and prune say nothing of where current points.
    await record(step('distribute', R1), [invocation('web-1', 'success')]);
    expect((await store.listHostRecords('shop', 'production'))[0]!.source).toBe('switch');
  });
});

describe('the scan script', () => {
  const roots: string[] = [];
  afterAll(async () => Promise.all(roots.map((root) => rm(root, { recursive: true, force: true }))));

  it('reads current and the release folders of a hostile deploy root, and writes nothing', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'slipway-scan-'));
    roots.push(parent);
    const root = join(parent, 'it\'s $(touch pwned); a "root"');
    await mkdir(join(root, 'releases', R1), { recursive: true });
    await mkdir(join(root, 'releases', R2));
    await mkdir(join(root, 'releases', `.${R2}.partial`));
    await mkdir(join(root, 'releases', 'odd\nname'));
    await symlink(`releases/${R1}`, join(root, 'current'));
    const { stdout } = await run('bash', ['-c', renderHostScript({ kind: 'scan', deployRoot: root })]);
    expect(parseScanOutput(stdout)).toEqual({ currentReleaseId: R1, releases: [R2, R1] });
    expect((await readdir(root)).sort()).toEqual(['current', 'releases']);

    const empty = join(root, 'never-deployed');
    await mkdir(empty);
    const answer = await run('bash', ['-c', renderHostScript({ kind: 'scan', deployRoot: empty })]);
    expect(parseScanOutput(answer.stdout)).toEqual({ currentReleaseId: null, releases: [] });
    expect(await readdir(empty)).toEqual([]);
  });

  it('tells a current that points outside releases/ from one that points to a release', () => {
    expect(parseScanOutput('current\t/opt/elsewhere\n')).toEqual({ currentReleaseId: null, currentOther: '/opt/elsewhere', releases: [] });
    expect(parseScanOutput(`current\t./releases/${R1}/\n`).currentReleaseId).toBe(R1);
  });
});
