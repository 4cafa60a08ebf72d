import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type HostScript, renderHostScript } from '@slipway/core';

const exec = promisify(execFile);

/**
 * Runs a generated host script with bash in `cwd`, as a host would: its exit code and output.
 * `edit` changes the text first, for what a test cannot change on this machine (a program missing).
 */
export async function runHostScript(script: HostScript, cwd: string, edit: (text: string) => string = (text) => text) {
  try {
    const { stdout, stderr } = await exec('bash', ['-c', edit(renderHostScript(script))], { cwd });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
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
