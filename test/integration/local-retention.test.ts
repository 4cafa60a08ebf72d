import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigurationError, createLogger, createUlidGenerator, type HostCommand } from '@slipway/core';
import { createLocalFleet, createOutbox, DEFAULT_OUTPUT_RETENTION_DAYS, readLocalEnvironment } from '@slipway/local';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestServer } from '../support/dev-server.ts';
import { temporaryDirectory } from '../support/stand-ins.ts';

/**
 * Local retention: the fleet's command folders and the outbox's mails go once older than the
 * cutoff, never a command still running or still to be reported, and a deletion cut short by a
 * crash leaves nothing that trips the next start. Age comes from file times set with utimes and
 * from the cutoff handed in: nothing sleeps.
 */
const DAY_MS = 24 * 60 * 60 * 1000;
const HOSTS = ['web-1', 'web-2'];

let root: string;
let fleetDir: string;
let commandsDir: string;
let outboxDir: string;
let logs: string[];
beforeEach(async () => {
  root = await temporaryDirectory('slipway-retention-');
  fleetDir = join(root, 'fleet');
  commandsDir = join(root, 'commands');
  outboxDir = join(root, 'outbox');
  for (const host of HOSTS) await mkdir(join(fleetDir, host, 'releases'), { recursive: true });
  logs = [];
});
afterEach(async () => {
  // A command still waiting would otherwise outlive the test (until its timeout).
  for (const host of HOSTS) await writeFile(join(fleetDir, host, 'go'), '').catch(() => {});
  await rm(root, { recursive: true, force: true, maxRetries: 5 });
});

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** Sets the times of `path` and everything under it to `days` ago. */
async function age(path: string, days: number) {
  const when = new Date(Date.now() - days * DAY_MS);
  if ((await stat(path)).isDirectory()) {
    for (const name of await readdir(path)) await age(join(path, name), days);
  }
  await utimes(path, when, when);
}

async function eventually(condition: () => Promise<boolean>, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function makeFleet(failReportOf: string[] = []) {
  const attempted: string[] = [];
  const fleet = createLocalFleet({
    fleetDir,
    commandsDir,
    logger: createLogger({ service: 'test', write: (line) => logs.push(line) }),
    onCommandFinished: async (commandId) => {
      attempted.push(commandId);
      if (failReportOf.includes(commandId)) throw new Error('the release store is down');
    },
  });
  return { fleet, attempted };
}

/** A real host command that ends at once: the release pruning script. */
const quick = (commandId: string, hosts = HOSTS): HostCommand => ({
  commandId,
  hosts,
  timeoutSeconds: 60,
  script: { kind: 'prune', deployRoot: '/ignored', releaseId: 'r1', keepReleases: 5, protect: [] },
});

/**
 * A real switch whose preRelease hook waits until the test drops a `go` file on the host. It holds
 * the host's command lock while it waits, so it gets a host of its own (web-3): the other commands
 * would wait behind it on a shared one.
 */
async function waiting(commandId: string, host = 'web-3'): Promise<HostCommand> {
  await mkdir(join(fleetDir, host, 'releases', 'r1'), { recursive: true });
  await writeFile(join(fleetDir, host, 'releases', 'r1', '.slipway-ready'), '');
  return {
    commandId,
    hosts: [host],
    timeoutSeconds: 60,
    script: {
      kind: 'switch',
      deployRoot: '/ignored',
      releaseId: 'r1',
      version: '1.0.0',
      switchId: 'r1',
      preRelease: 'until [ -e "$DEPLOY_ROOT/go" ]; do sleep 0.05; done',
      postRelease: '',
      healthCheck: '',
      healthCheckAttempts: 1,
      healthCheckIntervalSeconds: 1,
    },
  };
}

const reported = (commandId: string) => exists(join(commandsDir, commandId, 'reported'));
const commandFolders = async () => (await readdir(commandsDir)).sort();

describe('local fleet retention', () => {
  it('deletes exactly the old commands that are over and reported; keeps running, unreported and recent ones', async () => {
    const { fleet, attempted } = makeFleet(['unreported']);
    await fleet.send(quick('old'));
    await fleet.send(quick('recent', ['web-2']));
    await fleet.send(quick('unreported'));
    await fleet.send(await waiting('running'));
    await eventually(async () => (await reported('old')) && (await reported('recent')), 'the quick commands are reported');
    await eventually(async () => attempted.includes('unreported') && logs.some((l) => l.includes('reporting a finished command failed')), 'a report failed');
    await eventually(async () => (await readFile(join(commandsDir, 'running', 'hosts', 'web-3', 'stdout'), 'utf8').catch(() => '')).includes('running preRelease'), 'the hook runs');

    for (const id of ['old', 'unreported', 'running']) await age(join(commandsDir, id), 45);
    await age(join(commandsDir, 'recent'), 29);
    const thirtyDaysAgo = new Date(Date.now() - 30 * DAY_MS);
    expect(await fleet.prune(thirtyDaysAgo)).toEqual(['old']);
    expect(await commandFolders()).toEqual(['recent', 'running', 'unreported']);

    // What is kept still answers as before.
    const recent = await fleet.results('recent');
    expect(recent.finished).toBe(true);
    expect(recent.invocations.map((i) => [i.host, i.status])).toEqual([['web-2', 'success']]);
    expect(recent.invocations[0]!.stdout).toContain('kept 0 releases');
    expect((await fleet.results('unreported')).finished).toBe(true);
    expect((await fleet.results('running')).finished).toBe(false);
    // A deleted command is simply unknown, as an expired one is to SSM.
    expect(await fleet.results('old')).toEqual({ finished: false, invocations: [] });

    // Even with every file older than the cutoff, a command running or yet to be reported stays.
    const tomorrow = new Date(Date.now() + DAY_MS);
    expect(await fleet.prune(tomorrow)).toEqual(['recent']);
    expect(await commandFolders()).toEqual(['running', 'unreported']);

    // Once it ends and is reported, the running one goes at the next pass.
    await writeFile(join(fleetDir, 'web-3', 'go'), '');
    await eventually(() => reported('running'), 'the waiting command is reported');
    expect((await fleet.results('running')).invocations.map((i) => i.status)).toEqual(['success']);
    expect(await fleet.prune(tomorrow)).toEqual(['running']);

    // The unreported one is reported at the next start, and then it may go.
    fleet.close();
    const restarted = makeFleet();
    await restarted.fleet.reconcile();
    await eventually(() => reported('unreported'), 'the next start reports it');
    expect(await restarted.fleet.prune(tomorrow)).toEqual(['unreported']);
    expect(await commandFolders()).toEqual([]);
    restarted.fleet.close();
  });

  it('survives a deletion or a creation cut short at any point: the next start neither throws nor reports the remains', async () => {
    const { fleet } = makeFleet();
    for (const id of ['no-command-json', 'no-run-json', 'no-host-folder', 'mid-rename']) await fleet.send(quick(id));
    await eventually(async () => {
      for (const id of ['no-command-json', 'no-run-json', 'no-host-folder', 'mid-rename']) if (!(await reported(id))) return false;
      return true;
    }, 'all are reported');
    fleet.close();

    // A crash at each step of a deletion, or of a creation, leaves one of these:
    await rm(join(commandsDir, 'no-command-json', 'command.json'));
    await rm(join(commandsDir, 'no-run-json', 'hosts', 'web-1', 'run.json'));
    await rm(join(commandsDir, 'no-run-json', 'hosts', 'web-1', 'exit'));
    await rm(join(commandsDir, 'no-run-json', 'reported'));
    await rm(join(commandsDir, 'no-host-folder', 'hosts', 'web-2'), { recursive: true });
    await rm(join(commandsDir, 'no-host-folder', 'reported'));
    await rename(join(commandsDir, 'mid-rename'), join(commandsDir, '.deleting-mid-rename'));
    await rm(join(commandsDir, '.deleting-mid-rename', 'hosts', 'web-1'), { recursive: true });
    await mkdir(join(commandsDir, 'sent-just-now'));

    const next = makeFleet();
    await next.fleet.reconcile();
    await eventually(async () => (await reported('no-run-json')) && (await reported('no-host-folder')), 'the cut-short runs are reported');
    // Only real commands were reported: nothing for the remains without command.json or mid-deletion.
    expect(next.attempted.sort()).toEqual(['no-host-folder', 'no-run-json']);

    expect(await next.fleet.results('no-command-json')).toEqual({ finished: false, invocations: [] });
    expect(await next.fleet.results('mid-rename')).toEqual({ finished: false, invocations: [] });
    const noRun = await next.fleet.results('no-run-json');
    expect(noRun.finished).toBe(true);
    expect(noRun.invocations.map((i) => [i.host, i.status])).toEqual([
      ['web-1', 'interrupted'],
      ['web-2', 'success'],
    ]);
    expect(noRun.invocations[0]!.stderr).toContain('never started');
    const noHost = await next.fleet.results('no-host-folder');
    expect(noHost.invocations.map((i) => [i.host, i.status])).toEqual([
      ['web-1', 'success'],
      ['web-2', 'interrupted'],
    ]);

    // The remains go like anything else once old; a folder of a creation under way is recent and stays.
    for (const name of await readdir(commandsDir)) if (name !== 'sent-just-now') await age(join(commandsDir, name), 45);
    const deleted = await next.fleet.prune(new Date(Date.now() - 30 * DAY_MS));
    expect(deleted.sort()).toEqual(['no-command-json', 'no-host-folder', 'no-run-json']);
    expect(await commandFolders()).toEqual(['sent-just-now']);
    next.fleet.close();
  });

  it('keeps an old command whose host process is still alive, even one reported already', async () => {
    // A crash between starting a run and recording it has it reported as interrupted while it runs.
    const dir = join(commandsDir, 'still-alive');
    await mkdir(join(dir, 'hosts', 'web-1'), { recursive: true });
    await writeFile(join(dir, 'command.json'), JSON.stringify({ hosts: ['web-1'], kind: 'prune', sentAt: new Date().toISOString() }));
    await writeFile(join(dir, 'hosts', 'web-1', 'run.json'), JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString() }));
    await writeFile(join(dir, 'reported'), new Date().toISOString());
    await age(dir, 45);
    const { fleet } = makeFleet();
    expect(await fleet.prune(new Date())).toEqual([]);
    await writeFile(join(dir, 'hosts', 'web-1', 'exit'), '0\n');
    await age(dir, 45);
    expect(await fleet.prune(new Date())).toEqual(['still-alive']);
  });

  it('finishes a deletion cut short even while the command folder is recent', async () => {
    await mkdir(join(commandsDir, '.deleting-abc', 'hosts', 'web-1'), { recursive: true });
    const { fleet } = makeFleet();
    expect(await fleet.prune(new Date(Date.now() - 30 * DAY_MS))).toEqual([]);
    expect(await readdir(commandsDir)).toEqual([]);
  });

  it('has nothing to do when no command was ever sent', async () => {
    const { fleet } = makeFleet();
    expect(await fleet.prune(new Date())).toEqual([]);
  });
});

describe('local outbox retention', () => {
  it('deletes the mails written before the cutoff and a half-written one as old, and lists the rest', async () => {
    const outbox = createOutbox(outboxDir, createUlidGenerator());
    for (const subject of ['first', 'second', 'third']) {
      await outbox.send({ to: ['lead@example.com'], subject, text: `${subject} text`, html: `<p>${subject}</p>` });
    }
    const [third, second, first] = await outbox.list();
    await age(join(outboxDir, `${first!.id}.eml`), 31);
    await age(join(outboxDir, `${second!.id}.eml`), 30.5);
    await writeFile(join(outboxDir, 'left-by-a-crash.eml.tmp'), 'From: half');
    await age(join(outboxDir, 'left-by-a-crash.eml.tmp'), 31);
    await writeFile(join(outboxDir, 'notes.txt'), 'not a mail');
    await age(join(outboxDir, 'notes.txt'), 31);

    const deleted = await outbox.prune(new Date(Date.now() - 30 * DAY_MS));
    expect(deleted.sort()).toEqual([first!.id, second!.id].sort());
    expect((await outbox.list()).map((m) => [m.id, m.subject, m.text])).toEqual([[third!.id, 'third', 'third text']]);
    expect((await readdir(outboxDir)).sort()).toEqual([`${third!.id}.eml`, 'notes.txt']);
  });

  it('has nothing to do before the first mail', async () => {
    const outbox = createOutbox(outboxDir, createUlidGenerator());
    expect(await outbox.prune(new Date())).toEqual([]);
  });
});

describe('the dev server', () => {
  /** A finished, reported command as the fleet leaves it, without running one. */
  async function finishedCommand(dataDir: string, id: string) {
    const dir = join(dataDir, 'commands', id);
    await mkdir(join(dir, 'hosts', 'web-1'), { recursive: true });
    await writeFile(join(dir, 'command.json'), JSON.stringify({ hosts: ['web-1'], kind: 'prune', sentAt: new Date().toISOString() }));
    await writeFile(join(dir, 'hosts', 'web-1', 'run.json'), JSON.stringify({ startedAt: new Date().toISOString() }));
    await writeFile(join(dir, 'hosts', 'web-1', 'stdout'), 'kept 1 releases\n');
    await writeFile(join(dir, 'hosts', 'web-1', 'exit'), '0\n');
    await writeFile(join(dir, 'reported'), new Date().toISOString());
  }

  it('runs the retention pass at start-up with the configured days', async () => {
    const dataDir = await temporaryDirectory('slipway-dev-retention-');
    await finishedCommand(dataDir, 'three-days-old');
    await finishedCommand(dataDir, 'yesterday');
    await mkdir(join(dataDir, 'outbox'), { recursive: true });
    await writeFile(join(dataDir, 'outbox', 'three-days-old.eml'), 'Subject: old\r\n\r\n');
    await writeFile(join(dataDir, 'outbox', 'yesterday.eml'), 'Subject: newer\r\n\r\n');
    await age(join(dataDir, 'commands', 'three-days-old'), 3);
    await age(join(dataDir, 'commands', 'yesterday'), 1);
    await age(join(dataDir, 'outbox', 'three-days-old.eml'), 3);
    await age(join(dataDir, 'outbox', 'yesterday.eml'), 1);

    const server = await startTestServer(dataDir, { demo: false, outputRetentionDays: 2 });
    try {
      expect(await readdir(join(dataDir, 'commands'))).toEqual(['yesterday']);
      expect(await readdir(join(dataDir, 'outbox'))).toEqual(['yesterday.eml']);
      const line = server.logs.map((l) => JSON.parse(l)).find((l) => l.message === 'old local output deleted');
      expect(line).toMatchObject({ commands: 1, mails: 1 });
    } finally {
      await server.stop();
    }
  });
});

describe('SLIPWAY_RETENTION_OUTPUT_DAYS', () => {
  it('is 1 to 3650 whole days, 30 when unset', () => {
    expect(DEFAULT_OUTPUT_RETENTION_DAYS).toBe(30);
    expect(readLocalEnvironment({}).SLIPWAY_RETENTION_OUTPUT_DAYS).toBeUndefined();
    expect(readLocalEnvironment({ SLIPWAY_RETENTION_OUTPUT_DAYS: '1' }).SLIPWAY_RETENTION_OUTPUT_DAYS).toBe(1);
    expect(readLocalEnvironment({ SLIPWAY_RETENTION_OUTPUT_DAYS: '3650' }).SLIPWAY_RETENTION_OUTPUT_DAYS).toBe(3650);
  });

  it.each(['0', '3651', '-1', '1.5', '7d', '1e3', '0x10', ''])('refuses %j and names the variable', (value) => {
    const read = () => readLocalEnvironment({ SLIPWAY_RETENTION_OUTPUT_DAYS: value });
    expect(read).toThrow(ConfigurationError);
    expect(read).toThrow(/SLIPWAY_RETENTION_OUTPUT_DAYS must be a whole number of days, 1 to 3650/);
  });
});
