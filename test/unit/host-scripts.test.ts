import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { HOST_EXIT_CODES, type HostScript, renderHostScript, shellQuote } from '@slipway/core';
import { create } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { temporaryDirectory } from '../support/stand-ins.ts';
import { pwnedFilesIn, runBash, runHostScript } from '../support/host-run.ts';

const exec = promisify(execFile);

/** Every hostile value would create a file named "pwned" somewhere if it ever reached the shell. */
const HOSTILE = `1.0 '$(touch pwned)' "; touch pwned; echo" \`touch pwned\` $HOME\nline2 ; rm -rf /`;

let sandbox: string;
let deployRoot: string;
let artifacts: Record<string, { url: string; sha256: string }>;

async function makeArtifact(name: string, files: Record<string, string>) {
  const source = join(sandbox, `src-${name}`);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(source, path, '..'), { recursive: true });
    await writeFile(join(source, path), content);
  }
  const file = join(sandbox, `${name}.tar.gz`);
  await create({ gzip: true, file, cwd: source, portable: true }, Object.keys(files));
  const sha256 = createHash('sha256').update(await readFile(file)).digest('hex');
  return { url: `file://${file}`, sha256 };
}

const run = (script: HostScript) => runHostScript(script, sandbox);

const hooks = { preRelease: '', postRelease: '', healthCheck: '' };
const switchScript = (releaseId: string, overrides: Partial<Extract<HostScript, { kind: 'switch' }>> = {}) =>
  ({
    kind: 'switch',
    deployRoot,
    releaseId,
    switchId: releaseId,
    version: HOSTILE,
    ...hooks,
    healthCheckAttempts: 2,
    healthCheckIntervalSeconds: 0,
    ...overrides,
  }) as const;
const distributeScript = (releaseId: string, artifact = artifacts.one!, postDeploy = '') =>
  ({
    kind: 'distribute',
    deployRoot,
    releaseId,
    version: HOSTILE,
    artifactUrl: artifact.url,
    sha256: artifact.sha256,
    sharedPaths: ['storage', 'conf/app env', '.env \'quoted\''],
    postDeploy,
  }) as const;

const pwnedFiles = () => pwnedFilesIn(sandbox);

beforeAll(async () => {
  sandbox = await temporaryDirectory('slipway-host-');
  deployRoot = join(sandbox, `srv/app with spaces 'and quotes' $(touch pwned) ; x`);
  artifacts = {
    one: await makeArtifact('one', { 'index.html': 'one', 'storage/seed.txt': 'seeded by the first release' }),
    two: await makeArtifact('two', { 'index.html': 'two' }),
  };
});
afterAll(async () => rm(sandbox, { recursive: true, force: true }));

describe('shellQuote', () => {
  it('round-trips hostile text through bash untouched', async () => {
    const { stdout } = await exec('bash', ['-c', `printf '%s' ${shellQuote(HOSTILE)}`], { cwd: sandbox });
    expect(stdout).toBe(HOSTILE);
    expect(() => shellQuote('a\u0000b')).toThrow(/NUL/);
  });
});

describe('host scripts', () => {
  it('distributes, links shared paths, runs postDeploy with the release variables, and executes nothing else', async () => {
    const result = await run(distributeScript('r1', artifacts.one, 'printf "%s|%s" "$VERSION" "$RELEASE_ID" > hook-saw.txt'));
    expect(result.code, result.stderr).toBe(0);
    const release = join(deployRoot, 'releases/r1');
    expect(await readFile(join(release, 'index.html'), 'utf8')).toBe('one');
    expect(await readFile(join(release, 'hook-saw.txt'), 'utf8')).toBe(`${HOSTILE}|r1`);
    expect(await readlink(join(release, 'storage'))).toBe(join(deployRoot, 'shared/storage'));
    expect(await readFile(join(deployRoot, 'shared/storage/seed.txt'), 'utf8')).toBe('seeded by the first release');
    expect((await stat(join(deployRoot, 'shared/conf/app env'))).isDirectory()).toBe(true);
    expect(await readlink(join(release, '.env \'quoted\''))).toBe(join(deployRoot, 'shared', '.env \'quoted\''));
    // Nobody ships it and its name has a dot: it starts as an empty file, not a folder.
    expect(await readFile(join(deployRoot, 'shared', '.env \'quoted\''), 'utf8')).toBe('');
    expect(await pwnedFiles()).toEqual([]);
  });

  it('does nothing the second time for a release already distributed', async () => {
    const result = await run(distributeScript('r1'));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('already distributed');
  });

  it('refuses an artifact whose sha256 does not match and leaves no release folder', async () => {
    const result = await run({ ...distributeScript('bad'), sha256: 'f'.repeat(64) });
    expect(result.code).toBe(HOST_EXIT_CODES.checksumMismatch);
    expect(result.stderr).toContain('sha256 mismatch');
    await expect(stat(join(deployRoot, 'releases/bad'))).rejects.toThrow();
  });

  it('tries the download again when the artifact store is away for a moment, then gives up', async () => {
    const late = join(sandbox, 'late.tar.gz');
    const script = { ...distributeScript('late'), artifactUrl: `file://${late}`, sha256: artifacts.one!.sha256 };
    const child = spawn('bash', ['-c', renderHostScript(script)], { cwd: sandbox, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const firstFailure = new Promise<void>((resolve) =>
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('download attempt 1 failed')) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await firstFailure;
    await copyFile(new URL(artifacts.one!.url).pathname, late);
    expect(await exited, stderr).toBe(0);
    expect(await readFile(join(deployRoot, 'releases/late/index.html'), 'utf8')).toBe('one');

    const never = await run({ ...distributeScript('never'), artifactUrl: `file://${join(sandbox, 'never.tar.gz')}`, downloadAttempts: 2 });
    expect(never.code).toBe(HOST_EXIT_CODES.artifactDownloadFailed);
    expect(never.stderr).toContain('download attempt 1 failed');
    expect(never.stderr).toContain('could not download the artifact');
  });

  it('switches current atomically and records what was live before, once', async () => {
    expect((await run(switchScript('r1'))).code).toBe(0);
    expect(await readlink(join(deployRoot, 'current'))).toBe('releases/r1');
    expect(await readFile(join(deployRoot, 'current/index.html'), 'utf8')).toBe('one');

    expect((await run(distributeScript('r2', artifacts.two))).code).toBe(0);
    expect((await run(switchScript('r2'))).code).toBe(0);
    expect((await run(switchScript('r2'))).code).toBe(0);
    expect(await readlink(join(deployRoot, 'current'))).toBe('releases/r2');
    expect(await readFile(join(deployRoot, '.slipway/previous-r2'), 'utf8')).toBe('releases/r1');
    expect(await readFile(join(deployRoot, 'releases/r1/index.html'), 'utf8')).toBe('one');
  });

  it('fails a switch whose health check keeps failing, and the revert puts the previous release back', async () => {
    expect((await run(distributeScript('r3', artifacts.two))).code).toBe(0);
    const failed = await run(switchScript('r3', { healthCheck: 'test "$VERSION" = "something else"' }));
    expect(failed.code).toBe(HOST_EXIT_CODES.healthCheckFailed);
    expect(failed.stderr).toContain('health check failed 2 times');
    expect(await readlink(join(deployRoot, 'current'))).toBe('releases/r3');

    const reverted = await run({ kind: 'revert', deployRoot, releaseId: 'r3', switchId: 'r3', version: HOSTILE, postRelease: 'touch reverted-hook-ran' });
    expect(reverted.code, reverted.stderr).toBe(0);
    expect(await readlink(join(deployRoot, 'current'))).toBe('releases/r2');
    expect((await stat(join(deployRoot, 'releases/r2/reverted-hook-ran'))).isFile()).toBe(true);
    const again = await run({ kind: 'revert', deployRoot, releaseId: 'r3', switchId: 'r3', version: HOSTILE, postRelease: '' });
    expect(again.stdout).toContain('nothing to revert');
  });

  it('refuses to switch to a release that was never distributed', async () => {
    const result = await run(switchScript('never'));
    expect(result.code).toBe(HOST_EXIT_CODES.notDistributed);
    expect(await readlink(join(deployRoot, 'current'))).toBe('releases/r2');
  });

  it('prunes beyond keepReleases but never the live or a protected release', async () => {
    for (const id of ['r4', 'r5']) expect((await run(distributeScript(id, artifacts.two))).code).toBe(0);
    const result = await run({ kind: 'prune', deployRoot, releaseId: 'r5', keepReleases: 2, protect: ['r1'] });
    expect(result.code, result.stderr).toBe(0);
    // Newest first: r5 (the release itself), r4 (within keep 2), r3 pruned, r2 live, r1 protected.
    expect((await readdir(join(deployRoot, 'releases'))).sort()).toEqual(['r1', 'r2', 'r4', 'r5']);
    expect(await readlink(join(deployRoot, 'current'))).toBe('releases/r2');
  });

  it('lets a rollback switch back to an older release and revert exactly to where it started', async () => {
    // r2 is live; r1 is older and already has its own "previous" record from its first switch.
    expect(await readlink(join(deployRoot, 'current'))).toBe('releases/r2');
    expect((await run(switchScript('r1', { switchId: 'rollback-1' }))).code).toBe(0);
    expect(await readlink(join(deployRoot, 'current'))).toBe('releases/r1');
    expect(await readFile(join(deployRoot, '.slipway/previous-rollback-1'), 'utf8')).toBe('releases/r2');
    const undo = await run({ kind: 'revert', deployRoot, releaseId: 'r1', switchId: 'rollback-1', version: '1', postRelease: '' });
    expect(undo.code, undo.stderr).toBe(0);
    expect(await readlink(join(deployRoot, 'current'))).toBe('releases/r2');
  });

  it('removes current on revert when the host had nothing live before', async () => {
    const fresh = join(sandbox, 'fresh host');
    const distribute = { ...distributeScript('f1', artifacts.two), deployRoot: fresh };
    expect((await run(distribute)).code).toBe(0);
    expect((await run({ ...switchScript('f1'), deployRoot: fresh })).code).toBe(0);
    expect((await run({ kind: 'revert', deployRoot: fresh, releaseId: 'f1', switchId: 'f1', version: '1', postRelease: '' })).code).toBe(0);
    await expect(readlink(join(fresh, 'current'))).rejects.toThrow();
  });

  it('never unpacks over the live release when its ready mark is gone, and a revert of a batch not live here changes nothing', async () => {
    const host = join(sandbox, 'mark gone host');
    expect((await run({ ...distributeScript('m1', artifacts.two), deployRoot: host })).code).toBe(0);
    expect((await run({ ...switchScript('m1'), deployRoot: host })).code).toBe(0);
    await rm(join(host, 'releases/m1/.slipway-ready'));
    const again = await run({ ...distributeScript('m1', artifacts.one), deployRoot: host });
    expect(again.code).toBe(HOST_EXIT_CODES.unpackFailed);
    expect(again.stderr).toContain('live here but not marked ready');
    expect(await readFile(join(host, 'releases/m1/index.html'), 'utf8')).toBe('two');
    // m1 is live, not m2: reverting m2's switch leaves current alone.
    const revert = await run({ kind: 'revert', deployRoot: host, releaseId: 'm2', switchId: 'm2', version: '1', postRelease: '' });
    expect(revert.code, revert.stderr).toBe(0);
    expect(revert.stdout).toContain('nothing to revert');
    expect(await readlink(join(host, 'current'))).toBe('releases/m1');
  });

  it('never switches a batch after its revert: a switch that starts late (queued, retried) finds the revert\'s mark', async () => {
    const host = join(sandbox, 'late switch host');
    for (const id of ['l1', 'l2']) expect((await run({ ...distributeScript(id, artifacts.two), deployRoot: host })).code).toBe(0);
    expect((await run({ ...switchScript('l1'), deployRoot: host })).code).toBe(0);
    // The release is cancelled while l2's switch waits its turn: its revert runs first.
    const revert = await run({ kind: 'revert', deployRoot: host, releaseId: 'l2', switchId: 'l2', version: '2', postRelease: '' });
    expect(revert.stdout).toContain('nothing to revert');
    const late = await run({ ...switchScript('l2'), deployRoot: host });
    expect(late.code).toBe(HOST_EXIT_CODES.switchRevoked);
    expect(late.stderr).toContain('this switch (l2) was put back on this host before it ran; not switching');
    expect(await readlink(join(host, 'current'))).toBe('releases/l1');
  });

  it('runs one command at a time on a deploy root: a revert waits for the switch still running, then puts it back', async () => {
    const host = join(sandbox, 'serial host');
    const gate = join(sandbox, 'serial-gate');
    for (const id of ['s1', 's2']) expect((await run({ ...distributeScript(id, artifacts.two), deployRoot: host })).code).toBe(0);
    expect((await run({ ...switchScript('s1'), deployRoot: host })).code).toBe(0);
    // s2's postRelease starts a daemon (which must not keep the lock), then waits for the test's gate.
    const waiting = `sleep 300 > /dev/null 2>&1 & until [ -e ${shellQuote(gate)} ]; do sleep 0.05; done`;
    const switching = run({ ...switchScript('s2', { postRelease: waiting }), deployRoot: host });
    await expect.poll(async () => readlink(join(host, 'current')).catch(() => ''), { timeout: 30_000 }).toBe('releases/s2');
    const lockFree = () => exec('flock', ['-n', join(host, '.slipway/lock'), 'true']).then(() => true, () => false);
    expect(await lockFree()).toBe(false);
    const reverting = run({ kind: 'revert', deployRoot: host, releaseId: 's2', switchId: 's2', version: '2', postRelease: '' });
    await writeFile(gate, '');
    expect((await switching).code).toBe(0);
    const reverted = await reverting;
    expect(reverted.code, reverted.stderr).toBe(0);
    expect(await readlink(join(host, 'current'))).toBe('releases/s1');
    // The daemon s2's hook started is still alive, and holds no lock.
    expect(await lockFree()).toBe(true);
    await exec('pkill', ['-f', '^sleep 300$']).catch(() => {});
  });

  it('left no trace of any hostile value being executed', async () => {
    expect(await pwnedFiles()).toEqual([]);
  });
});

/**
 * SSM's AWS-RunShellScript starts a script as root with no HOME, a minimal PATH and cwd /usr/bin;
 * a local run hands over its caller's environment. Hooks must see one defined environment either
 * way, and nothing else of the caller's.
 */
describe('the environment hooks run in', () => {
  const SECRET = 'secret-should-not-leak';
  const RELEASE_VARIABLES = ['DEPLOY_ROOT', 'RELEASE_ID', 'VERSION', 'RELEASE_DIR'];
  /** Writes where the hook ran and its whole environment (NUL-separated: VERSION has a newline). */
  const DUMP = 'pwd > hook-pwd && env -0 > hook-env';
  let root: string;

  /**
   * Runs a script the way SSM does: a bare environment, cwd /usr/bin, no stdin (a socket there, as
   * execFile gives, would make bash read ~/.bashrc first); `caller` adds variables.
   */
  async function runBare(script: HostScript, caller: Record<string, string> = {}) {
    const variables = Object.entries({ PATH: '/usr/bin:/bin', SLIPWAY_ADMIN_TOKEN: SECRET, ...caller }).map(
      ([name, value]) => `${name}=${value}`,
    );
    const child = spawn('env', ['-i', ...variables, 'bash', '-c', renderHostScript(script)], {
      cwd: '/usr/bin',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    return { code, stdout, stderr };
  }

  async function hookSaw(releaseDir: string) {
    const environment = new Map<string, string>();
    for (const entry of (await readFile(join(releaseDir, 'hook-env'), 'utf8')).split('\0')) {
      if (!entry) continue;
      const at = entry.indexOf('=');
      environment.set(entry.slice(0, at), entry.slice(at + 1));
    }
    return { environment, pwd: (await readFile(join(releaseDir, 'hook-pwd'), 'utf8')).trim() };
  }

  /** Only the variables the script hands over, and the ones bash itself sets. */
  function expectOnly(environment: Map<string, string>, extra: string[] = []) {
    const allowed = new Set(['HOME', 'PATH', 'LANG', ...RELEASE_VARIABLES, ...extra, 'PWD', 'OLDPWD', 'SHLVL', '_']);
    expect([...environment.keys()].filter((name) => !allowed.has(name))).toEqual([]);
    expect([...environment.values()].join('\n')).not.toContain(SECRET);
  }

  beforeAll(() => {
    root = join(sandbox, 'bare host');
  });

  it('stamps its own lines in UTC whatever the host\'s time zone, and leaves the hooks that zone', async () => {
    const before = Date.now();
    const result = await runBare({ ...distributeScript('tz1', artifacts.one, 'echo "hook sees TZ=$TZ"'), deployRoot: root }, { TZ: 'Asia/Tokyo' });
    expect(result.code, result.stderr).toBe(0);
    const stamps = [...`${result.stdout}${result.stderr}`.matchAll(/^(\S+) slipway: /gm)].map((m) => m[1]!);
    expect(stamps.length).toBeGreaterThan(0);
    for (const stamp of stamps) {
      expect(stamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      // Tokyo's clock read as UTC would be nine hours off.
      expect(Math.abs(Date.parse(stamp) - before)).toBeLessThan(10 * 60_000);
    }
    expect(result.stdout).toContain('hook sees TZ=Asia/Tokyo');
  });

  it('gives postDeploy a home, a full PATH, a locale and the release variables under SSM\'s bare environment, and no caller secrets', async () => {
    const result = await runBare({ ...distributeScript('e1', artifacts.one, DUMP), deployRoot: root });
    expect(result.code, result.stderr).toBe(0);
    const releaseDir = join(root, 'releases/e1');
    const { environment, pwd } = await hookSaw(releaseDir);
    expect(pwd).toBe(releaseDir);
    const home = environment.get('HOME') ?? '';
    expect(home).toMatch(/^\//);
    expect((await stat(home)).isDirectory()).toBe(true);
    const path = (environment.get('PATH') ?? '').split(':');
    // What was there stays first; the standard folders are added.
    expect(path.slice(0, 2)).toEqual(['/usr/bin', '/bin']);
    expect(path).toEqual(expect.arrayContaining(['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/sbin']));
    expect(environment.get('LANG')).toBe('C.UTF-8');
    expect(environment.get('DEPLOY_ROOT')).toBe(root);
    expect(environment.get('RELEASE_ID')).toBe('e1');
    expect(environment.get('VERSION')).toBe(HOSTILE);
    expect(environment.get('RELEASE_DIR')).toBe(releaseDir);
    expect(environment.has('SLIPWAY_ADMIN_TOKEN')).toBe(false);
    expectOnly(environment);
  });

  it('runs every switch hook with the same environment, keeping the caller\'s locale and proxy but not its secrets', async () => {
    const caller = {
      LANG: 'C',
      https_proxy: 'http://proxy.internal:3128',
      // Empty and relative PATH entries would look up commands in the release folder: dropped.
      PATH: '.::/usr/bin:bin:/bin:',
      AWS_SECRET_ACCESS_KEY: SECRET,
    };
    const dumpAs = (name: string) => `pwd > hook-pwd-${name} && env -0 > hook-env-${name}`;
    const result = await runBare(
      {
        ...switchScript('e1'),
        deployRoot: root,
        preRelease: dumpAs('pre'),
        postRelease: `${DUMP} && ${dumpAs('post')}`,
        healthCheck: dumpAs('health'),
      },
      caller,
    );
    expect(result.code, result.stderr).toBe(0);
    const releaseDir = join(root, 'releases/e1');
    const { environment, pwd } = await hookSaw(releaseDir);
    expect(pwd).toBe(releaseDir);
    expect(environment.get('PATH')).toBe('/usr/bin:/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin');
    expect(environment.get('LANG')).toBe('C');
    expect(environment.get('https_proxy')).toBe(caller.https_proxy);
    expect(environment.get('HOME')).toMatch(/^\//);
    expectOnly(environment, ['https_proxy']);
    for (const name of ['pre', 'post', 'health']) {
      const other = await readFile(join(releaseDir, `hook-env-${name}`), 'utf8');
      // Each hook saw the same variables (the file names in `_` aside).
      const withoutUnderscore = (text: string) => text.split('\0').filter((entry) => !entry.startsWith('_=')).sort();
      expect(withoutUnderscore(other)).toEqual(withoutUnderscore(await readFile(join(releaseDir, 'hook-env'), 'utf8')));
      expect((await readFile(join(releaseDir, `hook-pwd-${name}`), 'utf8')).trim()).toBe(releaseDir);
    }
  });

  it('keeps a HOME the transport set when it is a folder, and otherwise takes the user\'s own', async () => {
    const given = join(sandbox, 'a home');
    await mkdir(given, { recursive: true });
    const withHome = await runBare({ ...switchScript('e1'), deployRoot: root, postRelease: DUMP }, { HOME: given });
    expect(withHome.code, withHome.stderr).toBe(0);
    expect((await hookSaw(join(root, 'releases/e1'))).environment.get('HOME')).toBe(given);

    // The user's own home from the user database; root's is /root, anyone else without one gets the deploy root.
    const passwdHome = userInfo().homedir;
    const ownHome = passwdHome.startsWith('/') && (await stat(passwdHome).catch(() => undefined))?.isDirectory()
      ? passwdHome
      : userInfo().uid === 0 ? '/root' : root;
    for (const HOME of ['relative/home', join(sandbox, 'no such folder'), '']) {
      const result = await runBare({ ...switchScript('e1'), deployRoot: root, postRelease: DUMP }, { HOME });
      expect(result.code, result.stderr).toBe(0);
      expect((await hookSaw(join(root, 'releases/e1'))).environment.get('HOME')).toBe(ownHome);
    }
  });
});

describe('the artifact download', () => {
  /** The S3 key: hostile text, quoted on its way into the script like every other value. */
  const KEY = `artifacts/shop/it's $(touch pwned).tar.gz`;
  const S3_URI = `s3://slipway-artifacts/${KEY}`;
  /** A URL that fails if it is ever used. */
  const DEAD_URL = 'file:///nonexistent/slipway/artifact.tar.gz';
  let bin: string;
  let bucket: string;
  let root: string;

  beforeAll(async () => {
    root = join(sandbox, 'download host');
    // A fake aws CLI: logs its arguments, and "reads" s3://slipway-artifacts/<key> from a local folder.
    bin = join(sandbox, 'fake-aws-bin');
    bucket = join(sandbox, 'fake-bucket');
    await mkdir(bin, { recursive: true });
    await mkdir(join(bucket, 'artifacts/shop'), { recursive: true });
    await copyFile(new URL(artifacts.one!.url).pathname, join(bucket, KEY));
    await writeFile(
      join(bin, 'aws'),
      `#!/bin/bash
printf '%s\\0' "$@" >> ${shellQuote(join(sandbox, 'aws-calls'))}
printf '\\n' >> ${shellQuote(join(sandbox, 'aws-calls'))}
source=\${@: -2:1}; destination=\${@: -1}
cp -- ${shellQuote(bucket)}/"\${source#s3://slipway-artifacts/}" "$destination"
`,
      { mode: 0o755 },
    );
  });

  /** The aws CLI calls so far, each as its arguments. */
  async function awsCalls(): Promise<string[][]> {
    const text = await readFile(join(sandbox, 'aws-calls'), 'utf8').catch(() => '');
    return text.split('\n').filter(Boolean).map((line) => line.split('\0').slice(0, -1));
  }

  /** Runs the script with PATH set to `path`; with `edit`, after replacing a fragment it must hold. */
  async function runWithPath(script: HostScript, path: string, edit?: { replace: string; with: string }) {
    await rm(join(sandbox, 'aws-calls'), { force: true });
    let text = renderHostScript(script);
    if (edit) {
      expect(text).toContain(edit.replace);
      text = text.replace(edit.replace, edit.with);
    }
    return runBash(text, { cwd: sandbox, env: { ...process.env, PATH: path } });
  }

  const withS3 = (releaseId: string, artifactUrl: string, key = KEY) =>
    ({
      ...distributeScript(releaseId),
      deployRoot: root,
      artifactUrl,
      artifactS3: { uri: `s3://slipway-artifacts/${key}`, region: 'eu-west-1' },
      downloadAttempts: 2,
    }) as const;

  it('reads the artifact with the host\'s own credentials (aws s3 cp) and never touches the URL', async () => {
    const result = await runWithPath(withS3('s1', DEAD_URL), `${bin}:/usr/bin:/bin`);
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(root, 'releases/s1/index.html'), 'utf8')).toBe('one');
    expect(await awsCalls()).toEqual([
      ['s3', 'cp', '--only-show-errors', '--region', 'eu-west-1', S3_URI, join(root, 'releases/.s1.partial.tar.gz')],
    ]);
    expect(result.stdout).toContain('with this host\'s own AWS credentials');
    expect(result.stderr).not.toContain('download attempt');
    expect(await pwnedFiles()).toEqual([]);
  });

  // Only where no aws CLI sits in a folder the script adds to PATH itself.
  const standardAws = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((dir) =>
    existsSync(join(dir, 'aws')),
  );
  it.skipIf(standardAws)('uses the presigned URL on a host without the aws CLI, and says so', async () => {
    const result = await runWithPath(withS3('s2', artifacts.one!.url), '/usr/bin:/bin');
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(root, 'releases/s2/index.html'), 'utf8')).toBe('one');
    expect(await awsCalls()).toEqual([]);
    expect(result.stdout).toContain('no aws CLI on this host');
  });

  it('falls back to the URL when the host\'s role cannot read the key, and fails when neither works', async () => {
    const fallback = await runWithPath(withS3('s3', artifacts.one!.url, 'artifacts/shop/missing.tar.gz'), `${bin}:/usr/bin:/bin`);
    expect(fallback.code, fallback.stderr).toBe(0);
    expect(await awsCalls()).toHaveLength(2);
    expect(fallback.stderr).toContain('aws s3 cp could not read s3://slipway-artifacts/artifacts/shop/missing.tar.gz');
    expect(await readFile(join(root, 'releases/s3/index.html'), 'utf8')).toBe('one');

    const neither = await runWithPath({ ...withS3('s4', DEAD_URL, 'artifacts/shop/missing.tar.gz'), downloadAttempts: 1 }, `${bin}:/usr/bin:/bin`);
    expect(neither.code).toBe(HOST_EXIT_CODES.artifactDownloadFailed);
    expect(neither.stderr).toContain('could not download the artifact');
    await expect(stat(join(root, 'releases/s4'))).rejects.toThrow();
  });

  it('hashes with sha256sum on a host whose openssl gives wrong digests, and with openssl otherwise', async () => {
    const brokenBin = join(sandbox, 'broken-openssl-bin');
    await mkdir(brokenBin, { recursive: true });
    await writeFile(join(brokenBin, 'openssl'), '#!/bin/bash\ncat > /dev/null\necho "SHA2-256(stdin)= 0000"\n', { mode: 0o755 });
    const script = { ...distributeScript('o1'), deployRoot: root };
    const fallback = await runWithPath(script, `${brokenBin}:/usr/bin:/bin`);
    expect(fallback.code, fallback.stderr).toBe(0);
    expect(await readFile(join(root, 'releases/o1/index.html'), 'utf8')).toBe('one');
    const mismatch = await runWithPath({ ...script, releaseId: 'o2', sha256: 'f'.repeat(64) }, `${brokenBin}:/usr/bin:/bin`);
    expect(mismatch.code).toBe(HOST_EXIT_CODES.checksumMismatch);
    expect(mismatch.stderr).toContain(`got ${artifacts.one!.sha256}`);

    const realOpenssl = ['/usr/bin/openssl', '/bin/openssl'].find((path) => existsSync(path));
    if (!realOpenssl) return;
    const loggingBin = join(sandbox, 'logging-openssl-bin');
    await mkdir(loggingBin, { recursive: true });
    await writeFile(
      join(loggingBin, 'openssl'),
      `#!/bin/bash\necho "$*" >> ${shellQuote(join(sandbox, 'openssl-calls'))}\nexec ${realOpenssl} "$@"\n`,
      { mode: 0o755 },
    );
    const hashed = await runWithPath({ ...script, releaseId: 'o3' }, `${loggingBin}:/usr/bin:/bin`);
    expect(hashed.code, hashed.stderr).toBe(0);
    // The check of the known digest, then the artifact.
    expect(await readFile(join(sandbox, 'openssl-calls'), 'utf8')).toBe('dgst -sha256\ndgst -sha256\n');

    // A small artifact is hashed by sha256sum before OpenSSL would have started twice; a large one by OpenSSL.
    await rm(join(sandbox, 'openssl-calls'), { force: true });
    const small = await runWithPath({ ...script, releaseId: 'o4', artifactSize: 4 * 1024 * 1024 - 1 }, `${loggingBin}:/usr/bin:/bin`);
    expect(small.code, small.stderr).toBe(0);
    expect(existsSync(join(sandbox, 'openssl-calls'))).toBe(false);
    const smallMismatch = await runWithPath({ ...script, releaseId: 'o5', artifactSize: 100, sha256: 'f'.repeat(64) }, `${loggingBin}:/usr/bin:/bin`);
    expect(smallMismatch.code).toBe(HOST_EXIT_CODES.checksumMismatch);
    expect(smallMismatch.stderr).toContain(`got ${artifacts.one!.sha256}`);
    const large = await runWithPath({ ...script, releaseId: 'o6', artifactSize: 4 * 1024 * 1024 }, `${loggingBin}:/usr/bin:/bin`);
    expect(large.code, large.stderr).toBe(0);
    expect(await readFile(join(sandbox, 'openssl-calls'), 'utf8')).toBe('dgst -sha256\ndgst -sha256\n');
  });

  it('keeps the sha256 check on what aws s3 cp brought', async () => {
    const result = await runWithPath({ ...withS3('s5', DEAD_URL), sha256: 'f'.repeat(64) }, `${bin}:/usr/bin:/bin`);
    expect(result.code).toBe(HOST_EXIT_CODES.checksumMismatch);
    expect(await awsCalls()).toHaveLength(1);
  });

  describe('from a file on this machine (the local fleet beside its S3 stand-in)', () => {
    /** The artifact's file, under a name with hostile text: quoted on its way into the script like every other value. */
    let stored: string;
    beforeAll(async () => {
      stored = join(sandbox, `stored it's $(touch pwned)._S3rver_object`);
      await copyFile(new URL(artifacts.one!.url).pathname, stored);
    });
    const withFile = (releaseId: string, artifactFile: string, artifactUrl = DEAD_URL) =>
      ({ ...distributeScript(releaseId), deployRoot: root, artifactUrl, artifactFile, downloadAttempts: 1 }) as const;
    /** A folder of cat, tee and curl that note each start in `spied` (emptied here), then do their work. */
    async function spyBin() {
      const spy = join(sandbox, 'spy-bin');
      await mkdir(spy, { recursive: true });
      for (const program of ['cat', 'tee', 'curl']) {
        await writeFile(join(spy, program), `#!/bin/bash\necho ${program} >> ${shellQuote(join(sandbox, 'spied'))}\nexec /usr/bin/${program} "$@"\n`, { mode: 0o755 });
      }
      await rm(join(sandbox, 'spied'), { force: true });
      return spy;
    }

    it.each([
      ['listed by the server', true],
      ['not listed by the server', false],
    ])('reads the file in place, with no program to copy it, and never touches the URL (%s)', async (_how, artifactChecked) => {
      // The sha256 and the unpacking each read the file themselves.
      const spy = await spyBin();
      const releaseId = `f1-${artifactChecked}`;
      const result = await runWithPath({ ...withFile(releaseId, stored), artifactChecked }, `${spy}:/usr/bin:/bin`);
      expect(result.code, result.stderr).toBe(0);
      // Unlisted, the inflated bytes go through one tee to the two listings; nothing else is copied.
      expect(await readFile(join(sandbox, 'spied'), 'utf8').catch(() => '')).toBe(artifactChecked ? '' : 'tee\n');
      expect(result.stdout).toContain('reading the artifact from this machine\'s store');
      expect(result.stdout).not.toContain('downloading the artifact');
      expect(await readFile(join(root, `releases/${releaseId}/index.html`), 'utf8')).toBe('one');
      expect(await pwnedFiles()).toEqual([]);
    });

    it('reads the file through one tee where descriptors cannot be looked at (no /proc), and never touches the URL', async () => {
      const spy = await spyBin();
      const result = await runWithPath({ ...withFile('f7', stored), artifactChecked: true }, `${spy}:/usr/bin:/bin`, { replace: '[ -e /dev/fd/3 ]', with: 'false' });
      expect(result.code, result.stderr).toBe(0);
      expect((await readFile(join(sandbox, 'spied'), 'utf8')).split('\n').filter(Boolean).sort()).toEqual(['cat', 'tee']);
      expect(result.stdout).not.toContain('downloading the artifact');
      expect(await readFile(join(root, 'releases/f7/index.html'), 'utf8')).toBe('one');
      expect(await pwnedFiles()).toEqual([]);
    });

    it('takes the URL for a file that is not a plain file once opened', async () => {
      // A FIFO that would split the bytes between the sha256 and the unpacking, had it been read.
      const fifo = join(sandbox, 'a fifo');
      await rm(fifo, { force: true });
      execFileSync('mkfifo', [fifo]);
      const result = await runWithPath({ ...withFile('f8', stored, artifacts.one!.url), artifactChecked: true }, '/usr/bin:/bin', {
        replace: '3< "$ARTIFACT_FILE" 4< "$ARTIFACT_FILE"',
        with: `3<> ${shellQuote(fifo)} 4<> ${shellQuote(fifo)}`,
      });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain('could not read the artifact from this machine\'s store; downloading it');
      expect(await readFile(join(root, 'releases/f8/index.html'), 'utf8')).toBe('one');
    });

    it('unpacks only the file it hashed: one replaced between its two opens is left for the URL', async () => {
      // The sha256 reads the stored file; the unpacking is handed other bytes under the same name,
      // as if the store had replaced the object between the two opens.
      const other = join(sandbox, 'replaced._S3rver_object');
      await copyFile(new URL(artifacts.two!.url).pathname, other);
      const result = await runWithPath({ ...withFile('f6', stored, artifacts.one!.url), artifactChecked: true }, '/usr/bin:/bin', {
        replace: '4< "$ARTIFACT_FILE"',
        with: `4< ${shellQuote(other)}`,
      });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain('could not read the artifact from this machine\'s store; downloading it');
      expect(await readFile(join(root, 'releases/f6/index.html'), 'utf8')).toBe('one');
    });

    it('downloads when the file is missing or is not a plain file', async () => {
      await mkdir(join(sandbox, 'a folder.tar.gz'), { recursive: true });
      for (const [releaseId, file] of [['f2', join(sandbox, 'no such file')], ['f3', join(sandbox, 'a folder.tar.gz')]] as const) {
        const result = await runWithPath(withFile(releaseId, file, artifacts.one!.url), '/usr/bin:/bin');
        expect(result.code, result.stderr).toBe(0);
        expect(result.stdout).toContain('downloading the artifact');
        expect(await readFile(join(root, `releases/${releaseId}/index.html`), 'utf8')).toBe('one');
      }
    });

    it('downloads when the file is gone between its check and its opening', async () => {
      const result = await runWithPath(withFile('f5', stored, artifacts.one!.url), '/usr/bin:/bin', { replace: '3< "$ARTIFACT_FILE"', with: '3< "$ARTIFACT_FILE.gone"' });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('downloading the artifact');
      expect(await readFile(join(root, 'releases/f5/index.html'), 'utf8')).toBe('one');
    });

    it('keeps the sha256 check on what the file held: other bytes make nothing ready', async () => {
      const other = join(sandbox, 'other bytes._S3rver_object');
      await copyFile(new URL(artifacts.two!.url).pathname, other);
      const result = await runWithPath(withFile('f4', other), '/usr/bin:/bin');
      expect(result.code).toBe(HOST_EXIT_CODES.checksumMismatch);
      await expect(stat(join(root, 'releases/f4'))).rejects.toThrow();
      await expect(stat(join(root, 'releases/.f4.partial'))).rejects.toThrow();
    });
  });
});
