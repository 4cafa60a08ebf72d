import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import { createLogger, type HostCommand } from '@slipway/core';
import { createLocalFleet, HOST_SCRIPT_NICENESS } from '@slipway/local';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { temporaryDirectory } from '../support/stand-ins.ts';

/**
 * The local fleet runs at most `maxConcurrentHosts` host scripts at once, starts the others as
 * runs end, and a run still waiting its turn when the server stops is started on the next start.
 * Scripts wait on a gate file the test drops: nothing sleeps, nothing is timed.
 */
const HOSTS = ['web-1', 'web-2', 'web-3', 'web-4', 'web-5'];

let root: string;
let fleetDir: string;
let commandsDir: string;
let gate: string;
let active: string;
beforeEach(async () => {
  root = await temporaryDirectory('slipway-scheduling-');
  fleetDir = join(root, 'fleet');
  commandsDir = join(root, 'commands');
  gate = join(root, 'go');
  active = join(root, 'active');
  await mkdir(active, { recursive: true });
  for (const host of HOSTS) {
    await mkdir(join(fleetDir, host, 'releases', 'r1'), { recursive: true });
    await writeFile(join(fleetDir, host, 'releases', 'r1', '.slipway-ready'), '');
  }
});
afterEach(async () => {
  await writeFile(gate, '').catch(() => {});
  await rm(root, { recursive: true, force: true, maxRetries: 5 });
});

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

async function eventually(condition: () => Promise<boolean>, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A switch whose preRelease hook marks its host active, writes down how many hosts are active
 * with it, waits for the gate, and unmarks itself.
 */
function gated(commandId: string, hosts = HOSTS): HostCommand {
  const hook = [
    `touch "${active}/$(basename "$DEPLOY_ROOT")"`,
    `ls "${active}" | wc -l > "$DEPLOY_ROOT/seen-active"`,
    `until [ -e "${gate}" ]; do sleep 0.02; done`,
    `rm -f "${active}/$(basename "$DEPLOY_ROOT")"`,
  ].join('\n');
  return {
    commandId,
    hosts,
    timeoutSeconds: 60,
    script: {
      kind: 'switch',
      deployRoot: '/ignored',
      releaseId: 'r1',
      version: '1.0.0',
      switchId: 'r1',
      preRelease: hook,
      postRelease: '',
      healthCheck: '',
      healthCheckAttempts: 1,
      healthCheckIntervalSeconds: 1,
    },
  };
}

function makeFleet(maxConcurrentHosts: number) {
  const finished: string[] = [];
  const fleet = createLocalFleet({
    fleetDir,
    commandsDir,
    maxConcurrentHosts,
    logger: createLogger({ service: 'test', write: () => {} }),
    onCommandFinished: async (commandId) => {
      finished.push(commandId);
    },
  });
  return { fleet, finished };
}

const started = async (commandId: string) => {
  const hosts = await readdir(join(commandsDir, commandId, 'hosts')).catch(() => [] as string[]);
  const runs = await Promise.all(hosts.map((host) => exists(join(commandsDir, commandId, 'hosts', host, 'run.json'))));
  return runs.filter(Boolean).length;
};

describe('local fleet scheduling', () => {
  it('runs at most maxConcurrentHosts scripts at once and starts the rest as runs end', async () => {
    const { fleet, finished } = makeFleet(2);
    await fleet.send(gated('c1'));
    // Two runs hold the gate; the three others wait their turn, counted as running, not started.
    await eventually(async () => (await readdir(active)).length === 2, 'two hosts are active');
    expect(await started('c1')).toBe(2);
    const { finished: done, invocations } = await fleet.results('c1');
    expect(done).toBe(false);
    expect(invocations).toEqual([]);

    await writeFile(gate, '');
    await eventually(async () => finished.includes('c1'), 'the command is reported');
    const results = await fleet.results('c1');
    expect(results.finished).toBe(true);
    expect(results.invocations.map((run) => run.status)).toEqual(HOSTS.map(() => 'success'));
    for (const host of HOSTS) {
      expect(Number((await readFile(join(fleetDir, host, 'seen-active'), 'utf8')).trim()), host).toBeLessThanOrEqual(2);
    }
    fleet.close();
  });

  it('runs host scripts at a lower CPU priority than the server, so the API keeps its share of the cores', async () => {
    const { fleet, finished } = makeFleet(2);
    const command = gated('c-nice', ['web-1', 'web-2']);
    if (command.script.kind !== 'switch') throw new Error('a switch');
    await fleet.send({ ...command, script: { ...command.script, preRelease: 'nice > "$DEPLOY_ROOT/niceness"' } });
    await eventually(async () => finished.includes('c-nice'), 'the command is reported');
    for (const host of ['web-1', 'web-2']) {
      const niceness = Number((await readFile(join(fleetDir, host, 'niceness'), 'utf8')).trim());
      expect(niceness, host).toBe(Math.min(19, getPriority() + HOST_SCRIPT_NICENESS));
      expect(niceness, host).toBeGreaterThan(getPriority());
    }
    fleet.close();
  });

  it('starts the runs still waiting their turn when the server stopped, on the next start', async () => {
    const first = makeFleet(1);
    await first.fleet.send(gated('c2', ['web-1', 'web-2']));
    await eventually(async () => (await readdir(active)).length === 1, 'one host is active');
    first.fleet.close();
    expect(await started('c2')).toBe(1);

    const second = makeFleet(1);
    await second.fleet.reconcile();
    await writeFile(gate, '');
    await eventually(async () => second.finished.includes('c2'), 'the next fleet reports the command');
    const results = await second.fleet.results('c2');
    expect(results.invocations.map((run) => [run.host, run.status])).toEqual([
      ['web-1', 'success'],
      ['web-2', 'success'],
    ]);
    expect(first.finished).toEqual([]);
    second.fleet.close();
  });

  it('counts a run as over only once its exit code is written whole: an empty exit file is a run still writing, or cut short', async () => {
    // A run folder as a run leaves it when it is killed between creating its exit file and writing
    // it, beside one whose process still lives and one that ended well.
    const command = 'c-exit';
    await mkdir(join(commandsDir, command), { recursive: true });
    await writeFile(join(commandsDir, command, 'command.json'), JSON.stringify({ hosts: ['web-1', 'web-2', 'web-3'], kind: 'switch', timeoutSeconds: 60 }));
    const gone = spawnSync('true').pid;
    const run = async (host: string, pid: number, exit: string) => {
      const dir = join(commandsDir, command, 'hosts', host);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'run.json'), JSON.stringify({ pid, startedAt: new Date().toISOString() }));
      await writeFile(join(dir, 'exit'), exit);
    };
    await run('web-1', gone, '');
    await run('web-2', process.pid, '');
    await run('web-3', gone, '0\n');
    const { fleet } = makeFleet(2);
    const writing = await fleet.results(command);
    expect(writing.finished).toBe(false);
    expect(writing.invocations.map((invocation) => [invocation.host, invocation.status, invocation.exitCode])).toEqual([
      ['web-1', 'interrupted', null],
      ['web-3', 'success', 0],
    ]);

    await writeFile(join(commandsDir, command, 'hosts', 'web-2', 'exit'), '23\n');
    const over = await fleet.results(command);
    expect(over.finished).toBe(true);
    expect(over.invocations.map((invocation) => [invocation.host, invocation.status, invocation.exitCode])).toEqual([
      ['web-1', 'interrupted', null],
      ['web-2', 'failed', 23],
      ['web-3', 'success', 0],
    ]);
    fleet.close();
  });

  it('leaves no file of its own behind a run that started: the waiting mark is a second name of the script', async () => {
    const { fleet, finished } = makeFleet(1);
    await fleet.send(gated('c-mark', ['web-1', 'web-2']));
    await eventually(async () => (await readdir(active)).length === 1, 'one host is active');
    // The other run waits its turn: its mark is the script's inode, so taking it away frees none.
    const waitingHost = (await readdir(active))[0] === 'web-1' ? 'web-2' : 'web-1';
    const waiting = join(commandsDir, 'c-mark', 'hosts', waitingHost);
    const [mark, script] = await Promise.all([stat(join(waiting, 'waiting')), stat(join(waiting, 'script.sh'))]);
    expect(mark.ino).toBe(script.ino);
    expect(script.nlink).toBe(2);
    await writeFile(gate, '');
    await eventually(async () => finished.includes('c-mark'), 'the command is reported');
    expect((await readdir(waiting)).sort()).toEqual(['exit', 'run.json', 'script.sh', 'stderr', 'stdout']);
    expect((await stat(join(waiting, 'script.sh'))).nlink).toBe(1);
    fleet.close();
  });

  it('starts each run once when its command is sent again while runs wait their turn (a retried or resumed step)', async () => {
    const { fleet, finished } = makeFleet(1);
    const command = gated('c-again', ['web-1', 'web-2', 'web-3']);
    if (command.script.kind !== 'switch') throw new Error('a switch');
    const counted: HostCommand = { ...command, script: { ...command.script, preRelease: `echo run >> "$DEPLOY_ROOT/runs"\n${command.script.preRelease}` } };
    await fleet.send(counted);
    await eventually(async () => (await readdir(active)).length === 1, 'one host is active');
    await fleet.send(counted);
    await writeFile(gate, '');
    await eventually(async () => finished.includes('c-again'), 'the command is reported');
    expect((await fleet.results('c-again')).invocations.map((run) => run.status)).toEqual(['success', 'success', 'success']);
    for (const host of ['web-1', 'web-2', 'web-3']) expect(await readFile(join(fleetDir, host, 'runs'), 'utf8'), host).toBe('run\n');
    fleet.close();
  });

  it('ends a run whose process is killed before it can tell once its script is over too, reports it interrupted, and then starts the next run', async () => {
    const { fleet, finished } = makeFleet(1);
    await fleet.send(gated('c-killed', ['web-1', 'web-2']));
    await eventually(async () => (await readdir(active)).length === 1, 'one host is active');
    const first = (await readdir(active))[0]!;
    const second = first === 'web-1' ? 'web-2' : 'web-1';
    const runFile = join(commandsDir, 'c-killed', 'hosts', first, 'run.json');
    await eventually(() => exists(runFile), 'the first run has its run.json');
    const { pid, group } = JSON.parse(await readFile(runFile, 'utf8')) as { pid: number; group: number };
    expect(group).toBeGreaterThan(0);
    // The run's own process (the one that would write its exit code), not the script below it: the
    // script goes on, may still switch its host, and keeps its place until it ends.
    process.kill(pid, 'SIGKILL');
    await writeFile(gate, '');
    await eventually(async () => finished.includes('c-killed'), 'the command is reported');
    const results = await fleet.results('c-killed');
    expect(Object.fromEntries(results.invocations.map((run) => [run.host, run.status]))).toEqual({ [first]: 'interrupted', [second]: 'success' });
    expect(Number((await readFile(join(fleetDir, second, 'seen-active'), 'utf8')).trim())).toBe(1);
    fleet.close();
  });
});
