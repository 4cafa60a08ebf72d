import { spawn } from 'node:child_process';
import { link, mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { availableParallelism, getPriority, setPriority } from 'node:os';
import { join } from 'node:path';
import {
  type Fleet,
  type HostCommand,
  type HostInvocation,
  type HostOutputRead,
  type InvocationStatus,
  type Logger,
  renderHostScript,
  type ResolvedTargets,
  type Targets,
} from '@slipway/core';
import { readGrowingOutput } from './output-files.ts';

/** Each stream of a host's output is kept to its last 64 KiB: the end is where errors are. */
export const OUTPUT_LIMIT_BYTES = 64 * 1024;
const TIMED_OUT = 124;
/**
 * The reporter is woken when a host script it started ends; this slower look only finds what no
 * wake-up announces: runs started before a restart of the server, or a wake-up lost to a race.
 */
const FALLBACK_POLL_MS = 1000;
/** A command from before the timeout was kept in command.json. */
const DEFAULT_TIMEOUT_SECONDS = 3600;
/**
 * Host scripts running at once, all commands together. Spawning hundreds at once blocks the event
 * loop the API answers on for seconds (issue 18); a bound of eight per core keeps each burst of
 * spawns short. It is not lower because a distribute waits on the network and the disk part of
 * the time, and on a machine shared with other work each process gets its own share of the CPU:
 * two per core made a 20-host 50 MB release twice as slow as no bound at all (bench/fleet.ts).
 */
export function defaultHostConcurrency(): number {
  return Math.max(4, availableParallelism() * 8);
}
/**
 * A command folder being deleted is first renamed to this prefix (ids never start with a dot), so a
 * crash mid-delete leaves a folder that no command id names; the next prune finishes it.
 */
const DELETING = '.deleting-';
/**
 * How much lower than the server's the host scripts' CPU priority is (a nice value added to its
 * own). Local hosts share this machine's cores with the server: at equal priority a 500-host
 * release's bash pipelines, dozens of processes at once, left the API a small share of the CPU, and
 * a read of the release took seconds while they ran (bench/fleet.ts). Lower, the scripts still get
 * every cycle the server does not use, so the release is no slower.
 */
export const HOST_SCRIPT_NICENESS = 10;
/** In a host's run folder: the run waits its turn and has not been started. */
const WAITING = 'waiting';

export interface LocalFleetOptions {
  /** `<fleetDir>/<host>/` stands for the host's deployRoot. */
  fleetDir: string;
  commandsDir: string;
  /** Called once a command has an outcome on every host: the local stand-in for the SSM status event. */
  onCommandFinished: (commandId: string) => Promise<void>;
  logger: Logger;
  /** Host scripts running at once over all commands; the others wait their turn (default: defaultHostConcurrency()). */
  maxConcurrentHosts?: number;
  /**
   * The file on this machine that holds the artifact a distribute's URL names, if any (the S3
   * stand-in's, localObjectFile): these hosts share the machine's disk, so they read it in place
   * (HostScript.artifactFile) instead of each downloading a copy through the stand-in.
   */
  artifactFile?: (artifactUrl: string) => string | undefined;
}

interface HostRun {
  /** The run's own process, which writes its exit code. */
  pid?: number;
  /** The process group `timeout` made for the script and everything it starts. */
  group?: number;
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

/** The file's mtime in ms, or undefined when it is not there. */
async function modifiedAt(path: string): Promise<number | undefined> {
  return stat(path).then(
    (stats) => stats.mtimeMs,
    () => undefined,
  );
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * The run's exit code and when it was written, once the run wrote it whole. The run writes the file
 * in place (a rename is one more program per host), so a file caught between its creation and its
 * one short write is empty: that counts as not written yet.
 */
async function exitOf(dir: string): Promise<{ code: number; at: Date } | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, 'exit'), 'utf8');
  } catch {
    return undefined;
  }
  if (!/^\d+\n$/.test(text)) return undefined;
  const at = await stat(join(dir, 'exit')).then(
    (stats) => stats.mtime,
    () => new Date(),
  );
  return { code: Number(text), at };
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
 * Whether anything of the run still runs: its own process, or the script's process group (which
 * outlives a killed run process, and may still switch the host).
 */
function runAlive(run: { pid?: number; group?: number } | undefined): boolean {
  return run !== undefined && (alive(run.pid) || (run.group !== undefined && alive(-run.group)));
}

/**
 * The local fleet: hosts are folders, commands are the generated scripts run by bash, all hosts of
 * a command in parallel. Each run outlives the server (its launcher is a session of its own) and
 * writes its exit code to a file when it ends, so a command outlives a crash of the server, and
 * `reconcile` on the next start reports what finished meanwhile (as the reconciling check does with
 * SSM on AWS).
 */
export function createLocalFleet(options: LocalFleetOptions): Fleet & {
  readOutput: NonNullable<Fleet['readOutput']>;
  reconcile(): Promise<void>;
  hostDir(host: string): string;
  /** Resolves once no command is running on any host (or after `timeoutMs`). */
  settle(timeoutMs: number): Promise<void>;
  /** Stops reporting; commands still running are reported by `reconcile` on the next start. */
  close(): void;
  /**
   * Deletes the folders of commands that are over and reported, and whose last file was written
   * before `olderThan`; also leftovers of a creation or a deletion cut short, once as old. A command
   * still running on any host, or still to be reported, is kept. Returns the ids deleted.
   */
  prune(olderThan: Date): Promise<string[]>;
} {
  const { fleetDir, commandsDir, onCommandFinished, logger } = options;
  const maxConcurrentHosts = options.maxConcurrentHosts ?? defaultHostConcurrency();
  if (!Number.isInteger(maxConcurrentHosts) || maxConcurrentHosts < 1) {
    throw new Error(`maxConcurrentHosts must be a whole number of at least 1, not ${maxConcurrentHosts}`);
  }
  const watching = new Set<string>();
  let closed = false;
  /** `<commandId>/<host>` of every run this process waits to start or has started and not seen end. */
  const ours = new Set<string>();
  const waitingToStart: { commandId: string; host: string; timeoutSeconds: number }[] = [];
  let runningNow = 0;
  /** Per command: how many of its runs ended (a reporter compares before and after it looks), and who to wake. */
  const endings = new Map<string, { count: number; wake?: () => void }>();
  const runKey = (commandId: string, host: string) => `${commandId}/${host}`;
  const hostDir = (host: string) => join(fleetDir, host);
  const runDir = (commandId: string, host: string) => join(commandsDir, commandId, 'hosts', host);

  async function commandHosts(commandId: string): Promise<string[]> {
    try {
      return JSON.parse(await readFile(join(commandsDir, commandId, 'command.json'), 'utf8')).hosts as string[];
    } catch {
      return [];
    }
  }

  async function commandTimeout(commandId: string): Promise<number> {
    try {
      const { timeoutSeconds } = JSON.parse(await readFile(join(commandsDir, commandId, 'command.json'), 'utf8')) as { timeoutSeconds?: number };
      return typeof timeoutSeconds === 'number' && timeoutSeconds > 0 ? timeoutSeconds : DEFAULT_TIMEOUT_SECONDS;
    } catch {
      return DEFAULT_TIMEOUT_SECONDS;
    }
  }

  async function invocation(commandId: string, host: string): Promise<HostInvocation | 'running'> {
    const dir = runDir(commandId, host);
    const exit = await exitOf(dir);
    if (!exit && ours.has(runKey(commandId, host))) return 'running';
    let run: HostRun | undefined;
    try {
      run = JSON.parse(await readFile(join(dir, 'run.json'), 'utf8')) as HostRun;
    } catch {
      run = undefined;
    }
    if (!exit && runAlive(run)) return 'running';
    const exitCode = exit ? exit.code : null;
    const endedAt = exit?.at.toISOString();
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

  /**
   * Whether the run on the host goes on: launched by this process and not seen to end, or no exit
   * code yet and its process alive. The reporter asks this of every host still running each time one
   * ends, so a run of ours costs no file at all and an ended one a read of its exit code; reading the
   * whole outcome here made a 500-host command cost 500²/2 reads of run.json, stdout and stderr.
   * With `lookAtProcess`, a run of ours whose process is gone (killed before it could say it ended)
   * is over, and its place goes to the next run.
   */
  async function runGoesOn(commandId: string, host: string, lookAtProcess = false): Promise<boolean> {
    const dir = runDir(commandId, host);
    if (ours.has(runKey(commandId, host))) {
      const run = launched.get(dir);
      if (!lookAtProcess || run?.pid === undefined || runAlive(run)) return true;
      // Its process and its script are gone without a word (the run process killed, say): over,
      // with or without its exit code. Ending it wakes this look again, which then reads its files.
      launched.delete(dir);
      run.ended();
      return true;
    }
    if (await exitOf(dir)) return false;
    try {
      return runAlive(JSON.parse(await readFile(join(dir, 'run.json'), 'utf8')) as HostRun);
    } catch {
      // Never started, or its run.json is gone: no process to wait for.
      return false;
    }
  }

  /** True while the command runs on some host. */
  async function running(commandId: string, hosts: string[]): Promise<boolean> {
    for (const host of hosts) if (await runGoesOn(commandId, host)) return true;
    return false;
  }

  /** When anything of the command was last written (its own folder if nothing else is left). */
  async function lastWritten(commandId: string, hosts: string[]): Promise<number> {
    const dir = join(commandsDir, commandId);
    const files = [dir, join(dir, 'command.json'), join(dir, 'reported')];
    for (const host of hosts) {
      for (const name of ['', 'run.json', 'stdout', 'stderr', 'exit']) files.push(join(runDir(commandId, host), name));
    }
    const times = await Promise.all(files.map(modifiedAt));
    return Math.max(0, ...times.filter((t): t is number => t !== undefined));
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

  function noteEnded(commandId: string) {
    const ending = endings.get(commandId) ?? { count: 0 };
    ending.count += 1;
    endings.set(commandId, ending);
    ending.wake?.();
  }

  /**
   * Until a run of the command ends (or FALLBACK_POLL_MS), unless one ended since `seen` already.
   * Whether a run's ending woke it (false: FALLBACK_POLL_MS passed).
   */
  async function nextEnding(commandId: string, seen: number): Promise<boolean> {
    const ending = endings.get(commandId) ?? { count: 0 };
    endings.set(commandId, ending);
    if (ending.count !== seen) return true;
    const woken = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), FALLBACK_POLL_MS);
      ending.wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
    ending.wake = undefined;
    return woken;
  }

  /**
   * Reports a finished command once; a command whose report failed is reported again on the next
   * start. Woken as each run it started ends, it looks again only at the hosts still running.
   */
  async function reportWhenFinished(commandId: string) {
    if (watching.has(commandId) || closed) return;
    watching.add(commandId);
    try {
      let left: string[] = [];
      let hosts: string[] = [];
      // A run's own process is looked at only on the slower look: one that dies unannounced is rare.
      let lookAtProcesses = false;
      do {
        const seen = endings.get(commandId)?.count ?? 0;
        if (hosts.length === 0) left = hosts = await commandHosts(commandId);
        const still: string[] = [];
        for (const host of left) if (await runGoesOn(commandId, host, lookAtProcesses)) still.push(host);
        left = still;
        if (hosts.length > 0 && left.length === 0) break;
        lookAtProcesses = !(await nextEnding(commandId, seen));
        if (closed) return;
      } while (!closed);
      if (closed) return;
      await onCommandFinished(commandId);
      await writeFile(join(commandsDir, commandId, 'reported'), new Date().toISOString());
    } catch (error) {
      logger.error('reporting a finished command failed; it is reported again on the next start', { commandId, error });
    } finally {
      watching.delete(commandId);
      endings.delete(commandId);
    }
  }

  /**
   * Readies a host's run (its script is written whole before it counts as waiting), then queues its
   * start. A run written but not started when the server stops is started by `reconcile`.
   */
  async function startOnHost(commandId: string, host: string, script: string, timeoutSeconds: number) {
    const dir = runDir(commandId, host);
    await mkdir(dir, { recursive: true });
    // A command is sent again when its step is retried or resumed: a run this process holds, or one
    // that started, is not started twice.
    if (ours.has(runKey(commandId, host)) || (await exists(join(dir, 'run.json')))) return;
    if (!(await exists(hostDir(host)))) {
      await writeFile(join(dir, 'stderr'), `no host ${host} in the local fleet (${hostDir(host)} does not exist)\n`);
      await writeFile(join(dir, 'run.json'), JSON.stringify({ startedAt: new Date().toISOString() }));
      await writeFile(join(dir, 'exit'), '127\n');
      return;
    }
    // Made after the whole script, removed before the start: only a run that surely never started
    // carries it, so the next start may start it without ever running a command twice. It is a second
    // name of the script, not a file of its own: a file made and deleted for each of 500 hosts within
    // seconds made every later file on this disk slower to create (ext4 without a journal skips
    // recently freed inodes one by one; perf of bench/fleet.ts). A run that waits already keeps its
    // script as it was written.
    if (!(await exists(join(dir, WAITING)))) {
      await writeFile(join(dir, 'script.sh'), script, { mode: 0o700 });
      await link(join(dir, 'script.sh'), join(dir, WAITING));
    }
    queueStart(commandId, host, timeoutSeconds);
  }

  function queueStart(commandId: string, host: string, timeoutSeconds: number) {
    const key = runKey(commandId, host);
    if (ours.has(key)) return;
    ours.add(key);
    waitingToStart.push({ commandId, host, timeoutSeconds });
    startWaiting();
  }

  function startWaiting() {
    while (!closed && runningNow < maxConcurrentHosts && waitingToStart.length > 0) {
      const next = waitingToStart.shift()!;
      runningNow += 1;
      void launch(next.commandId, next.host, next.timeoutSeconds);
    }
  }

  /**
   * Starts host scripts through one small bash that forks them: fork() from this process costs in
   * proportion to its memory, and at several hundred MB each spawn held the event loop for tens of
   * milliseconds (`node --cpu-prof` of bench/fleet.ts: a quarter of the server's main thread). The
   * launcher is a session of its own with no terminal (spawned detached), so its runs outlive this
   * process and the launcher alike, and no Ctrl-C or hang-up meant for the server reaches them. A run
   * is a fork of the launcher that runs `timeout`, then writes the exit code, last: its presence means
   * the run is over. Each run also started setsid, a second bash and mv once: 500 runs of the
   * cheapest script cost the machine 4.3-4.9 core-seconds with them, 2.7-2.9 without
   * (bench/local-fleet.ts). A run says when it started (its pid, and `timeout`'s process group, the
   * script's) and when it ended, in that order; it ignores SIGPIPE once its script is started, so a
   * server gone meanwhile never keeps it from writing the exit code. Fields are NUL-separated, so any
   * path passes.
   */
  const launcherScript = `
run_host() {
  local dir=$1 timeout=$2 home=$3 group
  cd -- "$home" 2> /dev/null || cd /
  HOME=$home timeout --kill-after=10 "$timeout" bash "$dir/script.sh" > "$dir/stdout" 2> "$dir/stderr" &
  group=$!
  trap '' PIPE
  printf 'started\\0%s\\0%s\\0%s\\0' "$dir" "$BASHPID" "$group"
  wait "$group"
  printf '%s\\n' "$?" > "$dir/exit"
  printf 'ended\\0%s\\0' "$dir"
}
while IFS= read -r -d '' dir && IFS= read -r -d '' timeout && IFS= read -r -d '' home; do
  run_host "$dir" "$timeout" "$home" &
done
wait
`;
  let launcher: ReturnType<typeof spawn> | undefined;
  /** Runs handed to the launcher, by run folder: told their start, then their end. */
  type RunProcesses = { pid: number; group: number };
  const launched = new Map<string, { started: (run: RunProcesses) => void; ended: () => void; pid?: number; group?: number }>();

  function theLauncher() {
    if (launcher) return launcher;
    const child = spawn('bash', ['-c', launcherScript], {
      stdio: ['pipe', 'pipe', 'ignore'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
      detached: true,
    });
    launcher = child;
    // Set before the launcher reads its first run: every run it forks inherits the priority.
    if (child.pid !== undefined) {
      try {
        setPriority(child.pid, Math.min(19, getPriority() + HOST_SCRIPT_NICENESS));
      } catch (error) {
        logger.warn('could not lower the host scripts\' CPU priority; they compete with the API as equals', { error });
      }
    }
    let pending = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      pending += chunk;
      for (;;) {
        const fields = pending.split('\0');
        const kind = fields[0];
        if (kind === 'started' && fields.length >= 5) {
          const run = launched.get(fields[1]!);
          if (run) {
            run.pid = Number(fields[2]);
            run.group = Number(fields[3]);
            run.started({ pid: run.pid, group: run.group });
          }
          pending = fields.slice(4).join('\0');
        } else if (kind === 'ended' && fields.length >= 3) {
          const run = launched.get(fields[1]!);
          launched.delete(fields[1]!);
          run?.ended();
          pending = fields.slice(2).join('\0');
        } else {
          break;
        }
      }
    });
    const gone = () => {
      if (launcher !== child) return;
      launcher = undefined;
      // Runs it started go on without it; their ends are found by looking (FALLBACK_POLL_MS).
      for (const run of launched.values()) run.ended();
      launched.clear();
    };
    child.once('exit', gone);
    child.once('error', (error) => {
      logger.error('the local fleet\'s launcher failed', { error });
      gone();
    });
    child.stdin!.on('error', () => gone());
    child.unref();
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    return child;
  }

  async function launch(commandId: string, host: string, timeoutSeconds: number) {
    const dir = runDir(commandId, host);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      runningNow -= 1;
      ours.delete(runKey(commandId, host));
      noteEnded(commandId);
      startWaiting();
    };
    try {
      // unlink, not rm: rm looks the path up before it unlinks, and this runs once for every host.
      await unlink(join(dir, WAITING)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      let endSeen!: () => void;
      const over = new Promise<void>((resolve) => (endSeen = resolve));
      const started = await new Promise<RunProcesses | undefined>((resolve) => {
        launched.set(dir, {
          started: (processes) => resolve(processes),
          ended: () => {
            resolve(undefined);
            endSeen();
          },
        });
        theLauncher().stdin!.write(`${dir}\0${timeoutSeconds}\0${hostDir(host)}\0`);
      });
      const run: HostRun = { startedAt: new Date().toISOString(), ...(started ?? {}) };
      await writeFile(join(dir, 'run.json.tmp'), JSON.stringify(run));
      await rename(join(dir, 'run.json.tmp'), join(dir, 'run.json'));
      // The run stays this process's until its run.json is in place: a command sent again meanwhile
      // finds one or the other, and never starts it twice.
      await over;
      end();
    } catch (error) {
      logger.error('could not start a host script', { commandId, host, error });
      await writeFile(join(dir, 'exit'), '127\n').catch(() => {});
      end();
    }
  }

  return {
    hostDir,

    /** Every folder host can take commands: none is ever unreachable here. */
    async resolveTargets(targets: Targets): Promise<ResolvedTargets> {
      if ('hosts' in targets) return { hosts: [...targets.hosts], unreachable: [] };
      if ('ssh' in targets) {
        return { hosts: [], unreachable: targets.ssh.hosts.map((host) => ({ host, reason: 'the folder fleet has no SSH hosts' })) };
      }
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
      return { hosts: matching, unreachable: [] };
    },

    async send(command: HostCommand) {
      const dir = join(commandsDir, command.commandId);
      await mkdir(dir, { recursive: true });
      if (!(await exists(join(dir, 'command.json')))) {
        const description = {
          hosts: command.hosts,
          kind: command.script.kind,
          sentAt: new Date().toISOString(),
          timeoutSeconds: command.timeoutSeconds,
        };
        await writeFile(join(dir, 'command.json.tmp'), JSON.stringify(description));
        await rename(join(dir, 'command.json.tmp'), join(dir, 'command.json'));
      }
      const hosts = await commandHosts(command.commandId);
      const { script } = command;
      const artifactFile = script.kind === 'distribute' ? options.artifactFile?.(script.artifactUrl) : undefined;
      await Promise.all(
        hosts.map((host) =>
          startOnHost(
            command.commandId,
            host,
            renderHostScript({ ...script, ...(artifactFile ? { artifactFile } : {}), deployRoot: hostDir(host) }),
            command.timeoutSeconds,
          ),
        ),
      );
      void reportWhenFinished(command.commandId);
    },

    results,

    /**
     * Reads the growing stdout and stderr files of the run. The two are separate files, so their
     * relative order is only as fine as the reads: each read gives stdout's new lines, then stderr's.
     */
    async readOutput(commandId: string, host: string, from: string | undefined): Promise<HostOutputRead> {
      const dir = runDir(commandId, host);
      // Whether the run is over is looked at before reading: what it wrote before ending is then read too.
      let over = (await exitOf(dir)) !== undefined;
      if (!over) {
        try {
          over = !runAlive(JSON.parse(await readFile(join(dir, 'run.json'), 'utf8')) as HostRun);
        } catch {
          over = false;
        }
      }
      return readGrowingOutput(join(dir, 'stdout'), join(dir, 'stderr'), from, over);
    },

    async settle(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (watching.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    },

    close() {
      closed = true;
      // The launcher ends once its input does and its runs have ended; the runs go on meanwhile.
      launcher?.stdin?.end();
    },

    async prune(olderThan: Date) {
      const cutoff = olderThan.getTime();
      const deleted: string[] = [];
      // A folder that cannot be removed now (permissions, say) is left for the next pass.
      const remove = (path: string) =>
        rm(path, { recursive: true, force: true }).catch((error: unknown) =>
          logger.warn('could not delete an old command folder; the next pass tries again', { path, error }),
        );
      for (const name of await readdir(commandsDir).catch(() => [] as string[])) {
        if (name.startsWith(DELETING)) {
          await remove(join(commandsDir, name));
          continue;
        }
        if (name.startsWith('.') || watching.has(name)) continue;
        // A command must be reported (its outcome is in the release record by then) and over on
        // every host. A folder without command.json is a creation cut short, or left by hand: only
        // its age and its runs tell, and once old and stopped it is garbage.
        const described = await commandHosts(name);
        if (described.length > 0 && !(await exists(join(commandsDir, name, 'reported')))) continue;
        const hosts = described.length > 0 ? described : await readdir(join(commandsDir, name, 'hosts')).catch(() => [] as string[]);
        if (await running(name, hosts)) continue;
        if ((await lastWritten(name, hosts)) >= cutoff) continue;
        // One rename takes the whole command away at once; the rest is mere cleaning.
        const doomed = join(commandsDir, `${DELETING}${name}`);
        try {
          await rename(join(commandsDir, name), doomed);
        } catch (error) {
          logger.warn('could not delete an old command folder', { commandId: name, error });
          continue;
        }
        await remove(doomed);
        deleted.push(name);
      }
      return deleted;
    },

    async reconcile() {
      // Started with the fleet, not by its first command: a process as large as the server forks
      // slowly, and the first release after a start waited 0.1 s for its hosts' launcher.
      try {
        if (!closed) theLauncher();
      } catch (error) {
        logger.warn('could not start the hosts\' launcher yet; the first command starts it', { error });
      }
      const commands = (await readdir(commandsDir).catch(() => [] as string[])).filter((name) => !name.startsWith('.'));
      for (const commandId of commands) {
        if (await exists(join(commandsDir, commandId, 'reported'))) continue;
        const hosts = await commandHosts(commandId);
        if (hosts.length === 0) continue;
        // Runs written but still waiting their turn when the server stopped start now.
        const timeoutSeconds = await commandTimeout(commandId);
        for (const host of hosts) {
          const dir = runDir(commandId, host);
          if (!(await exists(join(dir, 'run.json'))) && (await exists(join(dir, WAITING)))) queueStart(commandId, host, timeoutSeconds);
        }
        void reportWhenFinished(commandId);
      }
    },
  };
}
