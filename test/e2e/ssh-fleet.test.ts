import { createHash } from 'node:crypto';
import { access, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { createLogger, type HostCommand, type HostScript } from '@slipway/core';
import { createSshFleet, type SshFleet, type SshFleetOptions } from '@slipway/local';
import { create } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestSshd, type TestSshd } from '../support/sshd.ts';
import { temporaryDirectory } from '../support/stand-ins.ts';

/**
 * The SSH fleet on its own against a real sshd: what the server finds again after a crash or a
 * dropped connection, how an artifact reaches a host that cannot fetch it, and timeouts.
 */
const USERS = ['slipway-ssh1', 'slipway-ssh2'];
const ROOT = `slipway-fleet-${process.pid}-${Date.now().toString(36)}`;
const SLOW = 120_000;
let sshd: TestSshd;
let work: string;
let artifactServer: Server;
let artifactUrl = '';
let artifactSha = '';
const downloads: string[] = [];
const logger = createLogger({ service: 'ssh-fleet-test', level: 'error', write: () => {} });

beforeAll(async () => {
  sshd = await startTestSshd(USERS);
  work = await temporaryDirectory('slipway-ssh-fleet-');
  await mkdir(join(work, 'src'));
  await writeFile(join(work, 'src', 'index.html'), 'hello over ssh');
  await create({ gzip: true, file: join(work, 'artifact.tar.gz'), cwd: join(work, 'src'), portable: true }, ['index.html']);
  const bytes = await readFile(join(work, 'artifact.tar.gz'));
  artifactSha = createHash('sha256').update(bytes).digest('hex');
  artifactServer = createServer((request, response) => {
    downloads.push(String(request.headers['user-agent']));
    response.end(bytes);
  });
  await new Promise<void>((resolve) => artifactServer.listen(0, '127.0.0.1', resolve));
  artifactUrl = `http://127.0.0.1:${(artifactServer.address() as { port: number }).port}/artifact.tar.gz`;
}, SLOW);

afterAll(async () => {
  artifactServer?.close();
  await sshd?.stop();
  for (const user of USERS) await rm(join(await sshd.homeOf(user), ROOT), { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
}, SLOW);

/** A fleet whose finished commands resolve `finished(commandId)`. */
async function fleetOn(journal: string, options: Partial<SshFleetOptions> = {}) {
  const waiters = new Map<string, () => void>();
  const done = new Set<string>();
  const fleet: SshFleet = await createSshFleet({
    identityFile: sshd.identityFile,
    knownHostsFile: sshd.knownHostsFile,
    commandsDir: journal,
    logger,
    onCommandFinished: async (commandId) => {
      done.add(commandId);
      waiters.get(commandId)?.();
    },
    ...options,
  });
  const finished = (commandId: string) =>
    done.has(commandId) ? Promise.resolve() : new Promise<void>((resolve) => waiters.set(commandId, resolve));
  return { fleet, finished };
}

function distribute(app: string, releaseId: string, postDeploy: string): HostScript {
  return {
    kind: 'distribute',
    deployRoot: `~/${ROOT}/${app}`,
    releaseId,
    version: '1',
    artifactUrl,
    sha256: artifactSha,
    sharedPaths: [],
    postDeploy,
  };
}

const command = (commandId: string, script: HostScript, timeoutSeconds = 60): HostCommand => ({
  commandId,
  hosts: sshd.hosts,
  script,
  timeoutSeconds,
});

async function onHost(user: string, path: string) {
  return readFile(join(await sshd.homeOf(user), ROOT, path), 'utf8').catch(() => null);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The command's run folder on the user's host has said its pid: the command is running there. */
async function runningOn(user: string, app: string, commandId: string) {
  const pid = join(await sshd.homeOf(user), ROOT, app, '.slipway', 'commands', commandId, 'pid');
  return access(pid).then(
    () => true,
    () => false,
  );
}

// postDeploy counts its runs in a file beside the deploy root, and takes long enough to be cut.
const countedSlowHook = (app: string) => `echo run >> "$HOME/${ROOT}/${app}.runs"; sleep 2`;

describe('the SSH fleet', () => {
  it('finds a command again after the server stops mid-command, and does not run it twice', async () => {
    const journal = join(work, 'journal-crash');
    const first = await fleetOn(journal);
    const commandId = 'crash-1';
    await first.fleet.send(command(commandId, distribute('crash', 'r1', countedSlowHook('crash'))));
    for (const user of USERS) await until('the run on the host', () => runningOn(user, 'crash', commandId));
    // The server goes away: every connection drops, nothing is reported.
    first.fleet.close();
    expect((await first.fleet.results(commandId)).finished).toBe(false);

    const second = await fleetOn(journal);
    await second.fleet.reconcile();
    await second.finished(commandId);
    const { finished, invocations } = await second.fleet.results(commandId);
    expect(finished).toBe(true);
    for (const invocation of invocations) expect(invocation, invocation.stderr).toMatchObject({ status: 'success', exitCode: 0 });
    for (const user of USERS) {
      expect(await onHost(user, 'crash.runs')).toBe('run\n');
      expect(await onHost(user, 'crash/releases/r1/index.html')).toBe('hello over ssh');
    }
    // Sent again (a retried stage), it is neither run again nor reported twice.
    let reportedAgain = false;
    const third = await fleetOn(journal, {
      onCommandFinished: async () => {
        reportedAgain = true;
      },
    });
    await third.fleet.send(command(commandId, distribute('crash', 'r1', countedSlowHook('crash'))));
    await third.fleet.settle(30_000);
    expect(reportedAgain).toBe(false);
    third.fleet.close();
    for (const user of USERS) expect(await onHost(user, 'crash.runs')).toBe('run\n');
    second.fleet.close();
  }, SLOW);

  it('follows the same run again when the connection drops mid-command', async () => {
    // One try to reach a host: a run already launched is followed past it, until its own timeout.
    const { fleet, finished } = await fleetOn(join(work, 'journal-drop'), { connectAttempts: 1 });
    const commandId = 'drop-1';
    await fleet.send(command(commandId, distribute('drop', 'r1', countedSlowHook('drop'))));
    await until('the run on the host', () => runningOn(USERS[0]!, 'drop', commandId));
    expect(await sshd.dropConnections(USERS[0]!)).toBeGreaterThan(0);
    await finished(commandId);
    const { invocations } = await fleet.results(commandId);
    for (const invocation of invocations) expect(invocation, invocation.stderr).toMatchObject({ status: 'success', exitCode: 0 });
    for (const user of USERS) expect(await onHost(user, 'drop.runs')).toBe('run\n');
    // The output came back whole although the first connection saw only part of it.
    expect(invocations[0]!.stdout).toContain('distributed release r1');
    fleet.close();
  }, SLOW);

  it('streams the artifact over SSH to a host that cannot reach the store', async () => {
    const { fleet, finished } = await fleetOn(join(work, 'journal-stream'), { artifactDelivery: 'stream' });
    downloads.length = 0;
    await fleet.send(command('stream-1', distribute('stream', 'r1', '')));
    await finished('stream-1');
    const { invocations } = await fleet.results('stream-1');
    for (const invocation of invocations) expect(invocation, invocation.stderr).toMatchObject({ status: 'success' });
    for (const user of USERS) expect(await onHost(user, 'stream/releases/r1/index.html')).toBe('hello over ssh');
    // The server read the store once per host; no host fetched the URL itself.
    expect(downloads).toHaveLength(USERS.length);
    expect(downloads.filter((agent) => agent.startsWith('curl'))).toEqual([]);
    fleet.close();
  }, SLOW);

  it('lets a host fetch the artifact itself when it can reach the store', async () => {
    const { fleet, finished } = await fleetOn(join(work, 'journal-url'));
    downloads.length = 0;
    await fleet.send(command('url-1', distribute('url', 'r1', '')));
    await finished('url-1');
    for (const user of USERS) expect(await onHost(user, 'url/releases/r1/index.html')).toBe('hello over ssh');
    expect(downloads.filter((agent) => agent.startsWith('curl'))).toHaveLength(USERS.length);
    fleet.close();
  }, SLOW);

  it('times a command out on the host', async () => {
    const { fleet, finished } = await fleetOn(join(work, 'journal-timeout'));
    await fleet.send(command('timeout-1', distribute('timeout', 'r1', 'sleep 30'), 2));
    await finished('timeout-1');
    const { invocations } = await fleet.results('timeout-1');
    for (const invocation of invocations) expect(invocation).toMatchObject({ status: 'timed_out', exitCode: 124 });
    fleet.close();
  }, SLOW);

  it('keeps the journal of a distribute command (it holds a presigned URL) to the server\'s user', async () => {
    const journal = join(work, 'journal-url');
    const [commandId] = await readdir(journal);
    expect((await stat(join(journal, commandId!, 'command.json'))).mode & 0o777).toBe(0o600);
  });
});
