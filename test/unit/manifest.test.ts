import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { create, Header } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ArtifactManifest, containmentVerdict, diffManifests, manifestOf } from '../../packages/core/src/manifest.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'slipway-manifest-'));
});
afterAll(async () => rm(work, { recursive: true, force: true }));

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

/** A .tar.gz of `files` (a value starting with `->` is a symbolic link), listed as `entries` name them. */
async function archive(files: Record<string, string>, entries: string[] = Object.keys(files), gzip = true): Promise<Buffer> {
  const dir = await mkdtemp(join(work, 'src-'));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    if (content.startsWith('->')) await symlink(content.slice(2), join(dir, path));
    else await writeFile(join(dir, path), content);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of create({ gzip, cwd: dir, portable: true }, entries)) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** The bytes in small pieces, as a network stream gives them. */
function streamOf(bytes: Buffer, pieceSize = 1000): AsyncIterable<Uint8Array> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += pieceSize) pieces.push(bytes.subarray(i, i + pieceSize));
  return Readable.from(pieces);
}

/** A raw tar entry header for a hostile path (tar's own `create` refuses to write one). */
function rawEntry(path: string, content: string): Buffer {
  const body = Buffer.from(content);
  const header = Buffer.alloc(512);
  new Header({ path, mode: 0o644, size: body.length, type: 'File', mtime: new Date(0) }).encode(header, 0);
  const padding = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([header, body, padding]);
}

describe('an artifact\'s manifest', () => {
  it('lists every file with size and sha256 and every link with its target, paths relative and sorted', async () => {
    const bytes = await archive({ 'index.html': '<h1>v2</h1>', 'assets/app.js': 'console.log(2)', latest: '->index.html' }, ['.']);
    const manifest = await manifestOf(streamOf(bytes));
    expect(manifest).toEqual({
      complete: true,
      // What a missing refusal vouches for: every byte of exactly this archive was read.
      sha256: createHash('sha256').update(bytes).digest('hex'),
      bytes: 11 + 14,
      files: [
        { path: 'assets/app.js', size: 14, sha256: sha('console.log(2)') },
        { path: 'index.html', size: 11, sha256: sha('<h1>v2</h1>') },
        { path: 'latest', size: 0, sha256: sha('index.html'), link: 'index.html' },
      ],
    });
  });

  it('reads a plain tar too, and a path spelled ./a or a//b once', async () => {
    const bytes = await archive({ 'a/b.txt': 'b' }, ['./a/b.txt'], false);
    expect((await manifestOf(streamOf(bytes))).files.map((f) => f.path)).toEqual(['a/b.txt']);
  });

  it('keeps the last of two entries for one path, as unpacking does', async () => {
    const first = rawEntry('index.html', 'old');
    const second = rawEntry('./index.html', 'new');
    const manifest = await manifestOf(streamOf(Buffer.concat([first, second, Buffer.alloc(1024)])));
    expect(manifest.files).toEqual([{ path: 'index.html', size: 3, sha256: sha('new') }]);
    expect(manifest.complete).toBe(true);
  });

  it('stops at the file limit and says the list is incomplete', async () => {
    const files = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`f${String(i).padStart(2, '0')}`, String(i)]));
    const manifest = await manifestOf(streamOf(await archive(files)), { maxFiles: 10, budgetMs: 30_000 });
    expect(manifest.files).toHaveLength(10);
    expect(manifest.complete).toBe(false);
    expect(manifest.reason).toBe('the archive has more than 10 files; only the first 10 are listed');
  });

  it('stops reading when its time is up, listing what it read by then, instead of failing', async () => {
    const manifest = await manifestOf(streamOf(await archive({ 'a.txt': 'a', 'b.txt': 'b' })), { maxFiles: 10, budgetMs: -1 });
    expect(manifest.complete).toBe(false);
    expect(manifest.reason).toBe('the archive could not be read within 0 s; only the files read by then are listed');
    expect(manifest.files).toEqual([]);
  });

  it('refuses a path outside the release folder, in the words hosts use, and vouches for nothing', async () => {
    const refusals = {
      '../../etc/cron.d/evil': `member '../../etc/cron.d/evil' has a '..' segment`,
      '/etc/passwd': `member '/etc/passwd' is an absolute path`,
      'a/../../b': `member 'a/../../b' has a '..' segment`,
    };
    for (const [hostile, refusal] of Object.entries(refusals)) {
      const bytes = Buffer.concat([rawEntry('ok.txt', 'ok'), rawEntry(hostile, 'x'), Buffer.alloc(1024)]);
      const manifest = await manifestOf(streamOf(bytes));
      expect(manifest.complete, hostile).toBe(false);
      expect(manifest.refusal).toBe(refusal);
      expect(manifest.reason).toContain(refusal);
      expect(manifest.sha256).toBeUndefined();
      expect(manifest.files.map((f) => f.path)).toEqual(['ok.txt']);
      const verdict = containmentVerdict(manifest, createHash('sha256').update(bytes).digest('hex'), []);
      expect(verdict).toEqual({ verdict: 'refused', refusal });
    }
  });

  it('vouches for an archive only to the bytes it read: another sha256, or an incomplete list, leaves hosts to check', async () => {
    const bytes = await archive({ 'index.html': 'x', up: '->..' });
    const manifest = await manifestOf(streamOf(bytes));
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    // "up -> .." points at the release's parent: refused once the whole archive is read.
    expect(containmentVerdict(manifest, sha256, [])).toEqual({ verdict: 'refused', refusal: `member 'up' is a symbolic link to '..' and its target is outside the release` });
    const fine = await archive({ 'index.html': 'x', 'public/storage': '->../storage/app' });
    const fineManifest = await manifestOf(streamOf(fine));
    const fineSha = createHash('sha256').update(fine).digest('hex');
    expect(containmentVerdict(fineManifest, fineSha, [])).toEqual({ verdict: 'checked' });
    expect(containmentVerdict(fineManifest, 'other'.padEnd(64, '0'), [])).toEqual({ verdict: 'unchecked' });
    expect(containmentVerdict({ ...fineManifest, complete: false }, fineSha, [])).toEqual({ verdict: 'unchecked' });
    expect(containmentVerdict(undefined, fineSha, [])).toEqual({ verdict: 'unchecked' });
    // Through a shared path (a link on every host), ".." no longer says where it leads.
    const throughShared = await archive({ 'index.html': 'x', cache: '->storage/..' });
    const throughManifest = await manifestOf(streamOf(throughShared));
    const throughSha = createHash('sha256').update(throughShared).digest('hex');
    expect(containmentVerdict(throughManifest, throughSha, [])).toEqual({ verdict: 'checked' });
    expect(containmentVerdict(throughManifest, throughSha, ['storage'])).toEqual({
      verdict: 'refused',
      refusal: `member 'cache' is a symbolic link to 'storage/..' and its target climbs with '..' after going through 'storage', a symbolic link in the release`,
    });
  });

  it('says so when the bytes are no archive, and never throws', async () => {
    const manifest = await manifestOf(streamOf(Buffer.from('this is not a tarball at all, just text\n'.repeat(40))));
    expect(manifest.complete).toBe(false);
    expect(manifest.reason).toMatch(/^the archive could not be read/);
    const truncated = await archive({ 'big.bin': 'x'.repeat(100_000) }, undefined, false);
    const cut = await manifestOf(streamOf(truncated.subarray(0, 20_000)));
    expect(cut.complete).toBe(false);
  });
});

describe('the diff of two manifests', () => {
  const manifest = (files: Record<string, string>): ArtifactManifest => ({
    complete: true,
    bytes: 0,
    files: Object.entries(files)
      .map(([path, content]) => (content.startsWith('->') ? { path, size: 0, sha256: sha(content.slice(2)), link: content.slice(2) } : { path, size: content.length, sha256: sha(content) }))
      .sort((a, b) => a.path.localeCompare(b.path)),
  });

  it('names the paths added, removed and changed, and the bytes the new release brings', () => {
    const from = manifest({ 'index.html': 'v1', 'old.css': 'x', 'same.js': 'same', current: '->a' });
    const to = manifest({ 'index.html': 'v2!', 'new.css': 'yyyy', 'same.js': 'same', current: '->b' });
    expect(diffManifests(from, to)).toEqual({
      added: ['new.css'],
      removed: ['old.css'],
      changed: ['current', 'index.html'],
      bytes: 4 + 3,
      complete: true,
    });
  });

  it('against nothing live: every file is added', () => {
    expect(diffManifests(undefined, manifest({ a: '1', 'b/c': '22' }))).toEqual({ added: ['a', 'b/c'], removed: [], changed: [], bytes: 3, complete: true });
  });

  it('is incomplete when either side is', () => {
    expect(diffManifests({ ...manifest({}), complete: false }, manifest({ a: '1' })).complete).toBe(false);
    expect(diffManifests(manifest({}), { ...manifest({ a: '1' }), complete: false }).complete).toBe(false);
  });
});
