import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type Fleet,
  type HostCommand,
  type HostInvocation,
  type InvocationStatus,
  type Logger,
  renderHostScript,
  type Targets,
} from '@slipway/core';

/** Each stream of a host's output is kept to its last 64 KiB: the end is where errors are. */
export const OUTPUT_LIMIT_BYTES = 64 * 1024;
const TIMED_OUT = 124;
const POLL_MS = 250;

export interface LocalFleetOptions {
  /** `<fleetDir>/<host>/` stands for the host's deployRoot. */
  fleetDir: string;
  commandsDir: string;
  /** Called once a command has an outcome on every host: the local stand-in for the SSM status event. */
  onCommandFinished: (commandId: string) => Promise<void>;
  logger: Logger;
}

interface HostRun {
  pid?: number;
  startedAt: string;
}

async function readCapped(file: string): Promise<string> {
  try {
    const buffer = await readFile(file);
    if (buffer.length <= OUTPUT_LIMIT_BYTES) return buffer.toString('utf8');
    const cut = buffer.length - OUTPUT_LIMIT_BYTES;
    return `[${cut} earlier bytes cut]\n${buffer.subarray(cut).toString('utf8')}`;
  } catch {
    return '';
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The local fleet: hosts are folders, commands are the generated scripts run by bash, all hosts of
 * a command in parallel. Each run is detached and writes its exit code to a file when it ends, so a
 * command outlives a crash of the server, and `reconcile` on the next start reports what finished
 * meanwhile (as the reconciling check does with SSM on AWS).
 */
export function createLocalFleet(options: LocalFleetOptions): Fleet & {
  reconcile(): Promise<void>;
  hostDir(host: string): string;
  /** Resolves once no command is running on any host (or after `timeoutMs`). */
  settle(timeoutMs: number): Promise<void>;
  /** Stops reporting; commands still running are reported by `reconcile` on the next start. */
  close(): void;
} {
  const { fleetDir, commandsDir, onCommandFinished, logger } = options;
  const watching = new Set<string>();
  let closed = false;
  const hostDir = (host: string) => join(fleetDir, host);
  const runDir = (commandId: string, host: string) => join(commandsDir, commandId, 'hosts', host);

  async function commandHosts(commandId: string): Promise<string[]> {
    try {
      return JSON.parse(await readFile(join(commandsDir, commandId, 'command.json'), 'utf8')).hosts as string[];
    } catch {
      return [];
    }
  }

  async function invocation(commandId: string, host: string): Promise<HostInvocation | 'running'> {
    const dir = runDir(commandId, host);
    let run: HostRun | undefined;
    try {
      run = JSON.parse(await readFile(join(dir, 'run.json'), 'utf8')) as HostRun;
    } catch {
      run = undefined;
    }
    let exitCode: number | null = null;
    let endedAt: string | undefined;
    try {
      const text = await readFile(join(dir, 'exit'), 'utf8');
      exitCode = Number(text.trim());
      endedAt = (await stat(join(dir, 'exit'))).mtime.toISOString();
    } catch {
      if (run && alive(run.pid)) return 'running';
    }
    const status: InvocationStatus =
      exitCode === null ? 'interrupted' : exitCode === 0 ? 'success' : exitCode === TIMED_OUT ? 'timed_out' : 'failed';
    return {
      host,
      status,
      exitCode,
      stdout: await readCapped(join(dir, 'stdout')),
      stderr: exitCode === null && !run ? 'the command never started on this host' : await readCapped(join(dir, 'stderr')),
      startedAt: run?.startedAt ?? endedAt ?? new Date().toISOString(),
      endedAt: endedAt ?? new Date().toISOString(),
    };
  }

  async function results(commandId: string) {
    const hosts = await commandHosts(commandId);
    const invocations: HostInvocation[] = [];
    let finished = hosts.length > 0;
    for (const host of hosts) {
      const outcome = await invocation(commandId, host);
      if (outcome === 'running') finished = false;
      else invocations.push(outcome);
    }
    return { finished, invocations };
  }

  /** Reports a finished command once; a command whose report failed is reported again on the next start. */
  async function reportWhenFinished(commandId: string) {
    if (watching.has(commandId) || closed) return;
    watching.add(commandId);
    try {
      while (!(await results(commandId)).finished) {
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        if (closed) return;
      }
      if (closed) return;
      await onCommandFinished(commandId);
      await writeFile(join(commandsDir, commandId, 'reported'), new Date().toISOString());
    } catch (error) {
      logger.error('reporting a finished command failed; it is reported again on the next start', { commandId, error });
    } finally {
      watching.delete(commandId);
    }
  }

  async function startOnHost(commandId: string, host: string, script: string, timeoutSeconds: number) {
    const dir = runDir(commandId, host);
    await mkdir(dir, { recursive: true });
    if (await exists(join(dir, 'run.json'))) return;
    if (!(await exists(hostDir(host)))) {
      await writeFile(join(dir, 'stderr'), `no host ${host} in the local fleet (${hostDir(host)} does not exist)\n`);
      await writeFile(join(dir, 'run.json'), JSON.stringify({ startedAt: new Date().toISOString() }));
      await writeFile(join(dir, 'exit'), '127\n');
      return;
    }
    await writeFile(join(dir, 'script.sh'), script, { mode: 0o700 });
    // The exit code is written last and atomically: its presence means the run is over.
    const wrapper =
      'timeout --kill-after=10 "$1" bash "$2/script.sh" >"$2/stdout" 2>"$2/stderr"; ' +
      'printf "%s\\n" "$?" >"$2/exit.tmp"; mv -f "$2/exit.tmp" "$2/exit"';
    const child = spawn('bash', ['-c', wrapper, 'slipway-host', String(timeoutSeconds), dir], {
      cwd: hostDir(host),
      detached: true,
      stdio: 'ignore',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: hostDir(host), LANG: 'C.UTF-8' },
    });
    child.once('error', (error) => {
      // bash could not even start: the run failed on this host, and says why.
      void writeFile(join(dir, 'stderr'), `could not start the command: ${error.message}\n`)
        .then(() => writeFile(join(dir, 'exit'), '127\n'))
        .catch(() => {});
    });
    child.unref();
    const run: HostRun = { startedAt: new Date().toISOString(), ...(child.pid ? { pid: child.pid } : {}) };
    await writeFile(join(dir, 'run.json.tmp'), JSON.stringify(run));
    await rename(join(dir, 'run.json.tmp'), join(dir, 'run.json'));
  }

  return {
    hostDir,

    async resolveTargets(targets: Targets): Promise<string[]> {
      if ('hosts' in targets) return [...targets.hosts];
      const names = (await readdir(fleetDir).catch(() => [] as string[])).sort();
      const matching: string[] = [];
      for (const name of names) {
        try {
          const { tags } = JSON.parse(await readFile(join(fleetDir, name, '.slipway-host.json'), 'utf8')) as {
            tags?: Record<string, string>;
          };
          if (Object.entries(targets.tags).every(([key, value]) => tags?.[key] === value)) matching.push(name);
        } catch {
          // A folder without host metadata has no tags.
        }
      }
      return matching;
    },

    async send(command: HostCommand) {
      const dir = join(commandsDir, command.commandId);
      await mkdir(dir, { recursive: true });
      if (!(await exists(join(dir, 'command.json')))) {
        const description = { hosts: command.hosts, kind: command.script.kind, sentAt: new Date().toISOString() };
        await writeFile(join(dir, 'command.json.tmp'), JSON.stringify(description));
        await rename(join(dir, 'command.json.tmp'), join(dir, 'command.json'));
      }
      const hosts = await commandHosts(command.commandId);
      await Promise.all(
        hosts.map((host) =>
          startOnHost(
            command.commandId,
            host,
            renderHostScript({ ...command.script, deployRoot: hostDir(host) }),
            command.timeoutSeconds,
          ),
        ),
      );
      void reportWhenFinished(command.commandId);
    },

    results,

    async settle(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (watching.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    },

    close() {
      closed = true;
    },

    async reconcile() {
      const commands = await readdir(commandsDir).catch(() => [] as string[]);
      for (const commandId of commands) {
        if (await exists(join(commandsDir, commandId, 'reported'))) continue;
        if ((await commandHosts(commandId)).length === 0) continue;
        void reportWhenFinished(commandId);
      }
    },
  };
}
