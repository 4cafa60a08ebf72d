import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { create } from 'tar';

export interface PackedArtifact {
  file: string;
  sha256: string;
  size: number;
  entries: number;
}

async function listEntries(root: string, folder = root): Promise<string[]> {
  const out: string[] = [];
  const names = (await readdir(folder)).sort();
  for (const name of names) {
    const path = join(folder, name);
    out.push(relative(root, path));
    const info = await lstat(path);
    if (info.isDirectory()) out.push(...(await listEntries(root, path)));
  }
  return out;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * tar stores a second name of a file (a hard link, as pnpm's store makes) as a link to the first;
 * hosts refuse every hard link in an artifact, so each name is stored as a file of its own.
 */
class NoHardLinks<K, V> extends Map<K, V> {
  override get(): V | undefined {
    return undefined;
  }
}

/**
 * Packs a folder into a tar.gz whose bytes depend only on the folder's contents: entries sorted,
 * owners and times dropped. The same build therefore gets the same content address.
 */
export async function packDirectory(directory: string, file: string): Promise<PackedArtifact> {
  const info = await stat(directory).catch(() => undefined);
  if (!info?.isDirectory())
    throw new Error(`${directory} is not a folder; name the build output folder to push`);
  const entries = await listEntries(directory);
  if (entries.length === 0) throw new Error(`${directory} is empty; there is nothing to push`);
  await create(
    { gzip: true, file, cwd: directory, portable: true, noDirRecurse: true, mtime: new Date(0), linkCache: new NoHardLinks() },
    entries,
  );
  const { size } = await stat(file);
  return { file, sha256: await sha256File(file), size, entries: entries.length };
}
