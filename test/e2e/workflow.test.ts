import { mkdir, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_BUCKET } from '@slipway/local';
import { shellQuote } from '@slipway/core';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { tarball as hostileTarball } from '../support/hostile-archive.ts';

/**
 * The release workflow end to end on the embedded default: the real ASL in the local executor,
 * the generated scripts on folder hosts, the same handlers as on AWS.
 */
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.stop());

const waitForEnd = (id: string) => server.waitForEnd(id);

/** An app on hosts of its own, so tests never share a folder host. */
async function app(name: string, overrides: Record<string, unknown> = {}) {
  const staging = [`${name}-s1`, `${name}-s2`];
  const production = [`${name}-p1`, `${name}-p2`, `${name}-p3`, `${name}-p4`];
  for (const host of [...staging, ...production]) await mkdir(join(server.dataDir, 'fleet', host), { recursive: true });
  const config = {
    name,
    deployRoot: `/srv/${name}`,
    keepReleases: 2,
    sharedPaths: ['storage'],
    hooks: {
      postDeploy: 'echo built > build.txt',
      healthCheck: 'test ! -e "$DEPLOY_ROOT/unhealthy" && test -f "$RELEASE_DIR/index.html"',
    },
    environments: [
      { name: 'staging', targets: { hosts: staging } },
      { name: 'production', targets: { hosts: production }, strategy: { type: 'rolling', batchSize: 2 } },
    ],
    ...overrides,
  };
  const stored = await server.call('PUT', `/v1/apps/${name}`, { body: config });
  if (stored.status !== 200) throw new Error(JSON.stringify(stored.body));
  return { staging, production, all: [...staging, ...production] };
}

async function open(appName: string, version: string, content = version, description = '') {
  const artifact = await tarball(appName, { 'index.html': `<h1>${content}</h1>` });
  const opened = await server.call('POST', '/v1/releases', { body: { app: appName, version, artifact, description } });
  if (opened.status !== 202) throw new Error(JSON.stringify(opened.body));
  return opened.body.id as string;
}

async function tarball(appName: string, files: Record<string, string>) {
  const { create } = await import('tar');
  const source = join(server.dataDir, `src-${Math.random().toString(36).slice(2)}`);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(source, path, '..'), { recursive: true });
    await writeFile(join(source, path), content);
  }
  const file = `${source}.tar.gz`;
  await create({ gzip: true, file, cwd: source, portable: true }, Object.keys(files));
  const artifact = await server.upload(appName, await readFile(file));
  await rm(source, { recursive: true, force: true });
  await rm(file, { force: true });
  return artifact;
}

const current = (host: string) => readlink(join(server.dataDir, 'fleet', host, 'current')).catch(() => null);
const releasesOn = async (host: string) =>
  (await readdir(join(server.dataDir, 'fleet', host, 'releases'))).filter((name) => !name.startsWith('.')).sort();

/** The path an execution took, read once it stopped (a release ends a moment before its execution). */
async function statesEntered(id: string) {
  const deadline = Date.now() + 10_000;
  while ((await server.executor.describe(`release:${id}`))?.status === 'RUNNING') {
    if (Date.now() > deadline) throw new Error(`execution of ${id} still running`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const history = await server.executor.history(`release:${id}`);
  return history.filter((e) => e.type === 'StateEntered').map((e) => e.state);
}

describe('an artifact that could write outside its release', () => {
  it('fails the release at Prepare, naming the member, before any host is touched; the next, safe one unpacks without a listing', async () => {
    const hosts = await app('unsafe');
    const artifact = await server.upload('unsafe', hostileTarball([{ name: 'conf', type: 'symlink', target: '/etc' }]));
    const opened = await server.call('POST', '/v1/releases', { body: { app: 'unsafe', version: '1.0.0', artifact } });
    expect(opened.status).toBe(202);
    const refused = await waitForEnd(opened.body.id);
    expect(refused.status).toBe('failed');
    expect(refused.reason).toContain('member \'conf\' is a symbolic link to \'/etc\' and its target is an absolute path');
    expect(refused.events.some((e: any) => e.type === 'distribute.started')).toBe(false);
    for (const host of hosts.all) expect(await readdir(join(server.dataDir, 'fleet', host))).toEqual([]);

    const safe = await open('unsafe', '2.0.0');
    expect((await waitForEnd(safe)).status).toBe('succeeded');
    const output = await server.call('GET', `/v1/releases/${safe}/hosts/unsafe-s1/output`);
    expect(output.body.lines.map((line: any) => line.text).join('\n')).toContain('unpacking it without a listing');
  });
});

describe('hosts on the machine that stores the artifact', () => {
  it('download it with the presigned URL from the S3 stand-in over HTTP when told to, as hosts elsewhere do', async () => {
    const downloading = await startTestServer(undefined, { artifactsInPlace: false, demo: false });
    try {
      await mkdir(join(downloading.dataDir, 'fleet', 'by-url-1'), { recursive: true });
      const config = { name: 'by-url', deployRoot: '/srv/by-url', environments: [{ name: 'production', targets: { hosts: ['by-url-1'] } }] };
      expect((await downloading.call('PUT', '/v1/apps/by-url', { body: config })).status).toBe(200);
      const artifact = await downloading.upload('by-url', hostileTarball([{ name: 'index.html', type: 'file', content: 'downloaded' }]));
      const opened = await downloading.call('POST', '/v1/releases', { body: { app: 'by-url', version: '1.0.0', artifact } });
      expect((await downloading.waitForEnd(opened.body.id)).status).toBe('succeeded');
      const { body } = await downloading.call('GET', `/v1/releases/${opened.body.id}/hosts/by-url-1/output`);
      const text = body.lines.map((line: any) => line.text).join('\n');
      expect(text).toContain('downloading the artifact');
      expect(text).not.toContain('this machine\'s store');
      expect(await readFile(join(downloading.dataDir, 'fleet', 'by-url-1', 'current', 'index.html'), 'utf8')).toBe('downloaded');
    } finally {
      await downloading.stop();
    }
  });

  /** The file in which the S3 stand-in keeps an artifact (s3rver's layout). */
  const storedFile = (key: string) => join(server.dataDir, 's3', LOCAL_BUCKET, `${key}._S3rver_object`);

  it('read it in place, and bytes changed in that file after the open make nothing ready on any host', async () => {
    const hosts = await app('in-place');
    const first = await open('in-place', '1.0.0');
    expect((await waitForEnd(first)).status).toBe('succeeded');
    const output = await server.call('GET', `/v1/releases/${first}/hosts/in-place-s1/output`);
    const text = output.body.lines.map((line: any) => line.text).join('\n');
    expect(text).toContain('reading the artifact from this machine\'s store');
    expect(text).not.toContain('downloading the artifact');

    // The next release's stored bytes are replaced after the open read and checked them: staging's
    // one host does it from its postDeploy hook, so production's hosts read the swapped file.
    const next = await tarball('in-place', { 'index.html': 'the real one' });
    const swap = join(server.dataDir, 'swapped.tar.gz');
    await writeFile(swap, hostileTarball([{ name: 'index.html', type: 'file', content: 'swapped under the release' }]));
    const stored = storedFile(next.key);
    await app('in-place', {
      hooks: { postDeploy: `if [ "\${DEPLOY_ROOT##*/}" = in-place-s1 ] && [ "$VERSION" = 2.0.0 ]; then cp -- ${shellQuote(swap)} ${shellQuote(stored)}; fi` },
      environments: [
        { name: 'staging', targets: { hosts: ['in-place-s1'] } },
        { name: 'production', targets: { hosts: hosts.production }, strategy: { type: 'rolling', batchSize: 2 } },
      ],
    });
    const opened = await server.call('POST', '/v1/releases', { body: { app: 'in-place', version: '2.0.0', artifact: next } });
    expect(opened.status).toBe(202);
    const swapped = await waitForEnd(opened.body.id);
    expect(swapped.status).toBe('failed');
    expect(swapped.reason).toContain('distribute');
    for (const host of hosts.production) {
      expect(await current(host), host).toBe(`releases/${first}`);
      expect((await readdir(join(server.dataDir, 'fleet', host, 'releases'))).sort(), host).toEqual([first]);
      const { body } = await server.call('GET', `/v1/releases/${opened.body.id}/hosts/${host}/output`);
      expect(body.lines.map((line: any) => line.text).join('\n'), host).toContain('sha256 mismatch');
    }
  });
});

describe('a release through staging and production', () => {
  let hosts: Awaited<ReturnType<typeof app>>;
  let first: string;

  it('succeeds with every host on the new release, batch by batch', async () => {
    hosts = await app('web');
    first = await open('web', '1.0.0', 'one');
    const release = await waitForEnd(first);
    expect(release.status, release.reason).toBe('succeeded');
    for (const host of hosts.all) {
      expect(await current(host)).toBe(`releases/${first}`);
      expect(await readFile(join(server.dataDir, 'fleet', host, 'current/build.txt'), 'utf8')).toBe('built\n');
    }
    expect(release.environments.map((e: any) => [e.environment, e.status])).toEqual([
      ['staging', 'succeeded'],
      ['production', 'succeeded'],
    ]);
    for (const env of release.environments) {
      for (const host of env.hosts) {
        expect(host.status).toBe('healthy');
        expect(host.steps.distribute.exitCode).toBe(0);
        // What the switch printed is the host's output route's, not the release's.
        const output = await server.call('GET', `/v1/releases/${first}/hosts/${host.host}/output`);
        const switched = output.body.lines.filter((line: any) => line.step === 'switch' && line.environment === env.environment);
        expect(switched.map((line: any) => line.text).join('\n')).toContain(`current -> releases/${first}`);
      }
    }

    // The path through the ASL: production switched in two batches, nothing reverted, no approval.
    const entered = await statesEntered(first);
    expect(entered.filter((s) => s === 'EnterEnvironment')).toHaveLength(2);
    expect(entered.filter((s) => s === 'SwitchBatch')).toHaveLength(3);
    expect(entered).not.toContain('AwaitApproval');
    expect(entered).not.toContain('PlanRevert');
    expect(entered.slice(-3)).toEqual(['Prune', 'Finalize', 'Succeeded']);

    const live = await server.call('GET', '/v1/apps/web');
    expect(live.body.environments[1]).toMatchObject({ live: { id: first, version: '1.0.0' }, lock: null });
  });

  it('keeps the previous release on disk after a second release', async () => {
    const second = await open('web', '2.0.0', 'two');
    expect((await waitForEnd(second)).status).toBe('succeeded');
    for (const host of hosts.all) {
      expect(await current(host)).toBe(`releases/${second}`);
      expect(await releasesOn(host)).toEqual([first, second].sort());
    }
    const live = await server.call('GET', '/v1/apps/web');
    expect(live.body.environments[0].retained.map((r: any) => r.version)).toEqual(['2.0.0', '1.0.0']);
  });

  it('prunes beyond keepReleases on every host', async () => {
    const third = await open('web', '3.0.0', 'three');
    expect((await waitForEnd(third)).status).toBe('succeeded');
    for (const host of hosts.all) {
      const kept = await releasesOn(host);
      expect(kept).toHaveLength(2);
      expect(kept).toContain(third);
      expect(kept).not.toContain(first);
    }
  });
});

describe('a failing health check', () => {
  it('reverts its batch and the earlier batches, and fails the release with the host output', async () => {
    const hosts = await app('shop');
    const good = await open('shop', '1.0.0', 'good');
    expect((await waitForEnd(good)).status).toBe('succeeded');

    // The second production batch has the sick host: the first batch switches, then is put back.
    const sick = hosts.production[2]!;
    await writeFile(join(server.dataDir, 'fleet', sick, 'unhealthy'), '');
    const bad = await open('shop', '2.0.0', 'bad');
    const release = await waitForEnd(bad);
    expect(release.status).toBe('failed');
    expect(release.reason).toContain(`switch of batch 2 in production failed on ${sick}`);
    expect(release.reason).toMatch(/health check failed 3 times/);

    for (const host of hosts.production) expect(await current(host), host).toBe(`releases/${good}`);
    // Staging succeeded before production failed: it stays on the new release.
    for (const host of hosts.staging) expect(await current(host)).toBe(`releases/${bad}`);

    const production = release.environments.find((e: any) => e.environment === 'production');
    expect(production.status).toBe('failed');
    const byHost = Object.fromEntries(production.hosts.map((h: any) => [h.host, h]));
    expect(byHost[sick].status).toBe('reverted');
    expect(byHost[hosts.production[0]!].status).toBe('reverted');
    expect(byHost[sick].steps.switch.exitCode).toBe(23);

    const entered = await statesEntered(bad);
    expect(entered.filter((s) => s === 'RevertBatch')).toHaveLength(2);
    expect(entered).toContain('FailEnvironment');
    expect(entered.at(-1)).toBe('Failed');
    const revertOrder = (await server.executor.history(`release:${bad}`))
      .filter((e) => e.type === 'StateEntered' && e.state === 'RevertBatch')
      .map((e) => JSON.parse(e.input!).batchIndex);
    expect(revertOrder).toEqual([1, 0]);

    const live = await server.call('GET', '/v1/apps/shop');
    expect(live.body.environments[1]).toMatchObject({ live: { id: good }, lock: null });
    await rm(join(server.dataDir, 'fleet', sick, 'unhealthy'));
  });
});

describe('the environment lock', () => {
  it('starts exactly one of two concurrent opens and answers the other 409 with the holder', async () => {
    await app('race');
    const [a, b] = await Promise.all([tarball('race', { 'index.html': 'a' }), tarball('race', { 'index.html': 'b' })]);
    const answers = await Promise.all([
      server.call('POST', '/v1/releases', { body: { app: 'race', version: 'a', artifact: a } }),
      server.call('POST', '/v1/releases', { body: { app: 'race', version: 'b', artifact: b } }),
    ]);
    const started = answers.filter((r) => r.status === 202);
    const refused = answers.filter((r) => r.status === 409);
    expect(started).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.body.error.details.holder).toBe(started[0]!.body.id);
    expect((await waitForEnd(started[0]!.body.id)).status).toBe('succeeded');
    expect((await server.call('GET', '/v1/releases?app=race')).body.items).toHaveLength(1);
  });

  it('queues a second release when the app says so, and runs it after the first', async () => {
    const hosts = await app('line', { queue: true });
    const first = await open('line', '1');
    const second = await open('line', '2');
    const [one, two] = [await waitForEnd(first), await waitForEnd(second)];
    expect([one.status, two.status]).toEqual(['succeeded', 'succeeded']);
    for (const host of hosts.all) expect(await current(host)).toBe(`releases/${second}`);
    // Whichever got in first, they never held an environment at the same time.
    for (const environment of ['staging', 'production']) {
      const span = (release: any) => {
        const at = (type: string) =>
          Date.parse(release.events.find((e: any) => e.type === type && e.data?.environment === environment).at);
        return [at('environment.entered'), at('environment.live')] as const;
      };
      const [a, b] = [span(one), span(two)].sort((x, y) => x[0] - y[0]);
      expect(a![1]).toBeLessThanOrEqual(b![0]);
    }
    // The one that found an environment held waited in line on a token, not in a retry loop.
    const histories = [...(await server.executor.history(`release:${first}`)), ...(await server.executor.history(`release:${second}`))];
    expect(histories.filter((e) => e.type === 'StateRetried' && e.state === 'EnterEnvironment')).toEqual([]);
    expect([...one.events, ...two.events].some((e: any) => e.type === 'environment.queued')).toBe(true);
  });
});

describe('hostile values', () => {
  it('never execute: descriptions and versions are data, hooks are the only commands', async () => {
    const hosts = await app('odd');
    const id = await open('odd', '1.0.0+build_7-rc.1', 'odd', `$(touch pwned); \`touch pwned\`; rm -rf / 'quoted'\nsecond line`);
    expect((await waitForEnd(id)).status).toBe('succeeded');
    for (const host of hosts.all) {
      const names = await readdir(join(server.dataDir, 'fleet', host, 'current'));
      expect(names).not.toContain('pwned');
    }
    expect(await readdir(server.dataDir)).not.toContain('pwned');
  });
});

describe('cancel', () => {
  it('stops a release still waiting in line outright, and the one ahead carries on', async () => {
    await app('queue2', {
      queue: true,
      hooks: { postRelease: 'sleep 3' },
      environments: [{ name: 'live', targets: { hosts: ['queue2-p1', 'queue2-p2'] } }],
    });
    const first = await open('queue2', '1');
    const second = await open('queue2', '2');
    // Whichever got the lock runs; the other waits in line on its EnterEnvironment token, still pending.
    const deadline = Date.now() + 20_000;
    let waiting: string | undefined;
    while (!waiting) {
      for (const id of [first, second]) {
        const { body } = await server.call('GET', `/v1/releases/${id}`);
        if (body.events.some((e: any) => e.type === 'environment.queued')) waiting = id;
      }
      if (Date.now() > deadline) throw new Error('neither release waited in line');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const ahead = waiting === first ? second : first;
    expect((await server.call('GET', `/v1/releases/${waiting}`)).body.status).toBe('pending');
    expect((await server.call('POST', `/v1/releases/${waiting}/cancel`)).status).toBe(202);
    expect(await server.executor.describe(`release:${waiting}`)).toMatchObject({ status: 'ABORTED', cause: 'cancelled by admin' });
    expect((await server.waitForEnd(waiting)).status).toBe('cancelled');
    expect((await server.waitForEnd(ahead)).status).toBe('succeeded');
  });

  it('stops a release mid-switch and puts the switched hosts back on the previous release', async () => {
    await app('halt', {
      hooks: { postRelease: 'sleep 1', healthCheck: 'test -f "$RELEASE_DIR/index.html"' },
      environments: [{ name: 'live', targets: { hosts: ['halt-p1', 'halt-p2', 'halt-p3'] }, strategy: { type: 'rolling', batchSize: 1 } }],
    });
    const good = await open('halt', '1');
    expect((await waitForEnd(good)).status).toBe('succeeded');
    const doomed = await open('halt', '2');
    const deadline = Date.now() + 20_000;
    while (!(await server.call('GET', `/v1/releases/${doomed}`)).body.events.some((e: any) => e.type === 'switch.succeeded')) {
      if (Date.now() > deadline) throw new Error('the first batch never switched');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const viewer = await server.tokenFor('viewer', 'vic@example.com');
    expect((await server.call('POST', `/v1/releases/${doomed}/cancel`, { token: viewer })).status).toBe(403);
    const cancelled = await server.call('POST', `/v1/releases/${doomed}/cancel`);
    expect(cancelled.status).toBe(202);
    expect(cancelled.body).toEqual({ id: doomed, status: 'cancelled' });
    const ended = await waitForEnd(doomed);
    expect(ended).toMatchObject({ status: 'cancelled', reason: 'cancelled by admin' });
    await statesEntered(doomed);
    for (const host of ['halt-p1', 'halt-p2', 'halt-p3']) expect(await current(host)).toBe(`releases/${good}`);
    expect((await server.call('GET', '/v1/apps/halt')).body.environments[0]).toMatchObject({ live: { id: good }, lock: null });
    const again = await server.call('POST', `/v1/releases/${doomed}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.error.message).toBe('a release in status cancelled cannot move to cancelled');
  });
});
