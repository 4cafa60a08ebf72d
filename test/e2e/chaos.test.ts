import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChildServer, startChildServer } from '../support/child-server.ts';
import { scenario } from '../support/scenario.ts';
import { temporaryDirectory } from '../support/stand-ins.ts';

/**
 * kill -9 of the server at each state of the release and rollback machines, then a restart on the
 * same data. Whatever the state, the run ends as it would have without the crash, every host's
 * `current` is what the API says is live in its environment, and no lock is left held.
 */
let dataDir: string;
let server: ChildServer;
const s = scenario(() => server);

beforeAll(async () => {
  dataDir = await temporaryDirectory('slipway-chaos-');
  server = await startChildServer(dataDir);
}, 90_000);
afterAll(async () => {
  await server?.stop();
  // Host scripts run detached; let the last ones finish before the folder goes.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await rm(dataDir, { recursive: true, force: true, maxRetries: 5 });
}, 90_000);

interface Shape {
  approval?: boolean;
  bakeSeconds?: number;
  /** A host whose health check fails (from the second release on). */
  failingHost?: string;
}

async function app(name: string, shape: Shape = {}) {
  const staging = [`${name}-s1`];
  const production = [`${name}-p1`, `${name}-p2`, `${name}-p3`];
  await s.app({
    name,
    deployRoot: `/srv/${name}`,
    // Slow enough steps that a kill lands inside them.
    hooks: { postDeploy: 'sleep 0.3', postRelease: 'sleep 0.5', healthCheck: 'test ! -e "$DEPLOY_ROOT/FAIL"' },
    environments: [
      { name: 'staging', targets: { hosts: staging } },
      {
        name: 'production',
        targets: { hosts: production },
        strategy: { type: 'rolling', batchSize: 1 },
        ...(shape.bakeSeconds ? { bakeSeconds: shape.bakeSeconds } : {}),
        ...(shape.approval ? { approval: { approvers: ['lead@example.com'] } } : {}),
      },
    ],
  });
  return { staging, production };
}

async function approveWhenAsked(id: string) {
  await s.waitForGate(id, 'production');
  const link = Object.values(await s.links(id, 'production'))[0]!;
  const decided = await s.decide(link, 'approve');
  expect(decided.status).toBe(200);
}

async function history(id: string) {
  return (await server.call('GET', `/v1/releases/${id}/history`)).body;
}

/** Kills the server as soon as `at` holds (kill -9, or a hang-up of its terminal), then restarts it. */
async function killWhen(id: string, what: string, at: (release: any, events: any[]) => boolean, how: 'kill' | 'hangUp' = 'kill') {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const [release, run] = await Promise.all([s.release(id), history(id)]);
    if (at(release, run.events ?? [])) break;
    if (Date.now() > deadline) throw new Error(`${id} never reached ${what}; it is ${release.status}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await server[how]();
  server = await startChildServer(dataDir);
}

async function expectConsistent(appName: string, hosts: { staging: string[]; production: string[] }) {
  const live = await s.live(appName);
  for (const [environment, list] of Object.entries(hosts)) {
    expect(live[environment]!.lock, `${environment} lock`).toBeNull();
    for (const host of list) {
      expect(await s.current(host), `${host} in ${environment}`).toBe(live[environment]!.live ? `releases/${live[environment]!.live}` : null);
      expect((await readdir(s.fleet(host))).filter((name) => name.includes('slipway-tmp')), host).toEqual([]);
    }
  }
  return live;
}

/** How many host commands of a kind went to any of these hosts (the fleet's record of what it ran). */
async function commandsOn(hosts: string[], kind: string) {
  let count = 0;
  for (const id of await readdir(join(dataDir, 'commands'))) {
    const command = JSON.parse(await readFile(join(dataDir, 'commands', id, 'command.json'), 'utf8').catch(() => '{}'));
    if (command.kind === kind && command.hosts?.some((host: string) => hosts.includes(host))) count += 1;
  }
  return count;
}

const entered = (state: string) => (_release: any, events: any[]) => events.at(-1)?.type === 'StateEntered' && events.at(-1)?.state === state;
const stepRunning = (kind: string, environment: string, batchIndex?: number) => (release: any) => {
  const ours = (e: any) => e.data?.environment === environment && (batchIndex === undefined || e.data?.batchIndex === batchIndex);
  const seen = (type: string) => release.events.some((e: any) => e.type === type && ours(e));
  return seen(`${kind}.started`) && !seen(`${kind}.succeeded`) && !seen(`${kind}.failed`);
};

describe('kill -9 at each state of a release', () => {
  const cases: { name: string; shape?: Shape; at: (release: any, events: any[]) => boolean; ends: string }[] = [
    { name: 'distribute', at: stepRunning('distribute', 'production'), ends: 'succeeded' },
    { name: 'gate', shape: { approval: true }, at: (r) => r.status === 'awaiting_approval' && r.approvals.length > 0, ends: 'succeeded' },
    { name: 'batch 1', at: stepRunning('switch', 'production', 0), ends: 'succeeded' },
    { name: 'batch 2', at: stepRunning('switch', 'production', 1), ends: 'succeeded' },
    { name: 'batch 3', at: stepRunning('switch', 'production', 2), ends: 'succeeded' },
    { name: 'bake', shape: { bakeSeconds: 2 }, at: entered('Bake'), ends: 'succeeded' },
    { name: 'revert', shape: { failingHost: 'p3' }, at: stepRunning('revert', 'production'), ends: 'failed' },
    { name: 'prune', at: entered('Prune'), ends: 'succeeded' },
  ];

  for (const [index, testCase] of cases.entries()) {
    it(`${testCase.name}: the release ends ${testCase.ends} and every host runs what the API says`, async () => {
      const name = `chaos${index}`;
      const hosts = await app(name, testCase.shape);
      const v1 = await s.open(name, '1.0.0');
      if (testCase.shape?.approval) await approveWhenAsked(v1);
      expect((await s.waitForEnd(v1)).status).toBe('succeeded');

      if (testCase.shape?.failingHost) await writeFile(s.fleet(`${name}-${testCase.shape.failingHost}`, 'FAIL'), '');
      const v2 = await s.open(name, '2.0.0');
      await killWhen(v2, testCase.name, testCase.at);
      if (testCase.shape?.approval) await approveWhenAsked(v2);
      const ended = await s.waitForEnd(v2);
      expect(ended.status, ended.reason).toBe(testCase.ends);

      const live = await expectConsistent(name, hosts);
      const expected = testCase.ends === 'succeeded' ? v2 : v1;
      expect(live.production!.live).toBe(expected);
      expect(live.staging!.live).toBe(v2);
      // The execution went on from where it stood: nothing before the kill ran twice.
      const run = await history(v2);
      expect(run.events.filter((e: any) => e.type === 'ExecutionResumed')).toHaveLength(1);
      const entries = ended.events.filter((e: any) => e.type === 'environment.entered').map((e: any) => e.data.environment);
      expect(entries).toEqual(['staging', 'production']);
      const switches = ended.events.filter((e: any) => e.type === 'switch.started').map((e: any) => `${e.data.environment}#${e.data.batchIndex}`);
      expect(new Set(switches).size).toBe(switches.length);
      // No host command was sent twice: v1's four switches and one per batch of v2 that started.
      expect(await commandsOn([...hosts.staging, ...hosts.production], 'switch')).toBe(4 + switches.length);
      expect(JSON.stringify(run)).not.toMatch(/taskToken"\s*:\s*"[A-Za-z0-9_-]{20,}/);
    }, 120_000);
  }
});

describe('the terminal that started the server closes', () => {
  it('during a batch: the hang-up ends the server, not the host scripts it started, and the release ends as without it', async () => {
    const hosts = await app('hangup');
    const v1 = await s.open('hangup', '1.0.0');
    expect((await s.waitForEnd(v1)).status).toBe('succeeded');
    const v2 = await s.open('hangup', '2.0.0');
    // The hang-up lands while batch 2's hosts run their postRelease hook (sleep 0.5).
    await killWhen(v2, 'batch 2', stepRunning('switch', 'production', 1), 'hangUp');
    const ended = await s.waitForEnd(v2);
    expect(ended.status, ended.reason).toBe('succeeded');
    const live = await expectConsistent('hangup', hosts);
    expect(live.production!.live).toBe(v2);
    // Each host ran each step once, to its end: none was cut and reported failed or interrupted.
    expect(ended.events.filter((e: any) => e.type.endsWith('.failed'))).toEqual([]);
    const exitCodes = ended.environments.flatMap((environment: any) =>
      environment.hosts.flatMap((host: any) => Object.values(host.steps).map((step: any) => step.exitCode)),
    );
    expect(exitCodes.length).toBeGreaterThan(0);
    expect(exitCodes.every((code: unknown) => code === 0), JSON.stringify(ended.environments)).toBe(true);
    expect(await commandsOn([...hosts.staging, ...hosts.production], 'switch')).toBe(8);
  }, 120_000);
});

describe('kill -9 at each state of a rollback', () => {
  const cases: { name: string; failingHost?: string; at: (release: any, events: any[]) => boolean; ends: string }[] = [
    { name: 'batch 2', at: stepRunning('switch', 'production', 1), ends: 'succeeded' },
    { name: 'revert', failingHost: 'p3', at: stepRunning('revert', 'production'), ends: 'failed' },
  ];
  for (const [index, testCase] of cases.entries()) {
    it(`${testCase.name}: the rollback ends ${testCase.ends} and every host runs what the API says`, async () => {
      const name = `chaosrb${index}`;
      const hosts = await app(name);
      const v1 = await s.open(name, '1.0.0');
      expect((await s.waitForEnd(v1)).status).toBe('succeeded');
      const v2 = await s.open(name, '2.0.0');
      expect((await s.waitForEnd(v2)).status).toBe('succeeded');

      if (testCase.failingHost) await writeFile(s.fleet(`${name}-${testCase.failingHost}`, 'FAIL'), '');
      const rollback = await s.rollback(name, 'production');
      await killWhen(rollback, testCase.name, testCase.at);
      const ended = await s.waitForEnd(rollback);
      expect(ended.status, ended.reason).toBe(testCase.ends);
      const live = await expectConsistent(name, hosts);
      expect(live.production!.live).toBe(testCase.ends === 'succeeded' ? v1 : v2);
      expect(live.staging!.live).toBe(v2);
    }, 120_000);
  }
});
