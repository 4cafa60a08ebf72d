/**
 * The installed command, run as a person or a script runs it: `node packages/cli/bin/slipway.js`
 * in a child process, its exit code, stdout and stderr. The bundle is built first (as `npm ci`
 * does), so these runs go through dist/slipway.mjs.
 */
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createProgram } from '@slipway/cli';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { temporaryDirectory } from '../support/stand-ins.ts';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(repo, 'packages/cli');
const bin = join(cli, 'bin/slipway.js');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeout?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'node',
      [file, ...args],
      { cwd: options.cwd ?? repo, env: options.env ?? process.env, timeout: options.timeout ?? 20_000 },
      (error, stdout, stderr) => {
        const failed = error as (Error & { code?: number | string; signal?: NodeJS.Signals }) | null;
        resolve({
          code: failed ? (typeof failed.code === 'number' ? failed.code : null) : 0,
          signal: failed?.signal ?? null,
          stdout,
          stderr,
        });
      },
    );
  });
}

let server: TestServer;
let workspace: string;

/** The real binary against the test server, as the admin unless `env` says otherwise. */
const slipway = (args: string[], env: Record<string, string> = {}, options: { cwd?: string } = {}) =>
  run(bin, args, { ...options, env: { ...process.env, SLIPWAY_URL: server.url, SLIPWAY_TOKEN: server.adminToken, ...env } });

beforeAll(async () => {
  const built = await run(join(cli, 'scripts/build.mjs'), [], { timeout: 60_000 });
  if (built.code !== 0) throw new Error(`the bundle did not build: ${built.stderr}`);
  server = await startTestServer();
  workspace = await temporaryDirectory('slipway-bin-');
});
afterAll(async () => {
  await server?.stop();
  await rm(workspace, { recursive: true, force: true });
});

/** A command of the tree, as far as these tests look at it. */
interface CommandNode {
  name(): string;
  readonly commands: readonly CommandNode[];
}

function commandPaths(command: CommandNode, path: string[] = []): string[][] {
  return command.commands.flatMap((sub) => [[...path, sub.name()], ...commandPaths(sub, [...path, sub.name()])]);
}

describe('slipway, the binary', () => {
  it('prints its version with --version and -V', async () => {
    const { version } = JSON.parse(await readFile(join(cli, 'package.json'), 'utf8'));
    for (const flag of ['--version', '-V']) {
      expect(await run(bin, [flag])).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' });
    }
    expect(await run(join(cli, 'dist/slipway.mjs'), ['--version'])).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it('has a command for each API noun and verb it covers', () => {
    const paths = commandPaths(createProgram({ env: {}, io: { out: () => {}, err: () => {} }, exitCode: 0 })).map((p) => p.join(' '));
    expect(paths).toEqual([
      'dev',
      'apply',
      'artifact',
      'artifact push',
      'release',
      'release open',
      'release list',
      'release show',
      'release watch',
      'release history',
      'release cancel',
      'release promote',
      'release approve',
      'release reject',
      'rollback',
      'hosts',
      'token',
      'token create',
      'token list',
      'token revoke',
      'audit',
    ]);
  });

  it('answers --help and help <command> on every command with its usage, exit 0, nothing on stderr', async () => {
    const paths = [[], ...commandPaths(createProgram({ env: {}, io: { out: () => {}, err: () => {} }, exitCode: 0 }))];
    // No token and no server: help needs neither.
    const env = { ...process.env, SLIPWAY_TOKEN: '', SLIPWAY_URL: 'http://127.0.0.1:9' };
    await Promise.all(
      paths.map(async (path) => {
        const flagged = await run(bin, [...path, '--help'], { env });
        expect(flagged, path.join(' ')).toMatchObject({ code: 0, stderr: '' });
        expect(flagged.stdout).toMatch(new RegExp(`^Usage: ${['slipway', ...path].join(' ')} `));
        const asked = await run(bin, ['help', ...path], { env });
        expect(asked, `help ${path.join(' ')}`).toMatchObject({ code: 0, stdout: flagged.stdout });
      }),
    );
    const top = await run(bin, ['--help'], { env });
    expect(top.stdout).toContain('slipway release cancel <id>');
    expect(top.stdout).toContain('SLIPWAY_TOKEN');
    expect((await run(bin, ['release', 'open', '-h'], { env })).stdout).toContain('--artifact <key>');
  });

  it('answers dev --help without starting a server or making a data folder', async () => {
    const cwd = await temporaryDirectory('slipway-dev-help-');
    try {
      const port = await freePort();
      for (const args of [['dev', '--help'], ['help', 'dev'], ['dev', '-h']]) {
        // A started server would run until a signal: the timeout would kill it (signal set, no code).
        const answered = await run(bin, args, { cwd, env: { ...process.env, PORT: String(port), SLIPWAY_DATA_DIR: '' }, timeout: 10_000 });
        expect(answered, args.join(' ')).toMatchObject({ code: 0, signal: null, stderr: '' });
        expect(answered.stdout).toMatch(/^Usage: slipway dev/);
        await expect(stat(join(cwd, '.slipway'))).rejects.toMatchObject({ code: 'ENOENT' });
        await expect(listenOn(port)).resolves.toBeUndefined();
      }
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });

  it('runs dev from the bundle (the server is loaded from its sources) and stops on Ctrl-C', async () => {
    const cwd = await temporaryDirectory('slipway-dev-run-');
    try {
      const child = spawn('node', [bin, 'dev'], { cwd, env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`dev did not start: ${stderr}`)), 20_000);
        child.stderr.on('data', (chunk) => {
          stderr += chunk;
          const found = /Slipway is running at (http:\/\/127\.0\.0\.1:\d+)\//.exec(stderr);
          if (found) {
            clearTimeout(timer);
            resolve(found[1]!);
          }
        });
        child.on('exit', () => reject(new Error(`dev exited: ${stderr}`)));
      });
      expect((await fetch(`${url}/v1/releases`)).status).toBe(401);
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect((await stat(join(cwd, '.slipway'))).isDirectory()).toBe(true);
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });

  it('suggests the command or flag meant, with exit 2', async () => {
    const command = await slipway(['relase', 'list']);
    expect(command).toMatchObject({ code: 2, stdout: '' });
    expect(command.stderr).toContain('unknown command \'relase\'');
    expect(command.stderr).toContain('Did you mean release?');
    expect(command.stderr).toContain('run "slipway --help" for usage');

    const subcommand = await slipway(['release', 'lst']);
    expect(subcommand).toMatchObject({ code: 2, stderr: expect.stringContaining('Did you mean list?') });

    const flag = await slipway(['release', 'list', '--limt', '5']);
    expect(flag).toMatchObject({ code: 2, stdout: '' });
    expect(flag.stderr).toContain('unknown option \'--limt\'');
    expect(flag.stderr).toContain('Did you mean --limit?');
    expect(flag.stderr).toContain('run "slipway release list --help" for usage');
  });

  it('exits 2 on every usage error, naming the flag or argument and where to look', async () => {
    const cases: [string[], RegExp][] = [
      [['release', 'list', '--limit', 'abc'], /--limit <n>' argument 'abc' is invalid\. expected a whole number/],
      [['audit', '--limit', '0'], /--limit <n>' argument '0' is invalid/],
      [['release', 'watch', 'x', '--interval', 'soon'], /--interval <seconds>' argument 'soon' is invalid/],
      [['token', 'create', '--name', 'a', '--role', 'viewer', '--expires-in', '1h'], /--expires-in <seconds>' argument '1h' is invalid/],
      [['release', 'open', '--app', 'demo'], /--version, --artifact are required/],
      [['release', 'open', '--app', 'demo', '--version', '1', '--artifact', 'x'], /--artifact must be a key/],
      [['release', 'list', '--app'], /option '--app <app>' argument missing/],
      [['release', 'show'], /missing required argument 'id'/],
      [['token', 'revoke', 'a', 'b'], /too many arguments for 'revoke'/],
      [['release'], /Usage: slipway release/],
      [[], /Usage: slipway/],
    ];
    for (const [args, message] of cases) {
      const result = await slipway(args);
      expect(result, args.join(' ')).toMatchObject({ code: 2, stdout: '', stderr: expect.stringMatching(message) });
    }
    expect((await slipway(['release', 'list'], { SLIPWAY_TOKEN: '' })).stderr).toMatch(/set SLIPWAY_TOKEN/);
  });

  it('exits 1 when the API refuses, with its message', async () => {
    const missing = await slipway(['release', 'show', '01jzzzzzzzzzzzzzzzzzzzzzzz']);
    expect(missing).toMatchObject({ code: 1, stdout: '', stderr: expect.stringMatching(/^slipway: release 01jzzzzzzzzzzzzzzzzzzzzzzz does not exist/) });
  });

  it('cancels a release at its gate, shows its history and the audit trail, as text and as JSON', async () => {
    const id = await gatedRelease('cli-cancel', 'lead@example.com');
    const cancelled = await slipway(['release', 'cancel', id, '--json']);
    expect(cancelled).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(cancelled.stdout)).toEqual({ id, status: 'cancelled' });
    expect((await server.waitForEnd(id)).status).toBe('cancelled');

    const again = await slipway(['release', 'cancel', id]);
    expect(again).toMatchObject({ code: 1, stderr: expect.stringMatching(/cancelled/) });

    const history = await slipway(['release', 'history', id, '--json']);
    expect(history.code).toBe(0);
    const events = JSON.parse(history.stdout).events as { type: string; state?: string }[];
    expect(events.some((e) => e.state === 'AwaitApproval')).toBe(true);
    const historyText = await slipway(['release', 'history', id]);
    expect(historyText.stdout).toMatch(/^execution \S+ {2}[A-Z_]+ {2}\(started /);
    expect(historyText.stdout).toContain('AwaitApproval');

    const audit = await slipway(['audit', '--limit', '5', '--json']);
    const entries = JSON.parse(audit.stdout).items as { action: string; subject: string }[];
    expect(entries).toContainEqual(expect.objectContaining({ action: 'release.cancelled', subject: `releases/${id}` }));
    const auditText = await slipway(['audit', '--limit', '1']);
    expect(auditText.stdout).toMatch(/^\S+ {2}admin {2}release\.cancelled {2}releases\//);
    expect(auditText.stdout).toMatch(/\nmore: --cursor [0-9a-z]{26}\n$/);
  });

  it('approves and rejects at a gate as the approver the token names', async () => {
    const approverToken = await server.tokenFor('approver', 'gate-keeper@example.com');
    const first = await gatedRelease('cli-approve', 'gate-keeper@example.com');
    const viewer = await server.tokenFor('viewer', 'cli-viewer@example.com');
    expect(await slipway(['release', 'approve', first], { SLIPWAY_TOKEN: viewer })).toMatchObject({ code: 1 });

    const approved = await slipway(['release', 'approve', first, '--reason', 'looks right'], { SLIPWAY_TOKEN: approverToken });
    expect(approved).toMatchObject({ code: 0, stdout: `approved release ${first} in live (gate approved)\n` });
    expect((await server.waitForEnd(first)).status).toBe('succeeded');

    const second = await gatedRelease('cli-approve', 'gate-keeper@example.com', '2');
    const rejected = await slipway(['release', 'reject', second, '--environment', 'live', '--reason', 'not today', '--json'], {
      SLIPWAY_TOKEN: approverToken,
    });
    expect(rejected.code, rejected.stderr).toBe(0);
    expect(JSON.parse(rejected.stdout)).toEqual({ environment: 'live', decision: 'reject', gate: 'rejected' });
    const ended = await server.waitForEnd(second);
    expect(ended.status).toBe('rejected');
  });

  it('prints the API\'s JSON with --json for every command that prints data', async () => {
    const folder = join(workspace, 'json-build');
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'index.html'), 'json');
    const config = join(workspace, 'json-app.json');
    await writeFile(config, JSON.stringify({ name: 'cli-json', deployRoot: '/srv/cli-json', environments: [{ name: 'live', targets: { hosts: ['cj-1'] } }] }));
    await mkdir(join(server.dataDir, 'fleet', 'cj-1'), { recursive: true });

    const parsed = async (args: string[]) => {
      const result = await slipway([...args, '--json']);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
      return JSON.parse(result.stdout);
    };
    expect(await parsed(['apply', config])).toMatchObject({ revision: 1 });
    const pushed = await parsed(['artifact', 'push', folder, '--app', 'cli-json']);
    expect(pushed).toMatchObject({ key: expect.stringMatching(/^artifacts\/cli-json\//), uploaded: true });
    const opened = await parsed(['release', 'open', '--app', 'cli-json', '--version', '1', '--artifact', pushed.key]);
    expect(opened).toMatchObject({ id: expect.any(String), status: 'pending' });
    const watched = await parsed(['release', 'watch', opened.id, '--interval', '0.1']);
    expect(watched).toMatchObject({ id: opened.id, status: 'succeeded' });
    expect((await parsed(['release', 'show', opened.id])).environments[0].hosts[0]).toMatchObject({ host: 'cj-1' });
    expect((await parsed(['release', 'list', '--app', 'cli-json', '--limit', '1'])).items).toHaveLength(1);
    expect((await parsed(['hosts', 'cli-json', 'live'])).items).toEqual([expect.objectContaining({ host: 'cj-1', expected: opened.id, drift: false })]);
    const created = await parsed(['token', 'create', '--name', 'json@example.com', '--role', 'viewer', '--expires-in', '3600']);
    expect(created).toMatchObject({ name: 'json@example.com', role: 'viewer', token: expect.any(String) });
    expect((await parsed(['token', 'list'])).items).toContainEqual(expect.objectContaining({ name: 'json@example.com' }));
    expect(await parsed(['token', 'revoke', 'json@example.com'])).toEqual({ name: 'json@example.com', revoked: true });
    expect((await parsed(['audit'])).items.length).toBeGreaterThan(0);
  });

  it('runs the bundle only while it is as new as the sources, else the sources through tsx', async () => {
    const layout = await temporaryDirectory('slipway-bin-layout-');
    try {
      await mkdir(join(layout, 'bin'));
      await mkdir(join(layout, 'dist'));
      await mkdir(join(layout, 'src'));
      await copyFile(bin, join(layout, 'bin/slipway.js'));
      await writeFile(join(layout, 'package.json'), '{"type":"module"}');
      await writeFile(join(layout, 'src/bin.ts'), 'const from: string = \'sources\';\nconsole.log(from);\n');
      await writeFile(join(layout, 'dist/slipway.mjs'), 'console.log(\'bundle\');\n');
      await symlink(join(repo, 'node_modules'), join(layout, 'node_modules'));
      const past = new Date(Date.now() - 60_000);
      await utimes(join(layout, 'package.json'), past, past);
      await utimes(join(layout, 'src/bin.ts'), past, past);
      expect((await run(join(layout, 'bin/slipway.js'), [])).stdout).toBe('bundle\n');
      const future = new Date(Date.now() + 60_000);
      await utimes(join(layout, 'src/bin.ts'), future, future);
      expect((await run(join(layout, 'bin/slipway.js'), [])).stdout).toBe('sources\n');
      await rm(join(layout, 'dist'), { recursive: true });
      expect((await run(join(layout, 'bin/slipway.js'), [])).stdout).toBe('sources\n');
    } finally {
      await rm(layout, { recursive: true, force: true });
    }
  });
});

/** An app with an approval gate before its one environment, and a release of it waiting there. */
async function gatedRelease(app: string, approver: string, version = '1'): Promise<string> {
  const host = `${app}-1`;
  await mkdir(join(server.dataDir, 'fleet', host), { recursive: true });
  const stored = await server.call('PUT', `/v1/apps/${app}`, {
    body: { name: app, deployRoot: `/srv/${app}`, environments: [{ name: 'live', targets: { hosts: [host] }, approval: { approvers: [approver] } }] },
  });
  if (stored.status !== 200) throw new Error(JSON.stringify(stored.body));
  const folder = join(workspace, `${app}-${version}`);
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, 'index.html'), `${app} ${version}`);
  const pushed = await slipway(['artifact', 'push', folder, '--app', app]);
  const opened = await slipway(['release', 'open', '--app', app, '--version', version, '--artifact', pushed.stdout.trim()]);
  const id = /^release (\S+) opened/.exec(opened.stdout)?.[1];
  if (!id) throw new Error(`no release opened: ${opened.stderr}`);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const release = (await server.call('GET', `/v1/releases/${id}`)).body;
    if (release.status === 'awaiting_approval' && release.events.some((e: any) => e.type === 'approval.mailed')) return id;
    if (Date.now() > deadline) throw new Error(`release ${id} never reached its gate; it is ${release.status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Resolves once something could listen on the port (so nothing else holds it), and lets it go. */
function listenOn(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}
