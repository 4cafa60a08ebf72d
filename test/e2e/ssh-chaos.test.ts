import { mkdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChildServer, startChildServer } from '../support/child-server.ts';
import { startTestSshd, type TestSshd } from '../support/sshd.ts';
import { temporaryDirectory } from '../support/stand-ins.ts';

/**
 * kill -9 of `slipway dev` while a batch is switching over SSH. The host's switch runs on (it is
 * detached); after the restart the server finds its outcome on the host instead of running it
 * again, and every host ends on the release the API says is live, none half-switched.
 */
const USERS = ['slipway-ssh1', 'slipway-ssh2', 'slipway-ssh3'];
const ROOT = `slipway-chaos-${process.pid}-${Date.now().toString(36)}`;
const SLOW = 180_000;
let sshd: TestSshd;
let server: ChildServer;
let dataDir: string;

beforeAll(async () => {
  sshd = await startTestSshd(USERS);
  dataDir = await temporaryDirectory('slipway-ssh-chaos-');
  // The child server reads its SSH key and known_hosts from the environment, as `slipway dev` does.
  process.env.SLIPWAY_SSH_IDENTITY = sshd.identityFile;
  process.env.SLIPWAY_SSH_KNOWN_HOSTS = sshd.knownHostsFile;
  server = await startChildServer(dataDir);
}, SLOW);

afterAll(async () => {
  await server?.stop();
  await sshd?.stop();
  for (const user of USERS) await rm(join(await sshd.homeOf(user), ROOT), { recursive: true, force: true });
  await rm(dataDir, { recursive: true, force: true, maxRetries: 5 });
}, SLOW);

async function release(version: string) {
  const source = join(dataDir, `src-${version}`);
  await mkdir(source, { recursive: true });
  await writeFile(join(source, 'index.html'), version);
  await create({ gzip: true, file: `${source}.tar.gz`, cwd: source, portable: true }, ['index.html']);
  const artifact = await server.upload('chaos', await readFile(`${source}.tar.gz`));
  const opened = await server.call('POST', '/v1/releases', { body: { app: 'chaos', version, artifact } });
  expect(opened.status, JSON.stringify(opened.body)).toBe(202);
  return opened.body.id as string;
}

const hostFile = async (user: string, path: string) => readFile(join(await sshd.homeOf(user), ROOT, path), 'utf8').catch(() => '');

describe('kill -9 mid-switch over SSH', () => {
  it('finds the switch again on the host after the restart and runs it once', async () => {
    const applied = await server.call('PUT', '/v1/apps/chaos', {
      body: {
        name: 'chaos',
        deployRoot: `~/${ROOT}/chaos`,
        // Each switch says so in a file beside the deploy root, then takes a while: the kill lands inside.
        hooks: { postRelease: `echo "$VERSION" >> "$HOME/${ROOT}/switches"; sleep 2` },
        environments: [{ name: 'production', targets: { ssh: { hosts: sshd.hosts } }, strategy: { type: 'rolling', batchSize: 1 } }],
      },
    });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    const first = await server.waitForEnd(await release('1'), SLOW);
    expect(first.status, first.reason).toBe('succeeded');

    const second = await release('2');
    // The middle host's switch has started: its postRelease said so.
    const deadline = Date.now() + 90_000;
    while (!(await hostFile(USERS[1]!, 'switches')).includes('2')) {
      if (Date.now() > deadline) throw new Error('the middle batch never started switching');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await server.kill();
    server = await startChildServer(dataDir);

    const ended = await server.waitForEnd(second, SLOW);
    expect(ended.status, ended.reason).toBe('succeeded');
    for (const user of USERS) {
      expect(await hostFile(user, 'switches'), user).toBe('1\n2\n');
      const home = await sshd.homeOf(user);
      expect(await readlink(join(home, ROOT, 'chaos', 'current'))).toBe(`releases/${second}`);
      expect((await stat(join(home, ROOT, 'chaos', 'current'))).uid).toBe(await sshd.uidOf(user));
    }
  }, SLOW);
});
