import { AppConfig } from '@slipway/core';
import { ReleaseView } from '../../packages/core/src/api/schemas.ts';
import { describe, expect, it } from 'vitest';
import { createTestSlipway, type TestSlipway } from '../../packages/core/src/testing/harness.ts';

/**
 * What GET /v1/releases/{id} tells a page that draws the release as a graph: every planned batch
 * from the start (before any batch runs), and each bake's end for its countdown.
 */
const hosts = Array.from({ length: 5 }, (_, i) => `web-${i + 1}`);

describe('the release view', () => {
  it('carries the planned batches once Prepare has run, before any batch switches, and each bake as it starts', async () => {
    const t = createTestSlipway();
    await t.appWithArtifact(
      AppConfig.parse({
        name: 'shop',
        deployRoot: '/srv/shop',
        environments: [{ name: 'production', targets: { hosts }, bakeSeconds: 60, strategy: { type: 'rolling', batchSize: 2 } }],
      }),
    );
    const { id } = await t.open('shop', '1.0.0');
    expect((await t.slipway.releases.view(id)).plan).toBeUndefined();

    await t.stages.prepare({ releaseId: id, app: 'shop' });
    const planned = await t.slipway.releases.view(id);
    expect(planned.plan).toEqual([{ name: 'production', approval: false, bakeSeconds: 60, batches: [['web-1', 'web-2'], ['web-3', 'web-4'], ['web-5']] }]);
    expect(planned.bakes).toBeUndefined();
    expect(ReleaseView.safeParse(planned).error?.issues ?? []).toEqual([]);

    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'production' });
    await t.stages.distribute({ taskToken: 'distribute', releaseId: id, environment: 'production' });
    await t.finish('distribute');
    await t.stages.switchBatch({ taskToken: 'switch-0', releaseId: id, environment: 'production', batchIndex: 0 });
    await t.finish('switch');
    const startedAt = t.clock.now();
    expect(await t.stages.watch({ releaseId: id, environment: 'production', batchIndex: 0 })).toMatchObject({ next: 'wait' });
    const baking = await t.slipway.releases.view(id);
    expect(baking.bakes).toEqual([
      { environment: 'production', batch: 1, startedAt: startedAt.toISOString(), until: new Date(startedAt.getTime() + 60_000).toISOString() },
    ]);
    expect(ReleaseView.safeParse(baking).error?.issues ?? []).toEqual([]);
  });
});

/**
 * What a host script prints for a step, shaped like the real ones (a timestamp and `slipway:` per
 * line, a hook's own lines between): about 700 bytes a host over two steps, what issue 18 measured
 * a 500-host read to carry per host. Every line names the host, so the read can be searched for it.
 */
function printed(kind: string, host: string): { stdout: string; stderr: string } {
  const at = '2026-01-01T00:00:00Z slipway:';
  const lines =
    kind === 'distribute'
      ? [`${at} ${host} downloading artifacts/fleet/${'a'.repeat(64)}.tar.gz`, `${at} ${host} sha256 ok`, `${at} ${host} unpacked into releases/01jz`, `${host} hook: npm run build`, `${host} built in 1.2s`, `${at} ${host} distributed`]
      : [`${at} ${host} running preRelease`, `${at} ${host} current -> releases/01jz`, `${at} ${host} running postRelease`, `${at} ${host} health check passed`];
  return { stdout: `${lines.join('\n')}\n`, stderr: kind === 'distribute' ? `${host} npm warn deprecated inflight@1.0.6\n` : '' };
}

/** The fleet's outcomes carry `printed` as each host's output instead of the fake's one-liner. */
function printRealistically(t: TestSlipway) {
  const results = t.fleet.results.bind(t.fleet);
  t.fleet.results = async (commandId) => {
    const answer = await results(commandId);
    const kind = t.fleet.commands.get(commandId)!.script.kind;
    return { ...answer, invocations: answer.invocations.map((invocation) => ({ ...invocation, ...printed(kind, invocation.host) })) };
  };
}

const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value), 'utf8');

describe('the read of a 500-host release', () => {
  const fleet = Array.from({ length: 500 }, (_, i) => `web-${i + 1}`);
  const token = 'slw_release-view-test-admin-token';

  async function switchedRelease() {
    const t = createTestSlipway();
    printRealistically(t);
    await t.appWithArtifact(
      AppConfig.parse({
        name: 'fleet',
        deployRoot: '/srv/fleet',
        environments: [{ name: 'production', targets: { hosts: fleet }, strategy: { type: 'rolling', batchSize: 250 } }],
      }),
    );
    const { id } = await t.open('fleet', '1.0.0');
    await t.stages.prepare({ releaseId: id, app: 'fleet' });
    await t.stages.enterEnvironment({ taskToken: 'enter', releaseId: id, environment: 'production' });
    await t.stages.distribute({ taskToken: 'distribute', releaseId: id, environment: 'production' });
    await t.finish('distribute');
    for (const batchIndex of [0, 1]) {
      await t.stages.switchBatch({ taskToken: `switch-${batchIndex}`, releaseId: id, environment: 'production', batchIndex });
      await t.finish('switch');
    }
    await t.slipway.auth.ensureAdminToken(token);
    const get = async (path: string) => {
      const response = await t.slipway.api.fetch(new Request(`http://slipway.test${path}`, { headers: { authorization: `Bearer ${token}` } }));
      return { status: response.status, text: await response.text() };
    };
    return { t, id, get };
  }

  it('answers each host\'s steps without their output, at a few hundred bytes a host, and the output route still has every line', async () => {
    const { t, id, get } = await switchedRelease();
    const hosts = await t.store.getHostStates(id);
    expect(hosts.filter((h) => h.steps.distribute && h.steps.switch)).toHaveLength(500);
    // What the hosts printed is stored (the output route reads it): the read only leaves it out.
    const printedBytes = hosts
      .flatMap((h) => Object.values(h.steps))
      .reduce((sum, step) => sum + step.stdout.length + step.stderr.length, 0);
    expect(printedBytes / hosts.length).toBeGreaterThan(600);

    const read = await get(`/v1/releases/${id}`);
    expect(read.status).toBe(200);
    const view = JSON.parse(read.text);
    expect(ReleaseView.safeParse(view).error?.issues ?? []).toEqual([]);
    const host = view.environments[0].hosts.find((h: { host: string }) => h.host === 'web-17');
    expect(host).toEqual({
      host: 'web-17',
      status: 'healthy',
      steps: {
        distribute: { exitCode: 0, startedAt: '2026-01-01T00:00:00.000Z', endedAt: '2026-01-01T00:00:01.000Z' },
        switch: { exitCode: 0, startedAt: '2026-01-01T00:00:00.000Z', endedAt: '2026-01-01T00:00:01.000Z' },
      },
    });
    // Not a line any host printed, nor a piece of one.
    expect(read.text).not.toContain('slipway:');
    expect(read.text).not.toMatch(/downloading|health check passed|npm warn|stdout|stderr/);
    // A host is its name, its status and an exit code and two timestamps a step (about 250 bytes
    // with two steps); the plan names it once more, and the events are a handful. 400 bytes a host
    // leave room for a third and fourth step (revert, prune) and none for output: what one host
    // printed in its two steps is 600 bytes alone.
    const perHost = Buffer.byteLength(read.text, 'utf8') / fleet.length;
    console.log(`GET /v1/releases/{id} of a 500-host release: ${Buffer.byteLength(read.text, 'utf8')} bytes (${perHost.toFixed(0)} a host); its hosts alone ${bytes(view.environments[0].hosts)} bytes; the hosts' output ${printedBytes} bytes`);
    expect(perHost).toBeLessThan(400);

    // The output stays one request away, for every host.
    for (const name of ['web-1', 'web-17', 'web-500']) {
      const output = await get(`/v1/releases/${id}/hosts/${name}/output`);
      expect(output.status).toBe(200);
      const lines = JSON.parse(output.text).lines.map((line: { step: string; stream: string; text: string }) => `${line.step} ${line.stream} ${line.text}`);
      const expected = (['distribute', 'switch'] as const).flatMap((kind) => {
        const { stdout, stderr } = printed(kind, name);
        const split = (text: string) => (text ? text.replace(/\n$/, '').split('\n') : []);
        return [...split(stdout).map((text) => `${kind} stdout ${text}`), ...split(stderr).map((text) => `${kind} stderr ${text}`)];
      });
      expect(lines).toEqual(expected);
    }
  });
});
