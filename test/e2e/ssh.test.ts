import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { scenario } from '../support/scenario.ts';
import { startTestSshd, type TestSshd } from '../support/sshd.ts';

/**
 * The embedded default with SSH targets: a real sshd on loopback, three local users as three hosts,
 * `~/` deploy roots. What is on each host is read back over SSH, as the user (stat and readlink).
 */
const run = promisify(execFile);
const USERS = ['slipway-ssh1', 'slipway-ssh2', 'slipway-ssh3'];
// Each run of this file has its own folder under each user's home, so runs never meet.
const ROOT = `~/slipway-e2e-${process.pid}-${Date.now().toString(36)}`;
let sshd: TestSshd;
let server: TestServer;
const SLOW = 120_000;

beforeAll(async () => {
  sshd = await startTestSshd(USERS);
  server = await startTestServer(undefined, { ssh: { identityFile: sshd.identityFile, knownHostsFile: sshd.knownHostsFile } });
}, SLOW);

afterAll(async () => {
  await server?.stop();
  await sshd?.stop();
  for (const user of USERS) await rm(join(await sshd.homeOf(user), ROOT.slice(2).split('/')[0]!), { recursive: true, force: true });
}, SLOW);

async function apply(name: string, environment: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return server.call('PUT', `/v1/apps/${name}`, {
    body: { name, deployRoot: `${ROOT}/${name}`, environments: [{ name: 'production', ...environment }], ...extra },
  });
}

async function artifact(app: string, version: string) {
  return scenario(() => server).tarball(app, { 'index.html': `${app} ${version}` });
}

async function release(app: string, version: string) {
  const opened = await server.call('POST', '/v1/releases', { body: { app, version, artifact: await artifact(app, version) } });
  expect(opened.status, JSON.stringify(opened.body)).toBe(202);
  return server.waitForEnd(opened.body.id, SLOW);
}

/** What `current` of the app points to on the user's host, and who owns what the release made. */
async function onHost(user: string, app: string) {
  const root = join(await sshd.homeOf(user), ROOT.slice(2), app);
  const current = await run('readlink', [join(root, 'current')]).then(
    ({ stdout }) => stdout.trim(),
    () => null,
  );
  const owners = current
    ? (await run('find', [root, '-printf', '%u\n'])).stdout.trim().split('\n')
    : [];
  const page = current ? await readFile(join(root, 'current', 'index.html'), 'utf8') : null;
  return { current, owners: [...new Set(owners)], page };
}

describe('releases over SSH', () => {
  it('gives three users a release, a second release and a rollback, each owned by its user', async () => {
    const applied = await apply('web', { targets: { ssh: { hosts: sshd.hosts } }, strategy: { type: 'rolling', batchSize: 1 } }, {
      hooks: { healthCheck: 'test -f "$RELEASE_DIR/index.html"' },
    });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);

    const first = await release('web', '1.0.0');
    expect(first.status, first.reason).toBe('succeeded');
    expect(first.environments[0].hosts.map((h: any) => h.host)).toEqual(sshd.hosts);
    const second = await release('web', '2.0.0');
    expect(second.status, second.reason).toBe('succeeded');
    for (const user of USERS) {
      expect(await onHost(user, 'web')).toEqual({ current: `releases/${second.id}`, owners: [user], page: 'web 2.0.0' });
    }

    const rollback = await server.call('POST', '/v1/apps/web/environments/production/rollback', { body: {} });
    expect(rollback.status, JSON.stringify(rollback.body)).toBe(202);
    const rolledBack = await server.waitForEnd(rollback.body.id, SLOW);
    expect(rolledBack.status, rolledBack.reason).toBe('succeeded');
    for (const user of USERS) {
      expect(await onHost(user, 'web')).toEqual({ current: `releases/${first.id}`, owners: [user], page: 'web 1.0.0' });
    }
  }, SLOW);

  it('puts the switched hosts back when a health check fails in the middle batch', async () => {
    // Fails on the second user's host only: batches of one make it the middle batch.
    const applied = await apply('mid', { targets: { ssh: { hosts: sshd.hosts } }, strategy: { type: 'rolling', batchSize: 1 } }, {
      hooks: { healthCheck: 'test -f "$RELEASE_DIR/index.html" && { [ "$VERSION" = 1 ] || [ "$(id -un)" != slipway-ssh2 ]; }' },
    });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    const first = await release('mid', '1');
    expect(first.status, first.reason).toBe('succeeded');

    const second = await release('mid', '2');
    expect(second.status).toBe('failed');
    expect(second.reason).toContain('slipway-ssh2@127.0.0.1');
    const hosts = Object.fromEntries(second.environments[0].hosts.map((h: any) => [h.host.split('@')[0], h.status]));
    expect(hosts).toEqual({ 'slipway-ssh1': 'reverted', 'slipway-ssh2': 'reverted', 'slipway-ssh3': 'distributed' });
    for (const user of USERS) expect((await onHost(user, 'mid')).current).toBe(`releases/${first.id}`);
  }, SLOW);

  it('fails a release on an unreachable host, naming user@host:port and why', async () => {
    const closedPort = sshd.port === 1 ? 2 : 1;
    const unreachable = `nobody@127.0.0.1:${closedPort}`;
    const applied = await apply('gone', { targets: { ssh: { hosts: [sshd.hosts[0], unreachable] } } });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    const ended = await release('gone', '1');
    expect(ended.status).toBe('failed');
    expect(ended.reason).toContain(unreachable);
    expect(ended.reason).toMatch(/ECONNREFUSED/);
    // Distribution failed, so nothing was switched anywhere.
    expect((await onHost(USERS[0]!, 'gone')).current).toBeNull();
  }, SLOW);

  it('refuses a host whose key is not the pinned one, or not pinned at all, saying so', async () => {
    const applied = await apply('pinned', { targets: { ssh: { hosts: [sshd.hosts[0]] } } });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    const pinned = await readFile(sshd.knownHostsFile);
    try {
      // The known_hosts file is read for every connection: no restart needed to change a pin.
      await copyFile(sshd.wrongKnownHostsFile, sshd.knownHostsFile);
      const changed = await release('pinned', '1');
      expect(changed.status).toBe('failed');
      expect(changed.reason).toContain(`the host key of ${sshd.hosts[0]} has changed`);

      await writeFile(sshd.knownHostsFile, '# nothing pinned\n');
      const unknown = await release('pinned', '2');
      expect(unknown.status).toBe('failed');
      expect(unknown.reason).toContain(`the host key of ${sshd.hosts[0]} is unknown`);
    } finally {
      await writeFile(sshd.knownHostsFile, pinned);
    }
    expect((await onHost(USERS[0]!, 'pinned')).current).toBeNull();
    const trusted = await release('pinned', '3');
    expect(trusted.status, trusted.reason).toBe('succeeded');
  }, SLOW);

  it('refuses hostile host values when the config is applied, naming the field', async () => {
    for (const hostile of ['deploy@web-1;rm -rf /', 'deploy@$(reboot)', 'deploy@web 1', 'deploy@web-1\nrm -rf /', 'de ploy@web-1', 'deploy@web-1:0', 'deploy@web-1:65536']) {
      const refused = await apply('hostile', { targets: { ssh: { hosts: [sshd.hosts[0], hostile] } } });
      expect(refused.status, hostile).toBe(400);
      expect(refused.body.error.details[0].field).toBe('environments[0].targets.ssh.hosts[1]');
      expect(refused.body.error.details[0].message).toMatch(/user@host:port/);
    }
    expect((await server.call('GET', '/v1/apps/hostile')).status).toBe(404);
  });

  it('refuses SSH targets when the config is applied to a server started without an SSH key', async () => {
    const keyless = await startTestServer(undefined, { demo: false });
    try {
      const refused = await keyless.call('PUT', '/v1/apps/nokey', {
        body: { name: 'nokey', deployRoot: '~/nokey', environments: [{ name: 'production', targets: { ssh: { hosts: [sshd.hosts[0]] } } }] },
      });
      expect(refused.status).toBe(400);
      expect(refused.body.error.details).toEqual([
        { field: 'environments[0].targets.ssh', message: expect.stringContaining('SLIPWAY_SSH_IDENTITY') },
      ]);
      expect(refused.body.error.details[0].message).toContain('SLIPWAY_SSH_KNOWN_HOSTS');
    } finally {
      await keyless.stop();
    }
  }, SLOW);
});
