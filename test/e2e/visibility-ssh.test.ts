import { rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { scenario } from '../support/scenario.ts';
import { openSse, type SseEvent } from '../support/sse.ts';
import { startTestSshd, type TestSshd } from '../support/sshd.ts';

/**
 * Live output and the host scan over SSH: a real sshd on loopback, two local users as two hosts. The
 * health check prints, then waits for a file the test creates.
 */
const USERS = ['slipway-ssh1', 'slipway-ssh2'];
const ROOT = `~/slipway-vis-${process.pid}-${Date.now().toString(36)}`;
const SLOW = 120_000;
let sshd: TestSshd;
let server: TestServer;
const rootOf = async (user: string) => join(await sshd.homeOf(user), ROOT.slice(2), 'live');

beforeAll(async () => {
  sshd = await startTestSshd(USERS);
  server = await startTestServer(undefined, { ssh: { identityFile: sshd.identityFile, knownHostsFile: sshd.knownHostsFile } });
  const applied = await server.call('PUT', '/v1/apps/live', {
    body: {
      name: 'live',
      deployRoot: `${ROOT}/live`,
      hooks: {
        healthCheck: 'echo "checking on $(id -un)"; until [ -f "$DEPLOY_ROOT/go" ]; do sleep 0.05; done; echo "checked"',
      },
      environments: [{ name: 'production', targets: { ssh: { hosts: sshd.hosts } }, strategy: { type: 'rolling', batchSize: 2 } }],
    },
  });
  if (applied.status !== 200) throw new Error(JSON.stringify(applied.body));
}, SLOW);

afterAll(async () => {
  await server?.stop();
  await sshd?.stop();
  for (const user of USERS) await rm(join(await sshd.homeOf(user), ROOT.slice(2).split('/')[0]!), { recursive: true, force: true });
}, SLOW);

async function open(version: string) {
  const artifact = await scenario(() => server).tarball('live', { 'index.html': version });
  const opened = await server.call('POST', '/v1/releases', { body: { app: 'live', version, artifact } });
  expect(opened.status, JSON.stringify(opened.body)).toBe(202);
  return opened.body.id as string;
}

describe('live output and drift over SSH', () => {
  let id = '';

  it('streams an SSH host\'s lines while its health check runs, and resumes without repeats', async () => {
    id = await open('1.0.0');
    const host = sshd.hosts[0]!;
    const url = `${server.url}/v1/releases/${id}/hosts/${encodeURIComponent(host)}/output`;
    const stream = await openSse(url, server.adminToken);
    expect(stream.status).toBe(200);
    const seen: SseEvent[] = [];
    const checking = await stream.until((event) => {
      if (event.event === 'line') seen.push(event);
      return event.event === 'line' && event.data.text === `checking on ${USERS[0]}`;
    }, SLOW);
    expect(checking?.data).toMatchObject({ step: 'switch', stream: 'stdout' });
    for (const user of USERS) await writeFile(join(await rootOf(user), 'go'), '');
    for (let event = await stream.next(SLOW); event && event.event !== 'end'; event = await stream.next(SLOW)) {
      if (event.event === 'line') seen.push(event);
    }
    expect(seen.map((e) => e.data.text)).toContain('checked');
    expect(new Set(seen.map((e) => e.id)).size).toBe(seen.length);
    expect((await server.waitForEnd(id, SLOW)).status).toBe('succeeded');

    const middle = Math.floor(seen.length / 2);
    const resumed = await openSse(url, server.adminToken, { 'last-event-id': seen[middle]!.id! });
    const rest: SseEvent[] = [];
    for (let event = await resumed.next(SLOW); event && event.event !== 'end'; event = await resumed.next(SLOW)) {
      if (event.event === 'line') rest.push(event);
    }
    expect(rest.length).toBe(seen.length - middle - 1);
    const stdout = (events: SseEvent[]) => events.filter((e) => e.data.stream === 'stdout').map((e) => e.data.text);
    expect(stdout([...seen.slice(0, middle + 1), ...rest])).toEqual(stdout(seen));
  }, SLOW);

  it('scans the SSH hosts: one flipped by hand drifts', async () => {
    const hostsPath = '/v1/apps/live/environments/production/hosts';
    const before = await server.call('GET', hostsPath);
    expect(before.body.items.map((h: any) => [h.host, h.current?.releaseId, h.drift])).toEqual(sshd.hosts.map((host) => [host, id, false]));
    const root = await rootOf(USERS[1]!);
    await rm(join(root, 'current'));
    await symlink('releases/elsewhere', join(root, 'current'));
    const scan = await server.call('POST', `${hostsPath}/scan`);
    expect(scan.status, JSON.stringify(scan.body)).toBe(200);
    expect(scan.body.items.map((h: any) => [h.host, h.current?.releaseId ?? null, h.drift])).toEqual([
      [sshd.hosts[0], id, false],
      [sshd.hosts[1], 'elsewhere', true],
    ]);
  }, SLOW);
});
