import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { containmentVerdict, HOST_EXIT_CODES, type HostScript, manifestOf, renderHostScript, shellQuote } from '@slipway/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pwnedFilesIn, runHostScript } from '../support/host-run.ts';
import { type Member, tarBlocks, tarball } from '../support/hostile-archive.ts';
import { temporaryDirectory } from '../support/stand-ins.ts';

let sandbox: string;
let outside: string;
let hosts = 0;
/** Whether hosts read the artifact from a file on this machine (the local fleet) instead of downloading it. */
let readsFile = false;

/** A host with one good release live, and an "outside" folder that attacks aim at. */
async function liveHost() {
  hosts += 1;
  const deployRoot = join(sandbox, `host ${hosts} 'q' $(touch pwned)`, 'srv', 'app');
  const good = await artifact(`good-${hosts}`, [{ name: 'index.html', type: 'file', content: 'good' }]);
  const host = {
    deployRoot,
    distribute: (releaseId: string, art: { url: string; sha256: string }, sharedPaths: string[] = [], artifactChecked = false) =>
      run({
        kind: 'distribute', deployRoot, releaseId, version: '1', artifactUrl: art.url, sha256: art.sha256, sharedPaths, postDeploy: '', artifactChecked,
        ...(readsFile ? { artifactFile: new URL(art.url).pathname } : {}),
      }),
  };
  const distributed = await host.distribute('good', good);
  expect(distributed.code, distributed.stderr).toBe(0);
  const switched = await run({
    kind: 'switch', deployRoot, releaseId: 'good', switchId: 'good', version: '1',
    preRelease: '', postRelease: '', healthCheck: '', healthCheckAttempts: 1, healthCheckIntervalSeconds: 0,
  });
  expect(switched.code, switched.stderr).toBe(0);
  return host;
}

async function artifact(name: string, members: Member[]) {
  const file = join(sandbox, `${name}.tar.gz`);
  const data = tarball(members);
  await writeFile(file, data);
  return { url: `file://${file}`, sha256: createHash('sha256').update(data).digest('hex'), data };
}

const run = (script: HostScript) => runHostScript(script, sandbox);

/** Every entry below a folder with its type and its content or link target, in order. */
async function snapshot(folder: string, skip: string[] = []): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (current: string) => {
    for (const entry of (await readdir(current)).sort()) {
      const path = join(current, entry);
      const name = relative(folder, path);
      if (skip.includes(name)) continue;
      const info = await lstat(path);
      if (info.isSymbolicLink()) lines.push(`link ${name} -> ${await readlink(path)}`);
      else if (info.isDirectory()) {
        lines.push(`dir ${name} ${(info.mode & 0o7777).toString(8)}`);
        await walk(path);
      } else if (info.isFile()) lines.push(`file ${name} ${(info.mode & 0o7777).toString(8)} ${await readFile(path, 'utf8')}`);
      else lines.push(`other ${name}`);
    }
  };
  await walk(folder);
  return lines;
}

const pwnedFiles = () => pwnedFilesIn(sandbox);

/** What the server says of the artifact with these shared paths, from the bytes it would read for the manifest. */
async function serverVerdict(data: Buffer, sharedPaths: string[]) {
  const manifest = await manifestOf((async function* () {
    yield data;
  })());
  return containmentVerdict(manifest, createHash('sha256').update(data).digest('hex'), sharedPaths);
}

/**
 * The distribute step is refused, names the member, and leaves everything but shared/ as it was.
 * The server refuses the same artifact in the same words before any host is touched, unless what is
 * wrong lies in the host's own state or the shared paths alone (`server: 'passes'`): then only hosts
 * can refuse it. And a host told the server checked it (a server whose tar reads the archive otherwise)
 * still writes nothing outside and makes nothing ready.
 */
async function expectRefused(
  members: Member[],
  mentions: string,
  sharedPaths: string[] = [],
  prepare?: (deployRoot: string) => Promise<void>,
  server: 'refuses' | 'passes' = 'refuses',
) {
  const hostile = await artifact(`hostile-${hosts}`, members);
  const verdict = await serverVerdict(hostile.data, sharedPaths);
  if (server === 'refuses') {
    expect(verdict.verdict).toBe('refused');
    expect(verdict.verdict === 'refused' && verdict.refusal).toContain(mentions);
  } else {
    expect(verdict.verdict).toBe('checked');
  }

  const trusting = await liveHost();
  if (prepare) await prepare(trusting.deployRoot);
  const trustingBefore = await snapshot(trusting.deployRoot, ['shared']);
  const told = await trusting.distribute('evil', hostile, sharedPaths, true);
  expect([HOST_EXIT_CODES.unsafeArtifact, HOST_EXIT_CODES.unpackFailed], told.stderr).toContain(told.code);
  if (server === 'passes') expect(told.stderr).toContain(mentions);
  await expect(lstat(join(trusting.deployRoot, 'releases/evil'))).rejects.toThrow();
  expect(await readlink(join(trusting.deployRoot, 'current'))).toBe('releases/good');
  expect(await snapshot(trusting.deployRoot, ['shared'])).toEqual(trustingBefore);

  const host = await liveHost();
  if (prepare) await prepare(host.deployRoot);
  const outsideBefore = await snapshot(outside);
  const rootBefore = await snapshot(host.deployRoot, ['shared']);

  const result = await host.distribute('evil', hostile, sharedPaths);
  // Read the way this run of the suite says, not through a fallback (a shared path is refused before any read).
  if (result.stdout !== '') expect(result.stdout).toContain(readsFile ? 'reading the artifact from this machine\'s store' : 'downloading the artifact');
  expect(result.stderr).not.toContain('downloading it');

  expect(result.code, result.stderr).toBe(HOST_EXIT_CODES.unsafeArtifact);
  expect(result.stderr).toContain('refusing to distribute');
  expect(result.stderr).toContain(mentions);
  expect(await snapshot(outside)).toEqual(outsideBefore);
  await expect(lstat(join(host.deployRoot, 'releases/evil'))).rejects.toThrow();
  expect((await readdir(join(host.deployRoot, 'releases'))).sort()).toEqual(['good']);
  expect(await readlink(join(host.deployRoot, 'current'))).toBe('releases/good');
  expect(await snapshot(host.deployRoot, ['shared'])).toEqual(rootBefore);
  return { host, result };
}

/** From a release folder (and its staging folder, at the same depth) to `outside`, climbing with "..". */
function upToOutside(...rest: string[]) {
  return join(relative(join(sandbox, 'host n', 'srv/app/releases/evil'), outside), ...rest);
}

beforeAll(async () => {
  sandbox = await temporaryDirectory('slipway-contain-');
  outside = join(sandbox, 'outside');
  await mkdir(join(outside, 'nested'), { recursive: true });
  await writeFile(join(outside, 'app.ini'), 'the real app.ini');
  await writeFile(join(outside, 'passwd'), 'root:x:0:0');
  await writeFile(join(outside, 'nested/keep.txt'), 'keep');
});
afterAll(async () => rm(sandbox, { recursive: true, force: true }));

// Both ways a host gets the bytes: downloaded as a stream, and read from a file on this machine,
// opened twice (the sha256 and the unpacking each read it).
describe.each([
  ['downloaded', false],
  ['read from a file on this machine', true],
])('the distribute step refuses an artifact that could write outside its release (%s)', (_how, fromFile) => {
  beforeAll(() => {
    readsFile = fromFile;
  });
  afterAll(() => {
    readsFile = false;
  });

  it('a folder that is a symbolic link out of the release, with a shared path inside it', async () => {
    await expectRefused(
      [{ name: 'conf', type: 'symlink', target: outside }],
      `member 'conf' is a symbolic link to '${outside}' and its target is an absolute path`,
      ['conf/app.ini'],
    );
  });

  it('the same link written relative, climbing out with ".."', async () => {
    const target = upToOutside();
    await expectRefused(
      [{ name: 'conf', type: 'symlink', target }],
      `member 'conf' is a symbolic link to '${target}' and its target is outside the release`,
      ['conf/app.ini'],
    );
  });

  it('a symbolic link out followed by a member below it (conf -> outside, then conf/passwd), in either order', async () => {
    await expectRefused(
      [
        { name: 'conf', type: 'symlink', target: outside },
        { name: 'conf/passwd', type: 'file', content: 'pwned:x:0:0' },
      ],
      `member 'conf/passwd' is inside the symbolic link 'conf'`,
    );
    // Also when the link points inside, is listed after the member, or is spelled differently.
    await expectRefused(
      [
        { name: 'index.html', type: 'file', content: 'x' },
        { name: 'public/', type: 'dir' },
        { name: 'conf//passwd', type: 'file', content: 'pwned:x:0:0' },
        { name: './conf/', type: 'symlink', target: 'public' },
      ],
      `member 'conf//passwd' is inside the symbolic link './conf/'`,
    );
  });

  it('a member named with ".."', async () => {
    await expectRefused([{ name: '../x', type: 'file', content: 'x' }], `member '../x' has a '..' segment`);
    const name = 'a/../../../../../../outside/passwd';
    await expectRefused([{ name, type: 'file', content: 'x' }], `member '${name}' has a '..' segment`);
  });

  it('a member with an absolute name', async () => {
    const name = join(outside, 'passwd');
    await expectRefused([{ name, type: 'file', content: 'pwned:x:0:0' }], `member '${name}' is an absolute path`);
  });

  it('a FIFO and a device node', async () => {
    await expectRefused([{ name: 'index.html', type: 'file', content: 'x' }, { name: 'pipe', type: 'fifo' }], `member 'pipe' is a FIFO`);
    await expectRefused([{ name: 'null', type: 'char' }], `member 'null' is a device node`);
  });

  it('any hard link: one to a file outside, and one to a file inside the archive', async () => {
    const target = upToOutside('passwd');
    await expectRefused([{ name: 'h', type: 'hardlink', target }], `member 'h' is a hard link (hard links are refused)`);
    await expectRefused(
      [{ name: 'a.txt', type: 'file', content: 'a' }, { name: 'b.txt', type: 'hardlink', target: 'a.txt' }],
      `member 'b.txt' is a hard link`,
    );
  });

  it('a symbolic link whose target passes through another symbolic link before climbing out', async () => {
    // x/b -> .. stays inside as text and on disk, but a -> x/b/.. is the release's parent on disk.
    await expectRefused(
      [
        { name: 'x/', type: 'dir' },
        { name: 'x/b', type: 'symlink', target: '..' },
        { name: 'a', type: 'symlink', target: 'x/b/..' },
      ],
      `member 'a' is a symbolic link to 'x/b/..' and its target climbs with '..' after going through 'x/b'`,
    );
  });

  it('a symbolic link whose target contains " -> ", which a listing parser could split at the wrong place', async () => {
    const target = `${upToOutside()} -> x`;
    await expectRefused([{ name: 's', type: 'symlink', target }], `member 's' is a symbolic link to '${target}'`);
  });

  it('a shared path that the artifact ships as a symbolic link inside the release, before any shared path is linked', async () => {
    const { host } = await expectRefused(
      [
        { name: 'storage/seed.txt', type: 'file', content: 'seed' },
        { name: 'etc/', type: 'dir' },
        { name: 'conf', type: 'symlink', target: 'etc' },
      ],
      `the shared path 'conf/app.ini' would go through 'conf' in the release, which is a symbolic link`,
      ['storage', 'conf/app.ini'],
      undefined,
      'passes',
    );
    expect(await readdir(join(host.deployRoot, 'shared'))).toEqual([]);
  });

  it('a shared path inside another shared path', async () => {
    await expectRefused(
      [{ name: 'conf/app.ini', type: 'file', content: 'x' }],
      `the shared path 'conf/app.ini' is inside the shared path 'conf'`,
      ['conf', 'conf/app.ini'],
      undefined,
      'passes',
    );
  });

  it('a shared path that goes through a symbolic link planted under shared/', async () => {
    await expectRefused(
      [{ name: 'index.html', type: 'file', content: 'x' }],
      `the shared path 'conf/new.ini' would go through 'shared/conf', which is a symbolic link`,
      ['conf/new.ini'],
      async (deployRoot) => {
        await mkdir(join(deployRoot, 'shared'), { recursive: true });
        await symlink(outside, join(deployRoot, 'shared/conf'));
      },
      'passes',
    );
  });

  it('a shared path that is absolute or climbs out with ".."', async () => {
    const files: Member[] = [{ name: 'index.html', type: 'file', content: 'x' }];
    const climbing = '../../../../outside/evil';
    await expectRefused(files, `the shared path '${climbing}' must not have empty, '.' or '..' segments`, [climbing], undefined, 'passes');
    await expectRefused(files, `the shared path '${outside}/evil' must be a path relative to the release`, [`${outside}/evil`], undefined, 'passes');
  });
});

/**
 * The archive is unpacked as it arrives, before its sha256 and its listing are checked: these are
 * what that order could newly get wrong. Whatever the archive, nothing outside the staging folder is
 * written while it unpacks, and the staging folder becomes the release only after every check.
 */
describe('the one pass over the artifact', () => {
  /** The step failed with `code`, and the host is as it was: no release, no staging left, current kept. */
  async function expectNotReady(host: { deployRoot: string }, result: { code: number; stderr: string }, code: number) {
    expect(result.code, result.stderr).toBe(code);
    await expect(lstat(join(host.deployRoot, 'releases/evil'))).rejects.toThrow();
    expect((await readdir(join(host.deployRoot, 'releases'))).sort()).toEqual(['good']);
    expect(await readlink(join(host.deployRoot, 'current'))).toBe('releases/good');
  }

  it('writes nothing through a symbolic link the same archive made earlier, however the link is spelled', async () => {
    // Each link is followed by a member below it, aimed at "outside" or at the live release next door.
    await expectRefused(
      [
        { name: 'a', type: 'symlink', target: 'b' },
        { name: 'b', type: 'symlink', target: outside },
        { name: 'a/passwd', type: 'file', content: 'pwned:x:0:0' },
        { name: 'a/nested/keep.txt', type: 'file', content: 'pwned' },
      ],
      // Refused for the link out or for the members below a link, whichever the check meets first.
      `member '`,
    );
    await expectRefused(
      [
        { name: 'up', type: 'symlink', target: '..' },
        { name: 'up/good/index.html', type: 'file', content: 'pwned' },
      ],
      `member 'up/good/index.html' is inside the symbolic link 'up'`,
    );
    await expectRefused(
      [
        { name: 'conf/', type: 'dir' },
        { name: 'conf', type: 'symlink', target: upToOutside() },
        { name: 'conf/passwd', type: 'file', content: 'pwned:x:0:0' },
      ],
      `member 'conf/passwd' is inside the symbolic link 'conf'`,
    );
  });

  it('never writes through a hard link to a file outside, nor gives it a name in the release', async () => {
    // The same name comes again as a file: written through the link, it would overwrite the original.
    await expectRefused(
      [
        { name: 'h', type: 'hardlink', target: join(outside, 'passwd') },
        { name: 'h', type: 'file', content: 'pwned through a hard link' },
      ],
      `member 'h' is a hard link`,
    );
    await expectRefused(
      [
        { name: 'conf', type: 'symlink', target: outside },
        { name: 'h', type: 'hardlink', target: 'conf/passwd' },
        { name: 'h', type: 'file', content: 'pwned through a hard link' },
      ],
      `member 'h' is a hard link`,
    );
  });

  it('never makes ready a tree unpacked from an archive with a byte changed near its end', async () => {
    const members: Member[] = [];
    for (let i = 0; i < 50; i++) members.push({ name: `data/part-${i}.txt`, type: 'file', content: `part ${i} `.repeat(200) });
    const good = tarball(members);
    // The last 8 bytes are gzip's CRC and length: every member unpacks before gzip finds the change.
    const corrupted = Buffer.from(good);
    corrupted[corrupted.length - 6]! ^= 0xff;
    const file = join(sandbox, 'corrupted.tar.gz');
    await writeFile(file, corrupted);
    const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

    // The artifact that was pushed, changed on its way: its sha256 does not match.
    const host = await liveHost();
    const changed = await host.distribute('evil', { url: `file://${file}`, sha256: sha256(good) });
    await expectNotReady(host, changed, HOST_EXIT_CODES.checksumMismatch);
    expect(changed.stderr).toContain('sha256 mismatch');

    // An artifact pushed corrupted: the sha256 matches, the archive does not unpack cleanly.
    const pushedCorrupted = await host.distribute('evil', { url: `file://${file}`, sha256: sha256(corrupted) });
    await expectNotReady(host, pushedCorrupted, HOST_EXIT_CODES.unpackFailed);
    // gzip writes every byte before it checks the CRC (the listing reads, the unpack fails); igzip
    // stops short of the last bytes (the listing fails first): either way, nothing is ready.
    expect(pushedCorrupted.stderr).toMatch(/could not (unpack|read) the artifact/);
  });

  it('unpacks with gzip where igzip is missing, and still makes nothing ready from a corrupted archive', async () => {
    const withoutIgzip = (text: string) => {
      expect(text).toContain('command -v igzip');
      return text.replaceAll('command -v igzip', 'command -v igzip-not-installed-here');
    };
    const host = await liveHost();
    const members: Member[] = [{ name: 'index.html', type: 'file', content: 'by gzip' }];
    for (let i = 0; i < 20; i++) members.push({ name: `data/part-${i}.txt`, type: 'file', content: `part ${i} `.repeat(200) });
    const good = await artifact('by-gzip', members);
    const script = (releaseId: string, art: { url: string; sha256: string }, artifactChecked: boolean): HostScript => ({
      kind: 'distribute', deployRoot: host.deployRoot, releaseId, version: '1', artifactUrl: art.url, sha256: art.sha256, sharedPaths: [], postDeploy: '', artifactChecked,
    });
    for (const artifactChecked of [false, true]) {
      const releaseId = `gzip-${artifactChecked}`;
      const result = await runHostScript(script(releaseId, good, artifactChecked), sandbox, withoutIgzip);
      expect(result.code, result.stderr).toBe(0);
      expect(await readFile(join(host.deployRoot, 'releases', releaseId, 'index.html'), 'utf8')).toBe('by gzip');
    }
    const corrupted = Buffer.from(good.data);
    corrupted[corrupted.length - 6]! ^= 0xff;
    const file = join(sandbox, 'corrupted-for-gzip.tar.gz');
    await writeFile(file, corrupted);
    const broken = { url: `file://${file}`, sha256: createHash('sha256').update(corrupted).digest('hex') };
    for (const artifactChecked of [false, true]) {
      const fresh = await liveHost();
      const result = await runHostScript({ ...script('evil', broken, artifactChecked), deployRoot: fresh.deployRoot }, sandbox, withoutIgzip);
      await expectNotReady(fresh, result, HOST_EXIT_CODES.unpackFailed);
    }
  });

  it('never makes ready a tree unpacked from a truncated download, and starts the next try afresh', async () => {
    const stale = tarball([
      { name: 'stale.txt', type: 'file', content: 'from the broken try' },
      { name: 'padding.txt', type: 'file', content: 'x'.repeat(64 * 1024) },
    ]);
    const whole = tarball([{ name: 'index.html', type: 'file', content: 'whole' }]);
    const wholeSha256 = createHash('sha256').update(whole).digest('hex');
    // The first answer promises more bytes than it sends (curl fails), with a whole member in them.
    let requests = 0;
    const server = createServer((request, response) => {
      requests += 1;
      if (requests === 1) {
        response.writeHead(200, { 'content-length': String(stale.length + 100_000) });
        response.write(stale, () => response.destroy());
      } else {
        response.end(whole);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/artifact.tar.gz`;
    try {
      const host = await liveHost();
      // Cut short where the file ends: curl is content, only the sha256 tells.
      const cut = join(sandbox, 'cut.tar.gz');
      await writeFile(cut, whole.subarray(0, whole.length - 20));
      const truncated = await host.distribute('evil', { url: `file://${cut}`, sha256: wholeSha256 });
      await expectNotReady(host, truncated, HOST_EXIT_CODES.checksumMismatch);

      const retried = await host.distribute('evil', { url, sha256: wholeSha256 });
      expect(retried.code, retried.stderr).toBe(0);
      expect(retried.stderr).toContain('download attempt 1 failed');
      expect(requests).toBe(2);
      expect(await snapshot(join(host.deployRoot, 'releases/evil'), ['.slipway-ready'])).toEqual(['file index.html 644 whole']);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('keeps its work files in the state folder, empty between distributes, and makes none anew: no file is deleted per distribute', async () => {
    const host = await liveHost();
    const state = join(host.deployRoot, '.slipway', 'distribute');
    expect((await lstat(state)).mode & 0o777).toBe(0o700);
    const workFiles = async () => {
      const files = new Map<string, { ino: number; size: number; fifo: boolean }>();
      for (const name of await readdir(state)) {
        const info = await lstat(join(state, name));
        files.set(name, { ino: info.ino, size: info.size, fifo: info.isFIFO() });
      }
      return files;
    };
    const before = await workFiles();
    expect([...before.keys()].sort()).toEqual([
      'artifact.errors', 'artifact.hash-fifo', 'artifact.links', 'artifact.listing', 'artifact.listing-fifo',
      'artifact.names', 'artifact.names-fifo', 'artifact.sha256',
    ]);
    expect([...before.values()].every((file) => file.size === 0)).toBe(true);

    const next = await artifact('next', [{ name: 'index.html', type: 'file', content: 'next' }, { name: 'link', type: 'symlink', target: 'index.html' }]);
    for (const [releaseId, checked] of [['next', false], ['next-checked', true]] as const) {
      const result = await host.distribute(releaseId, next, [], checked);
      expect(result.code, result.stderr).toBe(0);
      expect(await workFiles()).toEqual(before);
    }
    const refused = await host.distribute('next-refused', { ...next, sha256: 'f'.repeat(64) });
    expect(refused.code, refused.stderr).toBe(HOST_EXIT_CODES.checksumMismatch);
    expect(await workFiles()).toEqual(before);
    expect((await readdir(join(host.deployRoot, 'releases'))).sort()).toEqual(['good', 'next', 'next-checked']);
  });

  it('never reads an earlier distribute\'s errors, and replaces, never writes through, anything but its own file or FIFO under a work file\'s name', async () => {
    const host = await liveHost();
    const state = join(host.deployRoot, '.slipway', 'distribute');
    const art = await artifact('planted', [{ name: 'index.html', type: 'file', content: 'planted' }]);
    // What a checked distribute refuses when tar said it (an absolute member name), left by an earlier one.
    await writeFile(join(state, 'artifact.errors'), 'tar: Removing leading `/\' from member names\n');
    const target = join(outside, 'work-target');
    await writeFile(target, 'untouched');
    await rm(join(state, 'artifact.sha256'));
    await symlink(target, join(state, 'artifact.sha256'));
    await rm(join(state, 'artifact.hash-fifo'));
    await mkdir(join(state, 'artifact.hash-fifo', 'inside'), { recursive: true });
    const first = await host.distribute('planted', art, [], true);
    expect(first.code, first.stderr).toBe(0);
    expect(await readFile(target, 'utf8')).toBe('untouched');
    const [sha256, fifo, errors] = await Promise.all(['sha256', 'hash-fifo', 'errors'].map((name) => lstat(join(state, `artifact.${name}`))));
    expect(sha256!.isFile() && sha256!.size === 0).toBe(true);
    expect(fifo!.isFIFO()).toBe(true);
    expect(errors!.size).toBe(0);

    // The whole work folder a link to a folder outside: replaced by a folder of its own.
    const elsewhere = join(outside, 'work-folder');
    await mkdir(elsewhere, { recursive: true });
    await rm(state, { recursive: true });
    await symlink(elsewhere, state);
    const second = await host.distribute('planted-again', art, [], true);
    expect(second.code, second.stderr).toBe(0);
    expect(await readdir(elsewhere)).toEqual([]);
    const folder = await lstat(state);
    expect(folder.isDirectory() && (folder.mode & 0o777) === 0o700).toBe(true);
  });

  it('without flock, keeps each distribute\'s work files beside its staging folder and removes them', async () => {
    const withoutFlock = (text: string) => {
      expect(text).toContain('command -v flock');
      return text.replaceAll('command -v flock', 'command -v flock-not-installed-here');
    };
    const deployRoot = join(sandbox, 'no-flock', 'srv', 'app');
    const art = await artifact('no-flock', [{ name: 'index.html', type: 'file', content: 'unlocked' }]);
    for (const artifactChecked of [false, true]) {
      const releaseId = `unlocked-${artifactChecked}`;
      const script: HostScript = {
        kind: 'distribute', deployRoot, releaseId, version: '1', artifactUrl: art.url, sha256: art.sha256, sharedPaths: [], postDeploy: '', artifactChecked,
      };
      const result = await runHostScript(script, sandbox, withoutFlock);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain('flock is not installed');
    }
    expect((await readdir(join(deployRoot, 'releases'))).sort()).toEqual(['unlocked-false', 'unlocked-true']);
    expect((await readdir(join(deployRoot, '.slipway'))).filter((name) => name.startsWith('distribute'))).toEqual([]);
    expect((await readdir(join(deployRoot, 'releases'))).some((name) => name.includes('partial'))).toBe(false);
  });

  // Root enters any folder; a host's SSH user does not, and an archive may leave one it cannot.
  const nobodyAvailable = process.getuid?.() === 0 && spawnSync('id', ['-u', 'nobody']).status === 0;
  it.skipIf(!nobodyAvailable)('removes, as a user other than root, a staging folder the archive left without permissions', async () => {
    const place = await mkdtemp(join(tmpdir(), 'slipway-nobody-'));
    try {
      await chmod(place, 0o777);
      const data = tarball([
        { name: 'locked/', type: 'dir', mode: 0 },
        { name: 'locked/inner/', type: 'dir', mode: 0o500 },
        { name: 'locked/inner/file.txt', type: 'file', content: 'x' },
      ]);
      const file = join(place, 'locked.tar.gz');
      await writeFile(file, data, { mode: 0o644 });
      const deployRoot = join(place, 'srv/app');
      const script = join(place, 'distribute.sh');
      await writeFile(script, renderHostScript({
        kind: 'distribute', deployRoot, releaseId: 'evil', version: '1', artifactUrl: `file://${file}`,
        sha256: 'f'.repeat(64), sharedPaths: [], postDeploy: '',
      }), { mode: 0o644 });
      const result = spawnSync('su', ['-s', '/bin/bash', 'nobody', '-c', `cd / && bash ${shellQuote(script)}`], { encoding: 'utf8' });
      expect(result.status, result.stderr).toBe(HOST_EXIT_CODES.checksumMismatch);
      expect(await readdir(join(deployRoot, 'releases'))).toEqual([]);
    } finally {
      spawnSync('rm', ['-rf', place]);
    }
  });

  it('keeps the staging folder to this user while the archive unpacks, then gives the release the usual mode', async () => {
    // Two gzip members, which gunzip reads as one stream: the first is sent, the second held back.
    // gzip reads 32 KiB at a time and igzip holds back up to a few MiB until more arrives, so the
    // first is large and incompressible.
    const first = gzipSync(tarBlocks([{ name: 'big.txt', type: 'file', content: randomBytes(6 * 1024 * 1024).toString('base64') }]));
    const rest = gzipSync(Buffer.concat([tarBlocks([{ name: 'index.html', type: 'file', content: 'x' }]), Buffer.alloc(1024)]));
    const sha256 = createHash('sha256').update(Buffer.concat([first, rest])).digest('hex');
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const server = createServer((request, response) => {
      response.writeHead(200, { 'content-length': String(first.length + rest.length) });
      response.write(first);
      void held.then(() => response.end(rest));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const host = await liveHost();
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/artifact.tar.gz`;
      const distributed = host.distribute('modes', { url, sha256 });
      const partial = join(host.deployRoot, 'releases/.modes.partial');
      const deadline = Date.now() + 60_000;
      while (!(await stat(join(partial, 'big.txt')).then(() => true, () => false))) {
        if (Date.now() > deadline) throw new Error('the first member was never unpacked while the download went on');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect((await stat(partial)).mode & 0o777).toBe(0o700);
      release();
      const result = await distributed;
      expect(result.code, result.stderr).toBe(0);
      expect((await stat(join(host.deployRoot, 'releases/modes'))).mode & 0o777).toBe(0o755);
    } finally {
      release();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('the distribute step accepts an artifact that stays inside its release', () => {
  it.each([
    ['each host lists it', false],
    ['the server checked it', true],
  ])('symbolic links that point inside the release, and long, odd names (%s)', async (_how, artifactChecked) => {
    const host = await liveHost();
    const longFolder = `${'a'.repeat(100)} with 'quotes' and $(touch pwned)`;
    const longName = `${'b'.repeat(150)}\nlrwxrwxrwx 0/0 0 2024-01-01 00:00 conf -> ${outside}\\x é.txt`;
    const members: Member[] = [
      { name: './', type: 'dir' },
      { name: './build/', type: 'dir' },
      { name: './build/app.js', type: 'file', content: 'app' },
      { name: './latest', type: 'symlink', target: './build' },
      { name: 'node_modules/tool/bin/tool', type: 'file', content: 'tool' },
      { name: 'node_modules/.bin/tool', type: 'symlink', target: '../tool/bin/tool' },
      { name: `${longFolder}/${longName}`, type: 'file', content: 'long' },
      { name: 'long-link', type: 'symlink', target: `./${longFolder}/${longName}` },
      { name: 'arrow -> trick', type: 'symlink', target: 'build/app.js' },
      { name: `$(touch pwned)]\`touch pwned\` [x]`, type: 'symlink', target: `${longFolder}/../build` },
      // Down through another link, and down through a shared path (Laravel's public/storage).
      { name: 'app-via-latest', type: 'symlink', target: 'latest/app.js' },
      { name: 'storage/app/public/logo.txt', type: 'file', content: 'logo' },
      { name: 'public/storage', type: 'symlink', target: '../storage/app/public' },
    ];
    expect(`${longFolder}/${longName}`.length).toBeGreaterThanOrEqual(300);
    const fine = await artifact('fine', members);
    // The server's reading passes exactly what hosts pass: a refusal here would stop a good release.
    expect(await serverVerdict(fine.data, ['storage'])).toEqual({ verdict: 'checked' });
    const result = await host.distribute('fine', fine, ['storage'], artifactChecked);
    expect(result.code, result.stderr).toBe(0);
    const release = join(host.deployRoot, 'releases/fine');
    expect(await readlink(join(release, 'latest'))).toBe('./build');
    expect(await readFile(join(release, 'latest/app.js'), 'utf8')).toBe('app');
    expect(await readFile(join(release, 'node_modules/.bin/tool'), 'utf8')).toBe('tool');
    expect(await readFile(join(release, longFolder, longName), 'utf8')).toBe('long');
    expect(await readFile(join(release, 'long-link'), 'utf8')).toBe('long');
    expect(await readFile(join(release, 'arrow -> trick'), 'utf8')).toBe('app');
    expect(await readFile(join(release, `$(touch pwned)]\`touch pwned\` [x]`, 'app.js'), 'utf8')).toBe('app');
    expect(await readFile(join(release, 'app-via-latest'), 'utf8')).toBe('app');
    expect(await readFile(join(release, 'public/storage/logo.txt'), 'utf8')).toBe('logo');
    expect(await readlink(join(release, 'storage'))).toBe(join(host.deployRoot, 'shared/storage'));
    expect(await pwnedFiles()).toEqual([]);
  });

  it('starts a shared path nobody ships as an empty file when its last segment has a dot, else as a folder', async () => {
    const host = await liveHost();
    const sharedPaths = ['.env', 'config/database.yml', 'storage', 'public/uploads', 'seeded.d'];
    const shipped = await artifact('shared-rule', [
      { name: 'index.html', type: 'file', content: 'x' },
      { name: 'seeded.d/one.conf', type: 'file', content: 'seed' },
    ]);
    const result = await host.distribute('shared', shipped, sharedPaths);
    expect(result.code, result.stderr).toBe(0);
    const shared = join(host.deployRoot, 'shared');
    for (const file of ['.env', 'config/database.yml']) {
      expect((await stat(join(shared, file))).isFile(), file).toBe(true);
      expect(await readFile(join(shared, file), 'utf8')).toBe('');
    }
    for (const folder of ['storage', 'public/uploads']) {
      expect((await stat(join(shared, folder))).isDirectory(), folder).toBe(true);
      expect(await readdir(join(shared, folder))).toEqual([]);
    }
    // A path that a release ships is seeded by it, whatever its name looks like.
    expect(await readFile(join(shared, 'seeded.d/one.conf'), 'utf8')).toBe('seed');
    for (const path of sharedPaths) {
      expect(await readlink(join(host.deployRoot, 'releases/shared', path))).toBe(join(shared, path));
    }
  });

  it('left no trace of any hostile name being executed', async () => {
    expect(await pwnedFiles()).toEqual([]);
  });
});
