import { createHash } from 'node:crypto';
import { Parser, type ReadEntry } from 'tar';
import { type ArchiveMember, createContainmentCheck, linkRefusal, type MemberKind } from './containment.ts';

/** One file of an artifact, as it will sit under the release folder on every host. */
export interface ManifestEntry {
  /** Relative to the release folder, `/`-separated, never starting with `./` (`index.html`, `assets/app.js`). */
  path: string;
  size: number;
  /** sha256 (hex) of the content; a symbolic link's is the hash of its target path. */
  sha256: string;
  /** Set for a symbolic link: where it points. */
  link?: string;
}

export interface ArtifactManifest {
  /** Sorted by path; every path at most once (a later archive entry replaces an earlier one, as tar does). */
  files: ManifestEntry[];
  /** Sum of the files' sizes. */
  bytes: number;
  /** False when the manifest stops short (too many files, an unreadable archive): `reason` says why. */
  complete: boolean;
  reason?: string;
  /** The sha256 of the archive's bytes, when every byte was read: what `refusal`'s absence vouches for. */
  sha256?: string;
  /**
   * Why the archive may not become a release whatever the app's shared paths (containment.ts), in
   * the words hosts use; absent when it broke no rule (or was not read to the end: then no `sha256`).
   */
  refusal?: string;
}

export interface ManifestLimits {
  /** Files beyond this many are not listed and the manifest says it is incomplete. */
  maxFiles: number;
  /**
   * How long reading may take, in ms: a stage has a timeout (Prepare's Lambda: 60 s), and a huge
   * archive must leave an incomplete list rather than a failed release.
   */
  budgetMs: number;
}

export const MANIFEST_LIMITS: ManifestLimits = { maxFiles: 100_000, budgetMs: 30_000 };

/** `./a//b/` → `a/b`; the archive's own spelling of a path must not make two entries of one file. */
export function normalizeArchivePath(path: string): string {
  return path
    .split('/')
    .filter((segment) => segment !== '' && segment !== '.')
    .join('/');
}

/**
 * The manifest of a `.tar.gz` (or plain `.tar`) artifact, read once from a stream of its bytes:
 * every regular file with its size and sha256, and every symbolic link with its target. Directories
 * are implied by the paths. Nothing is written anywhere; memory stays bounded by the file count.
 */
export async function manifestOf(bytes: AsyncIterable<Uint8Array>, limits: ManifestLimits = MANIFEST_LIMITS): Promise<ArtifactManifest> {
  const files = new Map<string, ManifestEntry>();
  let stopped: string | undefined;
  const pending: Promise<void>[] = [];

  const containment = createContainmentCheck();
  const whole = createHash('sha256');
  const parser = new Parser({
    strict: false,
    onwarn: (code: string, message: string | Error) => {
      stopped ??= `the archive could not be read (${code}: ${message instanceof Error ? message.message : message})`;
    },
  });
  let refusal: string | undefined;
  parser.on('entry', (entry: ReadEntry) => {
    const path = normalizeArchivePath(entry.path);
    const refused = containment.add(memberOf(entry));
    if (refused) {
      // Hosts refuse such an artifact (nothing may land outside the release folder): so is the release.
      refusal ??= refused;
      stopped ??= `the archive may not become a release: ${refused}`;
      entry.resume();
      return;
    }
    const counted = files.has(path) || files.size < limits.maxFiles;
    if (!counted) stopped ??= `the archive has more than ${limits.maxFiles} files; only the first ${limits.maxFiles} are listed`;
    if (!counted || path === '' || (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'ContiguousFile' && entry.type !== 'SymbolicLink')) {
      entry.resume();
      return;
    }
    if (entry.type === 'SymbolicLink') {
      const link = entry.linkpath ?? '';
      files.set(path, { path, size: 0, sha256: createHash('sha256').update(link).digest('hex'), link });
      entry.resume();
      return;
    }
    const hash = createHash('sha256');
    let size = 0;
    pending.push(
      new Promise<void>((resolve) => {
        entry.on('data', (chunk: Buffer) => {
          size += chunk.length;
          hash.update(chunk);
        });
        entry.on('end', () => {
          files.set(path, { path, size, sha256: hash.digest('hex') });
          resolve();
        });
      }),
    );
  });
  const done = new Promise<void>((resolve, reject) => {
    parser.on('end', () => resolve());
    parser.on('error', (error: Error) => reject(error));
  });

  const deadline = performance.now() + limits.budgetMs;
  try {
    for await (const chunk of bytes) {
      if (performance.now() > deadline) {
        stopped ??= `the archive could not be read within ${Math.round(limits.budgetMs / 1000)} s; only the files read by then are listed`;
      }
      // Whatever stops the list stops the reading: the rest of the bytes cannot change it.
      if (stopped !== undefined) break;
      whole.update(chunk);
      if (!parser.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
        await new Promise<void>((resolve) => parser.once('drain', () => resolve()));
      }
    }
    if (stopped === undefined) {
      parser.end();
      await done;
      await Promise.all(pending);
    }
  } catch (error) {
    stopped ??= `the archive could not be read (${(error as Error).message})`;
  }

  const sorted = [...files.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const complete = stopped === undefined;
  if (complete) refusal = containment.finish();
  return {
    files: sorted,
    bytes: sorted.reduce((sum, file) => sum + file.size, 0),
    complete,
    ...(stopped === undefined ? {} : { reason: stopped }),
    ...(complete ? { sha256: whole.digest('hex') } : {}),
    ...(refusal ? { refusal } : {}),
  };
}

const KINDS: Record<string, MemberKind> = {
  File: 'file',
  OldFile: 'file',
  ContiguousFile: 'file',
  Directory: 'folder',
  SymbolicLink: 'link',
  Link: 'hardlink',
  CharacterDevice: 'device',
  BlockDevice: 'device',
  FIFO: 'fifo',
};

function memberOf(entry: ReadEntry): ArchiveMember {
  const kind = KINDS[entry.type] ?? 'other';
  return { name: entry.path, kind, ...(kind === 'link' ? { target: entry.linkpath ?? '' } : {}), ...(kind === 'other' ? { typeName: entry.type } : {}) };
}

/**
 * Whether hosts may skip listing the artifact: `checked` when the server read exactly these bytes
 * (`sha256`) to the end and they broke no rule with these shared paths; `refused` with the reason;
 * `unchecked` when it could not tell (no manifest, an incomplete one, other bytes), and hosts check.
 */
export function containmentVerdict(
  manifest: ArtifactManifest | undefined,
  sha256: string,
  sharedPaths: readonly string[],
): { verdict: 'checked' } | { verdict: 'refused'; refusal: string } | { verdict: 'unchecked' } {
  if (manifest?.refusal) return { verdict: 'refused', refusal: manifest.refusal };
  if (!manifest?.complete || manifest.sha256 !== sha256) return { verdict: 'unchecked' };
  const links = manifest.files.flatMap((file) => (file.link === undefined ? [] : [{ path: file.path, target: file.link }]));
  const refusal = linkRefusal(links, sharedPaths);
  return refusal ? { verdict: 'refused', refusal } : { verdict: 'checked' };
}

export interface ManifestDiff {
  added: string[];
  removed: string[];
  changed: string[];
  /** Bytes of the files added or changed: what the new release brings that the old one lacks. */
  bytes: number;
  /** False when either manifest is incomplete: the lists may then miss paths. */
  complete: boolean;
}

/**
 * What changes on a host moving from `from` (nothing, for a first release) to `to`: paths added,
 * removed, and changed (content, or a link's target, or a file turned link), each sorted.
 */
export function diffManifests(from: ArtifactManifest | undefined, to: ArtifactManifest): ManifestDiff {
  const before = new Map((from?.files ?? []).map((file) => [file.path, file]));
  const added: string[] = [];
  const changed: string[] = [];
  let bytes = 0;
  for (const file of to.files) {
    const old = before.get(file.path);
    if (!old) {
      added.push(file.path);
      bytes += file.size;
    } else if (old.sha256 !== file.sha256 || old.link !== file.link) {
      changed.push(file.path);
      bytes += file.size;
    }
  }
  const after = new Set(to.files.map((file) => file.path));
  const removed = (from?.files ?? []).filter((file) => !after.has(file.path)).map((file) => file.path);
  return { added, removed, changed, bytes, complete: to.complete && (from?.complete ?? true) };
}
