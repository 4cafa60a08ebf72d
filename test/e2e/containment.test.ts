import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartTestServer, startTestServer, type TestServer } from '../support/dev-server.ts';
import { scenario } from '../support/scenario.ts';

/**
 * Failure is contained where it hurts: a batch in the middle fails, the server restarts while a
 * release waits at its gate, a cancel or a rollback lands in the middle of another run. After each,
 * every host runs what the API says is live and no lock is left held.
 */
let server: TestServer;
const s = scenario(() => server);

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.stop());

/** Restarts the dev server on the same data, as a deploy of Slipway itself would. */
async function restart() {
  server = await restartTestServer(server);
}

const FAIL_MARKER_CHECK = 'test ! -e "$DEPLOY_ROOT/FAIL"';

async function expectFleet(hosts: string[], releaseId: string | null) {
  for (const host of hosts) expect(await s.current(host), host).toBe(releaseId ? `releases/${releaseId}` : null);
}

describe('a batch that fails in the middle', () => {
  it('stops a rolling release: the later batches are never switched, the switched ones go back', async () => {
    const hosts = ['mid-1', 'mid-2', 'mid-3', 'mid-4'];
    await s.app({
      name: 'mid',
      deployRoot: '/srv/mid',
      hooks: { healthCheck: FAIL_MARKER_CHECK },
      environments: [{ name: 'production', targets: { hosts }, strategy: { type: 'rolling', batchSize: 1 } }],
    });
    const v1 = await s.open('mid', '1.0.0');
    expect((await s.waitForEnd(v1)).status).toBe('succeeded');

    await writeFile(s.fleet('mid-2', 'FAIL'), '');
    const v2 = await s.open('mid', '2.0.0');
    const failed = await s.waitForEnd(v2);
    expect(failed.status).toBe('failed');
    expect(failed.reason).toContain('batch 2');
    await expectFleet(hosts, v1);
    // Batches 3 and 4 never got a switch command.
    const switches = failed.events.filter((e: any) => e.type === 'switch.started').map((e: any) => e.data.batchIndex);
    expect(switches).toEqual([0, 1]);
    const byHost = Object.fromEntries(failed.environments[0].hosts.map((h: any) => [h.host, h.status]));
    expect(byHost).toEqual({ 'mid-1': 'reverted', 'mid-2': 'reverted', 'mid-3': 'distributed', 'mid-4': 'distributed' });
    expect(await s.live('mid')).toEqual({ production: { live: v1, lock: null } });
    const history = await server.executor.history(`release:${v2}`);
    const iterations = history.filter((e) => e.type.startsWith('MapIteration') && e.state === 'SwitchBatches');
    expect(iterations.map((e) => `${e.type}#${e.index}`)).toEqual([
      'MapIterationStarted#0',
      'MapIterationSucceeded#0',
      'MapIterationStarted#1',
      'MapIterationFailed#1',
    ]);
  });

  it('stops a rollback the same way, leaving the environment on the release that was live', async () => {
    const hosts = ['rbm-1', 'rbm-2', 'rbm-3', 'rbm-4'];
    await s.app({
      name: 'rbm',
      deployRoot: '/srv/rbm',
      hooks: { healthCheck: FAIL_MARKER_CHECK },
      environments: [{ name: 'production', targets: { hosts }, strategy: { type: 'rolling', batchSize: 1 } }],
    });
    const v1 = await s.open('rbm', '1.0.0');
    expect((await s.waitForEnd(v1)).status).toBe('succeeded');
    const v2 = await s.open('rbm', '2.0.0');
    expect((await s.waitForEnd(v2)).status).toBe('succeeded');

    await writeFile(s.fleet('rbm-2', 'FAIL'), '');
    const rollback = await s.rollback('rbm', 'production');
    const failed = await s.waitForEnd(rollback);
    expect(failed.status).toBe('failed');
    await expectFleet(hosts, v2);
    expect(failed.events.filter((e: any) => e.type === 'switch.started').map((e: any) => e.data.batchIndex)).toEqual([0, 1]);
    expect(await s.live('rbm')).toEqual({ production: { live: v2, lock: null } });
  });
});

describe('a restart while a release waits for approval', () => {
  it('keeps the release at its gate, staging untouched, and the approval completes it', async () => {
    await s.app({
      name: 'gate',
      deployRoot: '/srv/gate',
      environments: [
        { name: 'staging', targets: { hosts: ['gate-s1'] } },
        { name: 'production', targets: { hosts: ['gate-p1', 'gate-p2'] }, approval: { approvers: ['lead@example.com'] } },
      ],
    });
    const v1 = await s.open('gate', '1.0.0');
    await s.waitForGate(v1, 'production');
    await s.decide(Object.values(await s.links(v1, 'production'))[0]!, 'approve');
    expect((await s.waitForEnd(v1)).status).toBe('succeeded');

    const v2 = await s.open('gate', '2.0.0');
    await s.waitForGate(v2, 'production');
    for (let i = 0; i < 2; i++) await restart();

    const waiting = await s.release(v2);
    expect(waiting.status).toBe('awaiting_approval');
    expect(waiting.approvals[0].status).toBe('pending');
    expect(await s.current('gate-s1')).toBe(`releases/${v2}`);
    expect(await s.live('gate')).toMatchObject({ staging: { live: v2, lock: null }, production: { live: v1, lock: v2 } });
    // One mail per approver, however many restarts.
    expect(waiting.events.filter((e: any) => e.type === 'approval.mailed')).toHaveLength(1);

    await s.decide(Object.values(await s.links(v2, 'production'))[0]!, 'approve');
    const done = await s.waitForEnd(v2);
    expect(done.status, done.reason).toBe('succeeded');
    await expectFleet(['gate-s1', 'gate-p1', 'gate-p2'], v2);
    expect(await s.live('gate')).toEqual({ staging: { live: v2, lock: null }, production: { live: v2, lock: null } });
    // Staging was entered once: the restart did not run it again.
    expect(done.events.filter((e: any) => e.type === 'environment.entered').map((e: any) => e.data.environment)).toEqual(['staging', 'production']);
  });
});

describe('runs that cross each other', () => {
  it('a cancel in the middle of production, then a restart: staging stays on the release, production goes back', async () => {
    const production = ['cx-p1', 'cx-p2', 'cx-p3'];
    await s.app({
      name: 'cx',
      deployRoot: '/srv/cx',
      hooks: { postRelease: 'sleep 0.5' },
      environments: [
        { name: 'staging', targets: { hosts: ['cx-s1'] } },
        { name: 'production', targets: { hosts: production }, strategy: { type: 'rolling', batchSize: 1 } },
      ],
    });
    const v1 = await s.open('cx', '1.0.0');
    expect((await s.waitForEnd(v1)).status).toBe('succeeded');
    const v2 = await s.open('cx', '2.0.0');
    await s.waitFor(v2, (r) => r.events.some((e: any) => e.type === 'switch.succeeded' && e.data.environment === 'production'), 'switched a production batch');
    expect((await server.call('POST', `/v1/releases/${v2}/cancel`)).status).toBe(202);
    await restart();
    const ended = await s.waitForEnd(v2);
    expect(ended.status).toBe('cancelled');
    expect(await s.current('cx-s1')).toBe(`releases/${v2}`);
    await expectFleet(production, v1);
    expect(await s.live('cx')).toEqual({ staging: { live: v2, lock: null }, production: { live: v1, lock: null } });
  });

  it('a staging rollback while the release waits at production\'s gate survives a restart and the release\'s end', async () => {
    await s.app({
      name: 'cross',
      deployRoot: '/srv/cross',
      environments: [
        { name: 'staging', targets: { hosts: ['cross-s1'] } },
        { name: 'production', targets: { hosts: ['cross-p1'] }, approval: { approvers: ['lead@example.com'] } },
      ],
    });
    const v1 = await s.open('cross', '1.0.0');
    await s.waitForGate(v1, 'production');
    await s.decide(Object.values(await s.links(v1, 'production'))[0]!, 'approve');
    expect((await s.waitForEnd(v1)).status).toBe('succeeded');

    const v2 = await s.open('cross', '2.0.0');
    await s.waitForGate(v2, 'production');
    const rollback = await s.rollback('cross', 'staging');
    expect((await s.waitForEnd(rollback)).status).toBe('succeeded');
    expect(await s.current('cross-s1')).toBe(`releases/${v1}`);

    await restart();
    await s.decide(Object.values(await s.links(v2, 'production'))[0]!, 'approve');
    const done = await s.waitForEnd(v2);
    expect(done.status, done.reason).toBe('succeeded');
    // Staging keeps the rollback: neither the restart nor the release's end took it over again.
    expect(await s.current('cross-s1')).toBe(`releases/${v1}`);
    expect(await s.current('cross-p1')).toBe(`releases/${v2}`);
    expect(await s.live('cross')).toEqual({ staging: { live: v1, lock: null }, production: { live: v2, lock: null } });
    expect(done.events.filter((e: any) => e.type === 'environment.live').map((e: any) => e.data.environment)).toEqual(['staging', 'production']);
  });
});

describe('cancel and rollback as users expect', () => {
  it('refuses to cancel a release that is live everywhere, from the moment it is', async () => {
    await s.app({ name: 'lived', deployRoot: '/srv/lived', environments: [{ name: 'production', targets: { hosts: ['lived-1'] } }] });
    const v1 = await s.open('lived', '1.0.0');
    await s.waitFor(v1, (r) => r.events.some((e: any) => e.type === 'environment.live'), 'went live');
    const cancel = await server.call('POST', `/v1/releases/${v1}/cancel`);
    expect(cancel.status).toBe(409);
    expect(cancel.body.error.message).toMatch(/already live in every environment.*roll an environment back/);
    const ended = await s.waitForEnd(v1);
    expect(ended.status).toBe('succeeded');
    expect(await s.current('lived-1')).toBe(`releases/${v1}`);
  });

  it('a cancel while a failed batch is being put back keeps the failure as the reason and tells the opener', async () => {
    const hosts = ['rv-1', 'rv-2'];
    await s.app({
      name: 'rv',
      deployRoot: '/srv/rv',
      hooks: { postRelease: 'sleep 1', healthCheck: FAIL_MARKER_CHECK },
      environments: [{ name: 'production', targets: { hosts }, strategy: { type: 'rolling', batchSize: 1 } }],
    });
    const v1 = await s.open('rv', '1.0.0');
    expect((await s.waitForEnd(v1)).status).toBe('succeeded');
    await writeFile(s.fleet('rv-2', 'FAIL'), '');
    const opener = await server.tokenFor('deployer', 'dev@example.com');
    const artifact = await s.tarball('rv', { 'index.html': 'two' });
    const opened = await server.call('POST', '/v1/releases', { token: opener, body: { app: 'rv', version: '2.0.0', artifact } });
    const v2 = opened.body.id as string;
    await s.waitFor(v2, (r) => r.events.some((e: any) => e.type === 'revert.planned'), 'started putting hosts back');
    const cancel = await server.call('POST', `/v1/releases/${v2}/cancel`);
    expect(cancel.status).toBe(409);
    expect(cancel.body.error.message).toMatch(/already failed in production and is putting its hosts back/);
    const ended = await s.waitForEnd(v2);
    expect(ended.status).toBe('failed');
    expect(ended.reason).toContain('batch 2');
    expect(ended.events.some((e: any) => e.type === 'notification.mailed' && e.data.status === 'failed')).toBe(true);
    await expectFleet(hosts, v1);
  });

  it('rolls back by default to the release live before the current one, not the next one kept', async () => {
    await s.app({ name: 'hist', deployRoot: '/srv/hist', keepReleases: 5, environments: [{ name: 'production', targets: { hosts: ['hist-1'] } }] });
    const ids: string[] = [];
    for (const version of ['1', '2', '3']) {
      ids.push(await s.open('hist', version));
      expect((await s.waitForEnd(ids.at(-1)!)).status).toBe('succeeded');
    }
    const [v1, v2, v3] = ids as [string, string, string];
    const toV2 = await s.rollback('hist', 'production', { toRelease: v2 });
    expect((await s.waitForEnd(toV2)).status).toBe('succeeded');
    const v4 = await s.open('hist', '4');
    expect((await s.waitForEnd(v4)).status).toBe('succeeded');

    const back = await s.rollback('hist', 'production');
    expect((await s.release(back)).rollback.target).toBe(v2);
    expect((await s.waitForEnd(back)).status).toBe('succeeded');
    expect(await s.current('hist-1')).toBe(`releases/${v2}`);
    // And again: back to what was live before that rollback.
    const undo = await s.rollback('hist', 'production');
    expect((await s.release(undo)).rollback.target).toBe(v4);
    expect((await s.waitForEnd(undo)).status).toBe('succeeded');
    expect([v1, v3]).not.toContain((await s.live('hist')).production!.live);
  });

  it('keeps the release live before the current one on the hosts, however old, so the default rollback always works', async () => {
    await s.app({ name: 'keep', deployRoot: '/srv/keep', keepReleases: 2, environments: [{ name: 'production', targets: { hosts: ['keep-1'] } }] });
    const v1 = await s.open('keep', '1');
    expect((await s.waitForEnd(v1)).status).toBe('succeeded');
    const v2 = await s.open('keep', '2');
    expect((await s.waitForEnd(v2)).status).toBe('succeeded');
    expect((await s.waitForEnd(await s.rollback('keep', 'production'))).status).toBe('succeeded');
    const v3 = await s.open('keep', '3');
    expect((await s.waitForEnd(v3)).status).toBe('succeeded');
    // v1 was live before v3: it stays on the host although two newer releases exist.
    expect(await s.releasesOn('keep-1')).toContain(v1);
    const app = (await server.call('GET', '/v1/apps/keep')).body;
    expect(app.environments[0].retained.map((r: any) => r.id)).toEqual([v3, v1]);
    const back = await s.rollback('keep', 'production');
    expect((await s.release(back)).rollback.target).toBe(v1);
    expect((await s.waitForEnd(back)).status).toBe('succeeded');
    expect(await s.current('keep-1')).toBe(`releases/${v1}`);
  });
});
