import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import {
  ConfigurationError,
  type Fleet,
  type HostCommand,
  type HostInvocation,
  type HostOutputRead,
  type HostScript,
  type InvocationStatus,
  type Logger,
  parseSshHost,
  renderHostScript,
  renderSshArtifactReceive,
  renderSshLaunch,
  type ResolvedTargets,
  shellQuote,
  SSH_NO_EXIT_CODE,
  type SshHost,
  sshHostId,
  type Targets,
} from '@slipway/core';
import { readGrowingOutput } from './output-files.ts';
import ssh2, { type ClientChannel } from 'ssh2';
import { hostKeyAlgorithmsFor, hostKeyCheck, type KnownHostLine, parseKnownHosts } from './ssh-known-hosts.ts';

/** Each stream of a host's output is kept to its last 64 KiB, as the folder fleet does. */
const OUTPUT_LIMIT_BYTES = 64 * 1024;
const TIMED_OUT = 124;
/** After the host's own `timeout` (and its 10 s kill), this long for the answer to come back. */
const ANSWER_GRACE_SECONDS = 60;

export interface SshFleetOptions {
  /** `SLIPWAY_SSH_IDENTITY`: the private key (OpenSSH or PEM, no passphrase). */
  identityFile: string;
  /** `SLIPWAY_SSH_KNOWN_HOSTS`: the pinned host keys, read again for every connection. */
  knownHostsFile: string;
  /** The server's journal of SSH commands (`<dataDir>/ssh-commands`). */
  commandsDir: string;
  /** Called once a command has an outcome on every host: the local stand-in for the SSM status event. */
  onCommandFinished: (commandId: string) => Promise<void>;
  logger: Logger;
  /** Hosts worked on at once, over all commands (default 16). */
  concurrency?: number;
  /** How long a connection may take to be ready (default 20). */
  connectTimeoutSeconds?: number;
  /** Tries to reach a host before its run fails (default 3, 2 s then 4 s apart). */
  connectAttempts?: number;
  /**
   * How a distribute command's artifact reaches a host. `auto` (default): the host downloads it from
   * the presigned URL, unless the URL points at this machine's loopback and the host is another
   * machine (the embedded S3 listens on 127.0.0.1 only): then the server streams it over SSH.
   */
  artifactDelivery?: 'auto' | 'stream' | 'url';
}

/** What the journal keeps of a command: enough to start it on a host it had not reached yet. */
interface JournalCommand {
  hosts: string[];
  script: HostScript;
  timeoutSeconds: number;
  sentAt: string;
}

/** A host that could not be worked on, and why: the run fails and names the host. */
class HostUnreachable extends Error {
  constructor(
    message: string,
    /** Host key and authentication refusals do not get better by trying again. */
    readonly final: boolean,
  ) {
    super(message);
    this.name = 'HostUnreachable';
  }
}

/** The last `OUTPUT_LIMIT_BYTES` of a stream. */
class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;
  private cut = 0;

  push(chunk: Buffer) {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - (this.chunks[0]?.length ?? 0) >= OUTPUT_LIMIT_BYTES && this.chunks.length > 1) {
      const dropped = this.chunks.shift()!;
      this.size -= dropped.length;
      this.cut += dropped.length;
    }
  }

  text(): string {
    let buffer = Buffer.concat(this.chunks);
    let cut = this.cut;
    if (buffer.length > OUTPUT_LIMIT_BYTES) {
      cut += buffer.length - OUTPUT_LIMIT_BYTES;
      buffer = buffer.subarray(buffer.length - OUTPUT_LIMIT_BYTES);
    }
    return cut > 0 ? `[${cut} earlier bytes cut]\n${buffer.toString('utf8')}` : buffer.toString('utf8');
  }
}

function isLoopback(hostname: string): boolean {
  const bare = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127\./.test(bare);
}

/** Runs at most `limit` tasks at once, in the order they asked. */
function createLimiter(limit: number) {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async function limited<T>(task: () => Promise<T>): Promise<T> {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running += 1;
    try {
      return await task();
    } finally {
      running -= 1;
      waiting.shift()?.();
    }
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Reads the key and the known_hosts file once at start: a missing or unusable one stops the server, naming it. */
async function readSshFiles(identityFile: string, knownHostsFile: string) {
  let privateKey: Buffer;
  try {
    privateKey = await readFile(identityFile);
  } catch (error) {
    throw new ConfigurationError(`cannot start: SLIPWAY_SSH_IDENTITY names ${identityFile}, which cannot be read (${(error as Error).message})`, {
      cause: error,
    });
  }
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error) {
    throw new ConfigurationError(
      `cannot start: SLIPWAY_SSH_IDENTITY (${identityFile}) is not a usable private key (${parsed.message}); ` +
      'give an OpenSSH or PEM key without a passphrase, e.g. from ssh-keygen -t ed25519 -N ""',
    );
  }
  let knownHosts: KnownHostLine[];
  try {
    knownHosts = parseKnownHosts(await readFile(knownHostsFile, 'utf8'));
  } catch (error) {
    throw new ConfigurationError(
      `cannot start: SLIPWAY_SSH_KNOWN_HOSTS names ${knownHostsFile}, which cannot be read (${(error as Error).message})`,
      { cause: error },
    );
  }
  return { privateKey, knownHosts };
}

export type SshFleet = Fleet & {
  readOutput: NonNullable<Fleet['readOutput']>;
  /** Whether this fleet sent the command (the routing fleet asks). */
  owns(commandId: string): Promise<boolean>;
  /** Follows again every command not yet reported: after a restart, outcomes are found on the hosts. */
  reconcile(): Promise<void>;
  /** Resolves once no host is being worked on (or after `timeoutMs`). */
  settle(timeoutMs: number): Promise<void>;
  /** Drops every connection; runs on hosts go on, and `reconcile` on the next start follows them. */
  close(): void;
  /** Deletes the journal of commands reported before `olderThan`; returns their ids. */
  prune(olderThan: Date): Promise<string[]>;
};

/**
 * The SSH fleet: hosts are `user@host:port`, reached with the ssh2 library, one connection per host
 * and command. Each host gets the generated launcher (renderSshLaunch) on `bash -s`: it claims the
 * command's run folder on the host and starts the host script detached, once, then streams its
 * output and ends with its exit code. The server's journal (`commandsDir`) keeps each command and
 * each host's outcome; a command not yet reported is followed again after a restart, and the
 * launcher, sent again, follows the run already on the host instead of starting a second one.
 */
export async function createSshFleet(options: SshFleetOptions): Promise<SshFleet> {
  const { commandsDir, onCommandFinished, logger } = options;
  const { privateKey } = await readSshFiles(options.identityFile, options.knownHostsFile);
  const limited = createLimiter(options.concurrency ?? 16);
  const connectAttempts = options.connectAttempts ?? 3;
  const readyTimeout = (options.connectTimeoutSeconds ?? 20) * 1000;
  const delivery = options.artifactDelivery ?? 'auto';
  /** `<commandId>\n<host>` of every host run in progress in this process. */
  const active = new Map<string, Promise<void>>();
  const reporting = new Set<string>();
  const clients = new Set<ssh2.Client>();
  let closed = false;

  const commandDir = (commandId: string) => join(commandsDir, commandId);
  const outcomeFile = (commandId: string, host: string) => join(commandDir(commandId), 'hosts', `${host}.json`);
  const liveFile = (commandId: string, host: string, stream: 'stdout' | 'stderr') => join(commandDir(commandId), 'hosts', `${host}.${stream}`);

  async function readCommand(commandId: string): Promise<JournalCommand | undefined> {
    try {
      return JSON.parse(await readFile(join(commandDir(commandId), 'command.json'), 'utf8')) as JournalCommand;
    } catch {
      return undefined;
    }
  }

  async function readOutcome(commandId: string, host: string): Promise<HostInvocation | undefined> {
    try {
      return JSON.parse(await readFile(outcomeFile(commandId, host), 'utf8')) as HostInvocation;
    } catch {
      return undefined;
    }
  }

  async function writeOutcome(commandId: string, outcome: HostInvocation) {
    const file = outcomeFile(commandId, outcome.host);
    await mkdir(join(commandDir(commandId), 'hosts'), { recursive: true });
    await writeFile(`${file}.tmp`, JSON.stringify(outcome));
    await rename(`${file}.tmp`, file);
  }

  function connect(target: SshHost, hostId: string): Promise<ssh2.Client> {
    return new Promise((resolve, reject) => {
      // Read for every connection (a small file, read synchronously), so a host key pinned or replaced
      // after the start counts at once.
      let check: ReturnType<typeof hostKeyCheck>;
      try {
        check = hostKeyCheck(
          parseKnownHosts(readFileSync(options.knownHostsFile, 'utf8')),
          target,
          hostId,
          `SLIPWAY_SSH_KNOWN_HOSTS (${options.knownHostsFile})`,
        );
      } catch (error) {
        reject(new HostUnreachable(`cannot read SLIPWAY_SSH_KNOWN_HOSTS (${options.knownHostsFile}): ${(error as Error).message}`, true));
        return;
      }
      const client = new ssh2.Client();
      clients.add(client);
      let refusal: string | undefined;
      let settled = false;
      const fail = (error: HostUnreachable) => {
        if (settled) return;
        settled = true;
        clients.delete(client);
        client.end();
        reject(error);
      };
      client.once('ready', () => {
        if (settled) return;
        settled = true;
        resolve(client);
      });
      client.on('error', (error: Error & { level?: string }) => {
        if (refusal) fail(new HostUnreachable(refusal, true));
        else if (error.level === 'client-authentication') {
          fail(new HostUnreachable(`${hostId} refused the key in SLIPWAY_SSH_IDENTITY (is its public key in ~/.ssh/authorized_keys of ${target.user}?)`, true));
        } else fail(new HostUnreachable(`could not reach ${hostId}: ${error.message}`, false));
      });
      client.once('close', () => {
        clients.delete(client);
        fail(new HostUnreachable(refusal ?? `could not reach ${hostId}: the connection closed`, refusal !== undefined));
      });
      const algorithms = check.keyTypes.flatMap(hostKeyAlgorithmsFor);
      client.connect({
        host: target.host.replace(/^\[(.*)\]$/, '$1'),
        port: target.port,
        username: target.user,
        privateKey,
        readyTimeout,
        // No password, no keyboard-interactive, no agent: the one key only.
        tryKeyboard: false,
        ...(algorithms.length > 0 ? { algorithms: { serverHostKey: algorithms as never } } : {}),
        hostVerifier: (key: Buffer) => {
          refusal = check.refuse(key);
          return refusal === undefined;
        },
      });
    });
  }

  /** Runs `command` on the connection, `input` on its stdin; resolves with the exit code (null: the channel dropped). */
  function execute(
    client: ssh2.Client,
    command: string,
    input: string | Readable,
    output: { stdout: (chunk: Buffer) => void; stderr: (chunk: Buffer) => void },
  ): Promise<number | null> {
    return new Promise((resolve, reject) => {
      client.exec(command, (error: Error | undefined, channel: ClientChannel) => {
        if (error) {
          reject(new HostUnreachable(`could not start a command: ${error.message}`, false));
          return;
        }
        let code: number | null = null;
        // A write after the host closed the channel (a receiver that failed early) ends in 'close'.
        channel.on('error', () => {});
        channel.on('data', output.stdout);
        channel.stderr.on('data', output.stderr);
        channel.once('exit', (exitCode: number | null) => {
          code = typeof exitCode === 'number' ? exitCode : null;
        });
        channel.once('close', () => resolve(code));
        if (typeof input === 'string') channel.end(input);
        else {
          input.once('error', (streamError) => {
            channel.close();
            reject(new HostUnreachable(`the artifact could not be read from the store: ${streamError.message}`, true));
          });
          input.pipe(channel);
        }
      });
    });
  }

  function streamArtifact(script: HostScript, target: SshHost): boolean {
    if (script.kind !== 'distribute' || delivery === 'url') return false;
    if (delivery === 'stream') return true;
    return isLoopback(new URL(script.artifactUrl).hostname) && !isLoopback(target.host);
  }

  /** One try: connect, hand over the artifact if the host cannot fetch it, launch or follow the run. */
  async function attempt(
    commandId: string,
    command: JournalCommand,
    hostId: string,
    target: SshHost,
    onLaunch: () => void,
  ): Promise<HostInvocation> {
    const startedAt = new Date().toISOString();
    const client = await connect(target, hostId);
    const stdout = new OutputTail();
    const stderr = new OutputTail();
    let live: { stdout: WriteStream; stderr: WriteStream } | undefined;
    let timedOut = false;
    // The host's own `timeout` ends the run; this is for a host that stops answering altogether.
    const deadline = setTimeout(() => {
      timedOut = true;
      client.end();
    }, (command.timeoutSeconds + ANSWER_GRACE_SECONDS) * 1000);
    deadline.unref();
    try {
      let script = command.script;
      if (script.kind === 'distribute' && streamArtifact(script, target)) {
        const response = await fetch(script.artifactUrl).catch((error: Error) => {
          throw new HostUnreachable(`the server could not read the artifact to stream it to ${hostId}: ${error.message}`, true);
        });
        if (!response.ok || !response.body) {
          throw new HostUnreachable(`the server could not read the artifact to stream it to ${hostId}: HTTP ${response.status}`, true);
        }
        let path = '';
        const receiveErrors = new OutputTail();
        const received = await execute(
          client,
          `bash -c ${shellQuote(renderSshArtifactReceive({ deployRoot: script.deployRoot, sha256: script.sha256 }))}`,
          Readable.fromWeb(response.body as never),
          { stdout: (chunk) => (path += chunk.toString('utf8')), stderr: (chunk) => receiveErrors.push(chunk) },
        );
        if (received === null) throw new HostUnreachable(`the connection to ${hostId} dropped while the artifact was streamed`, false);
        if (received !== 0) {
          return invocationOf(hostId, received, '', `could not store the streamed artifact: ${receiveErrors.text()}`, startedAt);
        }
        script = { ...script, artifactUrl: pathToFileURL(path.trim()).href };
      }
      const launch = renderSshLaunch({
        commandId,
        deployRoot: command.script.deployRoot,
        timeoutSeconds: command.timeoutSeconds,
        script: renderHostScript(script),
      });
      onLaunch();
      // Live output (readOutput) reads these as they grow. Each try starts them again: the launcher
      // streams the run's output from its start every time, so a byte's offset never changes.
      await mkdir(join(commandDir(commandId), 'hosts'), { recursive: true });
      live = { stdout: createWriteStream(liveFile(commandId, hostId, 'stdout')), stderr: createWriteStream(liveFile(commandId, hostId, 'stderr')) };
      const { stdout: liveOut, stderr: liveErr } = live;
      const code = await execute(client, 'bash -s', launch, {
        stdout: (chunk) => {
          stdout.push(chunk);
          liveOut.write(chunk);
        },
        stderr: (chunk) => {
          stderr.push(chunk);
          liveErr.write(chunk);
        },
      });
      if (code === null) {
        if (timedOut) {
          return { host: hostId, status: 'timed_out', exitCode: null, stdout: stdout.text(), stderr: `${stderr.text()}\nno answer from ${hostId} within the command's timeout`, startedAt, endedAt: new Date().toISOString() };
        }
        throw new HostUnreachable(`the connection to ${hostId} dropped while the command ran`, false);
      }
      return invocationOf(hostId, code, stdout.text(), stderr.text(), startedAt);
    } finally {
      clearTimeout(deadline);
      clients.delete(client);
      client.end();
      // Closed before the outcome is written, so a reader that sees the outcome has every byte.
      if (live) await Promise.all([live.stdout, live.stderr].map((file) => new Promise((resolve) => file.end(resolve))));
    }
  }

  /** Works on one host until it has an outcome: tries again (and so follows the same run) when the connection fails. */
  async function runOnHost(commandId: string, command: JournalCommand, hostId: string) {
    const parsed = parseSshHost(hostId);
    const startedAt = new Date().toISOString();
    if ('problem' in parsed) {
      await writeOutcome(commandId, invocationOf(hostId, 2, '', `not an SSH host: ${hostId} ${parsed.problem}`, startedAt));
      return;
    }
    // Once the launcher went out, the run may be going on over there: a host that cannot be reached
    // again is followed until the run's own timeout has surely ended it, never given up earlier
    // (its batch would be reverted while a switch still runs).
    let launched = false;
    const runSurelyOverAt = Date.now() + (command.timeoutSeconds + ANSWER_GRACE_SECONDS) * 1000;
    for (let tries = 1; ; tries++) {
      if (closed) return;
      try {
        const outcome = await attempt(commandId, command, hostId, parsed.host, () => {
          launched = true;
        });
        if (closed) return;
        await writeOutcome(commandId, outcome);
        return;
      } catch (error) {
        if (closed) return;
        const unreachable = error instanceof HostUnreachable ? error : new HostUnreachable(`could not work on ${hostId}: ${String(error)}`, false);
        logger.warn('an SSH host could not be worked on', { commandId, host: hostId, try: tries, reason: unreachable.message });
        const mayStillRun = launched && Date.now() < runSurelyOverAt;
        if (unreachable.final || (tries >= connectAttempts && !mayStillRun)) {
          await writeOutcome(commandId, {
            host: hostId,
            status: 'failed',
            exitCode: null,
            stdout: '',
            stderr: unreachable.message.includes(hostId) ? unreachable.message : `${hostId}: ${unreachable.message}`,
            startedAt,
            endedAt: new Date().toISOString(),
          });
          return;
        }
        await sleep(Math.min(tries, 5) * 2000);
      }
    }
  }

  function follow(commandId: string, command: JournalCommand, host: string) {
    const key = `${commandId}\n${host}`;
    if (active.has(key) || closed) return;
    const run = limited(async () => {
      if (closed || (await exists(outcomeFile(commandId, host)))) return;
      await runOnHost(commandId, command, host);
    })
      .catch((error: unknown) => logger.error('an SSH host run failed unexpectedly', { commandId, host, error }))
      .finally(() => active.delete(key));
    active.set(key, run);
  }

  async function results(commandId: string) {
    const command = await readCommand(commandId);
    const invocations: HostInvocation[] = [];
    let finished = command !== undefined && command.hosts.length > 0;
    for (const host of command?.hosts ?? []) {
      const outcome = await readOutcome(commandId, host);
      if (outcome) invocations.push(outcome);
      else finished = false;
    }
    return { finished, invocations };
  }

  /** Reports a command once every host has an outcome; one whose report failed is reported on the next start. */
  async function reportWhenFinished(commandId: string) {
    if (reporting.has(commandId) || closed) return;
    reporting.add(commandId);
    try {
      const command = await readCommand(commandId);
      // A command sent again after its report (a retried stage) is not reported twice.
      if (!command || (await exists(join(commandDir(commandId), 'reported')))) return;
      await Promise.all(command.hosts.map((host) => active.get(`${commandId}\n${host}`)));
      if (closed || !(await results(commandId)).finished) return;
      await onCommandFinished(commandId);
      await writeFile(join(commandDir(commandId), 'reported'), new Date().toISOString());
    } catch (error) {
      logger.error('reporting a finished SSH command failed; it is reported again on the next start', { commandId, error });
    } finally {
      reporting.delete(commandId);
    }
  }

  function start(commandId: string, command: JournalCommand) {
    for (const host of command.hosts) follow(commandId, command, host);
    void reportWhenFinished(commandId);
  }

  return {
    async owns(commandId) {
      return exists(join(commandDir(commandId), 'command.json'));
    },

    /** Every SSH host is planned; one that cannot be reached fails its batch, naming it and why. */
    async resolveTargets(targets: Targets): Promise<ResolvedTargets> {
      if (!('ssh' in targets)) throw new Error('the SSH fleet only resolves {"ssh": {"hosts": [...]}} targets');
      const hosts: string[] = [];
      const unreachable = [];
      for (const entry of targets.ssh.hosts) {
        const parsed = parseSshHost(entry);
        if ('host' in parsed) hosts.push(sshHostId(parsed.host));
        else unreachable.push({ host: entry, reason: parsed.problem });
      }
      return { hosts, unreachable };
    },

    async send(command: HostCommand) {
      const dir = commandDir(command.commandId);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      let journal = await readCommand(command.commandId);
      if (!journal) {
        const { hosts, script, timeoutSeconds } = command;
        journal = { hosts, script, timeoutSeconds, sentAt: new Date().toISOString() };
        // It holds the presigned URL of a distribute command: readable by this server's user only.
        const file = join(dir, 'command.json');
        await writeFile(`${file}.tmp`, JSON.stringify(journal), { mode: 0o600 });
        await chmod(`${file}.tmp`, 0o600);
        await rename(`${file}.tmp`, file);
      }
      start(command.commandId, journal);
    },

    results,

    /** The run's output as it streams in over the connection; over once the host has an outcome. */
    async readOutput(commandId: string, host: string, from: string | undefined): Promise<HostOutputRead> {
      const over = await exists(outcomeFile(commandId, host));
      return readGrowingOutput(liveFile(commandId, host, 'stdout'), liveFile(commandId, host, 'stderr'), from, over);
    },

    async reconcile() {
      for (const commandId of await readdir(commandsDir).catch(() => [] as string[])) {
        if (commandId.startsWith('.') || (await exists(join(commandDir(commandId), 'reported')))) continue;
        const command = await readCommand(commandId);
        if (command) start(commandId, command);
      }
    },

    async settle(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while ((active.size > 0 || reporting.size > 0) && Date.now() < deadline) await sleep(100);
    },

    close() {
      closed = true;
      for (const client of clients) client.end();
      clients.clear();
    },

    async prune(olderThan) {
      const deleted: string[] = [];
      for (const commandId of await readdir(commandsDir).catch(() => [] as string[])) {
        const reported = await stat(join(commandDir(commandId), 'reported')).catch(() => undefined);
        if (!reported || reported.mtimeMs >= olderThan.getTime()) continue;
        await rm(commandDir(commandId), { recursive: true, force: true }).then(
          () => deleted.push(commandId),
          (error: unknown) => logger.warn('could not delete an old SSH command journal; the next pass tries again', { commandId, error }),
        );
      }
      return deleted;
    },
  };
}

function invocationOf(host: string, exitCode: number, stdout: string, stderr: string, startedAt: string): HostInvocation {
  const noExitCode = exitCode === SSH_NO_EXIT_CODE;
  const status: InvocationStatus = noExitCode ? 'interrupted' : exitCode === 0 ? 'success' : exitCode === TIMED_OUT ? 'timed_out' : 'failed';
  return { host, status, exitCode: noExitCode ? null : exitCode, stdout, stderr, startedAt, endedAt: new Date().toISOString() };
}
