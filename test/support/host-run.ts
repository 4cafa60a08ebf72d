import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type HostScript, renderHostScript } from '@slipway/core';

/**
 * `bash -c script` with stdin from /dev/null, as the local fleet runs host scripts: Node gives a
 * child a socket for stdin, and bash then reads ~/.bashrc first when SHLVL is low (it takes the
 * socket for sshd), so a PATH set there (pyenv's real aws CLI, say) won over the one a test gave.
 */
export function runBash(script: string, options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

/**
 * Runs a generated host script with bash in `cwd`, as a host would: its exit code and output.
 * `edit` changes the text first, for what a test cannot change on this machine (a program missing).
 */
export function runHostScript(script: HostScript, cwd: string, edit: (text: string) => string = (text) => text) {
  return runBash(edit(renderHostScript(script)), { cwd });
}

/** Every file named "pwned" below a folder: what a hostile value creates if it ever reaches a shell. */
export async function pwnedFilesIn(folder: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (current: string) => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      if (entry.name === 'pwned') found.push(join(current, entry.name));
      if (entry.isDirectory() && !entry.isSymbolicLink()) await walk(join(current, entry.name));
    }
  };
  await walk(folder);
  return found;
}
