import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface GitSource {
  repository: string;
  commit: string;
  ref?: string;
  dirty: boolean;
}

async function git(directory: string, ...args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await run('git', ['-C', directory, ...args], { timeout: 10_000, env: { ...process.env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' } });
    return stdout.trim();
  } catch {
    return undefined;
  }
}

/**
 * A remote URL without its credentials: `https://user:token@host/x.git` → `https://host/x.git`. An
 * scp-like address (`git@host:x.git`) names a login, not a secret, and stays as it is.
 */
export function withoutCredentials(url: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return url;
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
}

/**
 * Where a folder's build came from, when the folder is in a git work tree: the remote (origin, else
 * the work tree's path), the commit checked out, the branch or tag, and whether anything was not
 * committed. Undefined without git or outside a work tree: the push goes on without it.
 */
export async function gitSourceOf(directory: string): Promise<GitSource | undefined> {
  const top = await git(directory, 'rev-parse', '--show-toplevel');
  const commit = await git(directory, 'rev-parse', '--verify', '-q', 'HEAD');
  if (!top || !commit || !/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(commit)) return undefined;
  const remote = await git(directory, 'config', '--get', 'remote.origin.url');
  const ref = (await git(directory, 'symbolic-ref', '-q', '--short', 'HEAD')) || (await git(directory, 'describe', '--tags', '--exact-match', 'HEAD'));
  const status = await git(directory, 'status', '--porcelain', '--untracked-files=normal');
  return {
    repository: withoutCredentials(remote || top),
    commit,
    ...(ref ? { ref: ref.slice(0, 256) } : {}),
    dirty: status === undefined ? true : status.length > 0,
  };
}
