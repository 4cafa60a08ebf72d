import { execFile } from 'node:child_process';
import { link, mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { main, packDirectory } from '@slipway/cli';
import { list } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { shopConfigInput } from '../support/fixtures.ts';
import { temporaryDirectory } from '../support/stand-ins.ts';

let server: TestServer;
let workspace: string;

beforeAll(async () => {
  server = await startTestServer();
  workspace = await temporaryDirectory('slipway-cli-');
});
afterAll(async () => {
  await server.stop();
  await rm(workspace, { recursive: true, force: true });
});

async function slipway(args: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(
    args,
    { SLIPWAY_URL: server.url, SLIPWAY_TOKEN: server.adminToken, ...env },
    { out: (line) => out.push(line), err: (line) => err.push(line) },
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function makeBuild(name: string, files: Record<string, string>) {
  const folder = join(workspace, name);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(folder, path, '..'), { recursive: true });
    await writeFile(join(folder, path), content);
  }
  return folder;
}

const git = (cwd: string, ...args: string[]) =>
  promisify(execFile)('git', ['-C', cwd, '-c', 'user.email=dev@example.com', '-c', 'user.name=Dev', ...args]).then(({ stdout }) => stdout.trim());

describe('slipway CLI', () => {
  it('records the git commit a build was pushed from, without the remote\'s password, and whether it was committed', async () => {
    const build = await makeBuild('build-git', { 'index.html': '<h1>from git</h1>' });
    await git(build, 'init', '-q', '-b', 'main');
    await git(build, 'remote', 'add', 'origin', 'https://deployer:s3cret-token@git.example.com/acme/shop.git');
    await git(build, 'add', '.');
    await git(build, 'commit', '-q', '-m', 'first');
    const commit = await git(build, 'rev-parse', 'HEAD');
    await writeFile(join(build, 'not-committed.txt'), 'local change');
    const pushed = await slipway(['artifact', 'push', build, '--app', 'demo']);
    expect(pushed.code).toBe(0);
    expect(pushed.err).toContain(`built from https://git.example.com/acme/shop.git at ${commit.slice(0, 12)} (main), with changes not committed`);
    expect(pushed.err).not.toContain('s3cret');
    const sha256 = /([0-9a-f]{64})/.exec(pushed.out)![1];
    const stored = await server.call('GET', `/v1/artifacts/demo/${sha256}`);
    expect(stored.body.source).toEqual({ repository: 'https://git.example.com/acme/shop.git', commit, ref: 'main', dirty: true });

    const refused = await server.call('POST', '/v1/artifacts', {
      body: { app: 'demo', sha256: 'f'.repeat(64), size: 10, source: { repository: 'https://u:p@git.example.com/x.git', commit, dirty: false } },
    });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toContain('repository must not carry a password');
  });

  it('applies an app config from a file', async () => {
    const file = join(workspace, 'slipway.json');
    await writeFile(file, JSON.stringify({ ...shopConfigInput, name: 'cli-app' }));
    const result = await slipway(['apply', file]);
    expect(result).toMatchObject({ code: 0, out: 'app cli-app stored (revision 1)' });
    expect((await server.call('GET', '/v1/apps/cli-app')).status).toBe(200);
  });

  it('pushes a folder, opens a release from the printed key, lists and shows it', async () => {
    const build = await makeBuild('build-1', {
      'index.html': '<h1>one</h1>',
      'assets/app.js': 'console.log(1)',
    });
    const pushed = await slipway(['artifact', 'push', build, '--app', 'demo']);
    expect(pushed.code).toBe(0);
    expect(pushed.out).toMatch(/^artifacts\/demo\/[0-9a-f]{64}\.tar\.gz$/);
    expect(pushed.err).toMatch(/packed 3 entries/);

    const opened = await slipway([
      'release',
      'open',
      '--app',
      'demo',
      '--version',
      '1.4.0',
      '--artifact',
      pushed.out,
    ]);
    expect(opened.code).toBe(0);
    const id = /^release (\S+) opened \(pending\)$/.exec(opened.out)?.[1];
    expect(id).toBeDefined();

    const listed = await slipway(['release', 'list', '--app', 'demo', '--json']);
    expect(JSON.parse(listed.out).items[0]).toMatchObject({ id, version: '1.4.0' });
    const shown = await slipway(['release', 'show', id!]);
    expect(shown.out).toMatch(new RegExp(`release ${id}  demo 1\\.4\\.0  [a-z_]+`));
    expect(shown.out).toMatch(/staging: [a-z_]+/);
    expect(shown.out).toContain('release.opened  by admin');

    const again = await slipway(['artifact', 'push', build, '--app', 'demo']);
    expect(again.out).toBe(pushed.out);
    expect(again.err).toContain('already stored; nothing uploaded');
  });

  it('packs the same content to the same key whatever the file times', async () => {
    const a = await makeBuild('same-a', { 'x.txt': 'same', 'y/z.txt': 'content' });
    const b = await makeBuild('same-b', { 'x.txt': 'same', 'y/z.txt': 'content' });
    await utimes(join(b, 'x.txt'), new Date('2001-01-01'), new Date('2001-01-01'));
    const first = await slipway(['artifact', 'push', a, '--app', 'demo']);
    const second = await slipway(['artifact', 'push', b, '--app', 'demo']);
    expect(first.out).toBe(second.out);
  });

  it('packs a file with two names (a hard link) as two files, which hosts accept', async () => {
    const build = await makeBuild('linked', { 'a.js': 'shared bytes' });
    await link(join(build, 'a.js'), join(build, 'b.js'));
    const file = join(workspace, 'linked.tar.gz');
    await packDirectory(build, file);
    const types: Record<string, string> = {};
    await list({ file, onReadEntry: (entry) => void (types[entry.path] = entry.type) });
    expect(types).toEqual({ 'a.js': 'File', 'b.js': 'File' });
  });

  it('reports API validation errors field by field with exit code 1', async () => {
    const build = await makeBuild('build-2', { 'index.html': 'two' });
    const pushed = await slipway(['artifact', 'push', build, '--app', 'demo']);
    const result = await slipway([
      'release',
      'open',
      '--app',
      'demo',
      '--version',
      'not ok!',
      '--artifact',
      pushed.out,
    ]);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/version: must be 1 to 64 characters/);
  });

  it('answers usage mistakes with exit code 2 and says what to fix', async () => {
    expect(await slipway(['release', 'open', '--app', 'demo'])).toMatchObject({
      code: 2,
      err: expect.stringMatching(/--version, --artifact are required/),
    });
    expect(await slipway(['artifact', 'push', join(workspace, 'missing'), '--app', 'demo'])).toMatchObject({
      code: 1,
      err: expect.stringMatching(/is not a folder/),
    });
    expect(
      await slipway(['release', 'open', '--app', 'demo', '--version', '1', '--artifact', 'x']),
    ).toMatchObject({
      code: 2,
      err: expect.stringMatching(/--artifact must be a key/),
    });
    expect(await slipway(['release', 'list'], { SLIPWAY_TOKEN: '' })).toMatchObject({
      code: 2,
      err: expect.stringMatching(/SLIPWAY_TOKEN/),
    });
    expect(await slipway(['frobnicate'])).toMatchObject({
      code: 2,
      err: expect.stringMatching(/unknown command/),
    });
    expect(await slipway(['release', 'list', '--bogus'])).toMatchObject({ code: 2 });
    expect(await slipway(['release', 'list', '--limit', 'abc'])).toMatchObject({
      code: 2,
      out: '',
      err: expect.stringMatching(/--limit <n>' argument 'abc' is invalid[^]*run "slipway release list --help" for usage/),
    });
  });

  it('writes help and the version through the given Io, never to the process', async () => {
    const { version } = JSON.parse(await readFile(new URL('../../packages/cli/package.json', import.meta.url), 'utf8'));
    expect(await slipway(['--version'])).toEqual({ code: 0, out: version, err: '' });
    const help = await slipway(['help', 'release', 'cancel']);
    expect(help).toMatchObject({ code: 0, err: '' });
    expect(help.out).toMatch(/^Usage: slipway release cancel \[options\] <id>\n/);
    expect(help.out).toContain('API: POST /v1/releases/{id}/cancel');
  });

  it('creates tokens for other people', async () => {
    const created = await slipway(['token', 'create', '--name', 'ops@example.com', '--role', 'viewer']);
    expect(created.code).toBe(0);
    const viewerList = await slipway(['release', 'list'], { SLIPWAY_TOKEN: created.out });
    expect(viewerList.code).toBe(0);
    const viewerPush = await slipway(['artifact', 'push', workspace, '--app', 'demo'], {
      SLIPWAY_TOKEN: created.out,
    });
    expect(viewerPush).toMatchObject({ code: 1, err: expect.stringMatching(/role viewer/) });
  });

  it('opens with --wait, follows the release host by host, and exits 0 only on success', async () => {
    const hosts = ['w-1', 'w-2', 'w-3'];
    for (const host of hosts) await mkdir(join(server.dataDir, 'fleet', host), { recursive: true });
    const config = join(workspace, 'watched.json');
    await writeFile(
      config,
      JSON.stringify({
        name: 'watched',
        deployRoot: '/srv/watched',
        hooks: { healthCheck: 'test ! -e "$DEPLOY_ROOT/sick"' },
        environments: [{ name: 'live', targets: { hosts }, strategy: { type: 'rolling', batchSize: 2 } }],
      }),
    );
    expect((await slipway(['apply', config])).code).toBe(0);
    const build = await makeBuild('watched-1', { 'index.html': 'watched' });
    const key = (await slipway(['artifact', 'push', build, '--app', 'watched'])).out;

    const good = await slipway(['release', 'open', '--app', 'watched', '--version', '1', '--artifact', key, '--wait', '--interval', '0.2']);
    expect(good.code, good.out).toBe(0);
    expect(good.out).toMatch(/release \S+ \(watched 1\): pending|release \S+ \(watched 1\): distributing/);
    expect(good.out).toMatch(/live: succeeded \[###\] 3\/3 healthy/);
    for (const host of hosts) expect(good.out).toMatch(new RegExp(`live  ${host}  healthy`));
    expect(good.out).toMatch(/done: succeeded/);

    await writeFile(join(server.dataDir, 'fleet', 'w-3', 'sick'), '');
    const build2 = await makeBuild('watched-2', { 'index.html': 'watched again' });
    const key2 = (await slipway(['artifact', 'push', build2, '--app', 'watched'])).out;
    const opened = await slipway(['release', 'open', '--app', 'watched', '--version', '2', '--artifact', key2]);
    const id = /^release (\S+) opened/.exec(opened.out)![1]!;
    const bad = await slipway(['release', 'watch', id, '--interval', '0.2']);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/ended: failed/);
    expect(bad.out).toMatch(/reason: switch of batch 2 in live failed on w-3/);
    expect(bad.out).toMatch(/live {2}w-1 {2}reverted/);

    // The release read has exit codes, not output: show reads the failed host's last lines from its output route.
    const shown = await slipway(['release', 'show', id]);
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(/ {4}w-1: reverted {2}\(distribute exit 0, switch exit 0, revert exit 0\)/);
    expect(shown.out).toMatch(/ {4}w-3: (failed|reverted) {2}\(distribute exit 0, switch exit [1-9]\d*/);
    expect(shown.out).toMatch(/\n {6}switch \| ! \S+ slipway: health check failed 3 times/);
    expect(shown.out.match(/ {6}switch \| /g)!.length).toBeLessThanOrEqual(5);
    const asJson = await slipway(['release', 'show', id, '--json']);
    expect(asJson.out).not.toMatch(/"std(out|err)"/);
  });

  it('runs as an installed command', async () => {
    const run = promisify(execFile);
    const { stdout } = await run('node', ['node_modules/.bin/slipway', 'help']);
    expect(stdout).toContain('slipway artifact push <dir> --app <app>');
  });
});
