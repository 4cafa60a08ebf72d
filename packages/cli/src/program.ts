/**
 * The command tree: one commander command per API noun and verb. Commander parses, answers
 * `--help`/`--version`, suggests near misses and reports usage errors; the actions here only call
 * the API and print its answer (raw JSON with `--json`, lines for a person otherwise).
 */
import { openAsBlob } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  AuditEntry,
  CreatedToken,
  ExecutionHistory,
  HostView,
  Page,
  ReleaseSummary,
  ReleaseView,
  TokenView,
  UploadTicket,
} from '@slipway/core';
import { Command, InvalidArgumentError } from 'commander';
import cliPackage from '../package.json' with { type: 'json' };
import { type ApiClient, ApiError, createApiClient } from './client.ts';
import { type Io, printAudit, printCreatedToken, printHistory, printRelease, printReleases, printTokens } from './output.ts';
import { gitSourceOf } from './git-source.ts';
import { packDirectory } from './pack.ts';
import { FAILED_HOSTS_SHOWN, printHosts, readFailedOutput, watchHostOutput, watchRelease } from './watch.ts';

export const VERSION: string = cliPackage.version;
const DEFAULT_URL = 'http://127.0.0.1:8787';

/** A mistake in how the command was called: exit 2 and a hint, like a parse error. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface CliContext {
  env: NodeJS.ProcessEnv;
  io: Io;
  /** What the last action decided; commander itself only knows 0 and its own errors. */
  exitCode: number;
}

const ENVIRONMENT_HELP = `
Environment:
  SLIPWAY_URL    the API to talk to (default ${DEFAULT_URL})
  SLIPWAY_TOKEN  an API token (\`slipway dev\` prints the admin token; \`slipway token create\` makes others)

Exit codes: 0 success, 1 the API refused or the release did not succeed, 2 usage error.
Add --json to a command that prints data to get the API's answer as JSON on stdout.`;

// --- option values --------------------------------------------------------------------------

function positiveInteger(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a whole number, 1 or more.');
  return Number(value);
}

function intervalSeconds(value: string): number {
  const seconds = Number(value);
  if (value.trim() === '' || !Number.isFinite(seconds) || seconds < 0.1 || seconds > 60) {
    throw new InvalidArgumentError('expected seconds, 0.1 to 60.');
  }
  return seconds;
}

function wholeSeconds(value: string): number {
  if (!/^[0-9]+$/.test(value)) throw new InvalidArgumentError('expected whole seconds, 60 to 31536000 (a year).');
  return Number(value);
}

/** Names every missing required option at once, so one try shows all that are missing. */
function required<T extends object, N extends keyof T & string>(values: T, flags: Record<N, string>): Record<N, string> {
  const missing = (Object.keys(flags) as N[]).filter((name) => typeof values[name] !== 'string' || values[name] === '');
  if (missing.length > 0) {
    const named = missing.map((name) => flags[name]).join(', ');
    throw new UsageError(`${named} ${missing.length > 1 ? 'are' : 'is'} required`);
  }
  return values as Record<N, string>;
}

function sha256FromKey(key: string): string {
  const match = /^artifacts\/[^/]+\/([0-9a-f]{64})\.tar\.gz$/.exec(key);
  if (!match) {
    throw new UsageError('--artifact must be a key printed by "slipway artifact push" (artifacts/<app>/<sha256>.tar.gz)');
  }
  return match[1]!;
}

function query(values: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) if (value !== undefined && value !== '') params.set(name, String(value));
  return params.size ? `?${params}` : '';
}

const path = (...segments: string[]) => segments.map(encodeURIComponent).join('/');

/** `slipway release open --app <app> ...` for every command that does something: the whole CLI on one screen. */
function leaves(command: Command, names: string[] = [command.name()]): string[] {
  if (command.commands.length === 0) return [`  ${[...names, command.usage().replace(/\[options\]\s*/g, '')].join(' ').trimEnd()}`];
  return command.commands.flatMap((sub) => leaves(sub, [...names, sub.name()]));
}

// --- the tree --------------------------------------------------------------------------------

interface JsonOption {
  json?: boolean;
}

interface OpenOptions extends JsonOption {
  app?: string;
  version?: string;
  artifact?: string;
  description?: string;
  wait?: boolean;
  interval?: number;
}

export function createProgram(context: CliContext): Command {
  const { env, io } = context;
  const client = (): ApiClient => {
    const token = env.SLIPWAY_TOKEN;
    if (!token) throw new UsageError('set SLIPWAY_TOKEN to an API token (the dev server prints the admin token)');
    return createApiClient(env.SLIPWAY_URL || DEFAULT_URL, token);
  };
  const print = (options: JsonOption, value: unknown, human: () => void) =>
    options.json ? io.out(JSON.stringify(value, null, 2)) : human();
  /** Follows a release to its end; with --json the progress goes to stderr and stdout gets the final release. */
  const follow = async (id: string, options: JsonOption & { interval?: number }) => {
    const ended = await watchRelease(client(), id, options.json ? { out: io.err } : io, {
      intervalMs: (options.interval ?? 1) * 1000,
    });
    if (options.json) io.out(JSON.stringify(ended, null, 2));
    return ended.status === 'succeeded' ? 0 : 1;
  };
  /** Runs an action, keeps its exit code, and reports a UsageError as this command's usage error. */
  const act = <A extends unknown[]>(handler: (...args: A) => Promise<number>) =>
    async (...args: unknown[]) => {
      const command = args.at(-1) as Command;
      try {
        context.exitCode = await handler(...(args as A));
      } catch (error) {
        if (error instanceof UsageError) command.error(error.message, { exitCode: 2, code: 'slipway.usage' });
        throw error;
      }
    };
  const json = '--json';
  const jsonHelp = 'print the API\'s answer as JSON';

  const program: Command = new Command('slipway')
    .description('Release orchestrator for server fleets: artifacts, approvals, batch-by-batch switches, instant rollback.')
    .configureOutput({
      writeOut: (text) => io.out(text.replace(/\n$/, '')),
      writeErr: (text) => io.err(text.replace(/\n$/, '')),
      outputError: (text, write) => write(`slipway: ${text.replace(/^error: /, '')}`),
    })
    // Commander throws instead of calling process.exit; main() turns that into an exit code.
    .exitOverride()
    // A subcommand's own options (`release open --version 1.2`) are never taken for the program's.
    .enablePositionalOptions()
    .version(VERSION, '-V, --version', 'print the version of slipway')
    .helpOption('-h, --help', 'show help for the command')
    .helpCommand('help [command...]', 'show help for a command')
    .addHelpText('after', (): string => `\nEvery command:\n${leaves(program).join('\n')}\n${ENVIRONMENT_HELP}`);
  // Settings above are copied into each subcommand as it is made: keep them before the first one.

  program
    .command('dev')
    .description('run the local API, dashboard, stand-ins and demo fleet on 127.0.0.1 until Ctrl-C')
    .addHelpText('after', `
Environment:
  PORT              where to listen (default 8787; 0 picks a free port)
  SLIPWAY_DATA_DIR  the data folder (default .slipway in the current folder)
  SLIPWAY_ADMIN_TOKEN, SLIPWAY_WEBHOOK_SECRET, SLIPWAY_LOG_LEVEL, SLIPWAY_RETENTION_OUTPUT_DAYS`)
    .action(act(async () => {
      // Loaded only here: the server and its dependencies cost nothing to the other commands.
      const { runDev } = await import('./dev.ts');
      return runDev(env, io);
    }));

  program
    .command('apply')
    .summary('create or update an app from its config file')
    .description('create or update an app from its config file.\nAPI: PUT /v1/apps/{name}')
    .argument('<config.json>', 'the app\'s config; its "name" names the app')
    .option(json, jsonHelp)
    .action(act(async (file: string, options: JsonOption) => {
      let config: { name?: unknown };
      try {
        config = JSON.parse(await readFile(file, 'utf8'));
      } catch (error) {
        throw new UsageError(`cannot read ${file} as JSON: ${(error as Error).message}`);
      }
      if (typeof config.name !== 'string') throw new UsageError(`${file} needs a "name" naming the app`);
      const stored = await client().request<{ revision: number }>('PUT', `/v1/apps/${path(config.name)}`, config);
      print(options, stored, () => io.out(`app ${config.name} stored (revision ${stored.revision})`));
      return 0;
    }));

  const artifact = program.command('artifact').description('build artifacts, stored by content (sha256)');
  artifact
    .command('push')
    .description('pack a folder as tar.gz, upload it unless already stored, print its key')
    .argument('<dir>', 'the folder to pack')
    .option('--app <app>', 'the app the artifact belongs to (required)')
    .option(json, jsonHelp)
    .usage('<dir> --app <app> [options]')
    .action(act(async (directory: string, options: JsonOption & { app?: string }) => {
      const { app } = required(options, { app: '--app' });
      const api = client();
      const workspace = await mkdtemp(join(tmpdir(), 'slipway-push-'));
      try {
        const packed = await packDirectory(directory, join(workspace, 'artifact.tar.gz'));
        const source = await gitSourceOf(directory);
        const ticket = await api.request<UploadTicket>('POST', '/v1/artifacts', { app, sha256: packed.sha256, size: packed.size, ...(source ? { source } : {}) });
        if (!ticket.alreadyUploaded) {
          const upload = await fetch(ticket.uploadUrl!, {
            method: 'PUT',
            headers: { ...ticket.uploadHeaders, 'content-length': String(packed.size) },
            body: await openAsBlob(packed.file),
          });
          if (!upload.ok) {
            throw new ApiError(upload.status, 'upload_failed', `upload failed: HTTP ${upload.status} ${await upload.text()}`, null);
          }
        }
        const result = { key: ticket.key, sha256: packed.sha256, size: packed.size, uploaded: !ticket.alreadyUploaded };
        print(options, result, () => {
          io.err(`packed ${packed.entries} entries, ${packed.size} bytes, sha256 ${packed.sha256}`);
          if (source) io.err(`built from ${source.repository} at ${source.commit.slice(0, 12)}${source.ref ? ` (${source.ref})` : ''}${source.dirty ? ', with changes not committed' : ''}`);
          io.err(ticket.alreadyUploaded ? 'already stored; nothing uploaded' : 'uploaded');
          io.out(ticket.key);
        });
        return 0;
      } finally {
        await rm(workspace, { recursive: true, force: true });
      }
    }));

  const release = program.command('release').description('releases: open, follow, inspect, cancel, promote, approve or reject');
  release
    .command('open')
    .summary('open a release of an artifact')
    .description('open a release of an artifact.\nAPI: POST /v1/releases')
    .option('--app <app>', 'the app (required)')
    .option('--version <version>', 'the version people will see (required)')
    .option('--artifact <key>', 'a key printed by "slipway artifact push" (required)')
    .option('--description <text>', 'what changes, for approvers and the history')
    .option('--wait', 'follow the release to its end; exit 0 only if it succeeds')
    .option('--interval <seconds>', 'with --wait: seconds between looks, 0.1 to 60 (default 1)', intervalSeconds)
    .option(json, `${jsonHelp} (with --wait: the final release; progress goes to stderr)`)
    .usage('--app <app> --version <version> --artifact <key> [options]')
    .action(act(async (options: OpenOptions) => {
      const { app, version, artifact: key } = required(options, { app: '--app', version: '--version', artifact: '--artifact' });
      const opened = await client().request<{ id: string; status: string }>('POST', '/v1/releases', {
        app,
        version,
        artifact: { key, sha256: sha256FromKey(key) },
        description: options.description ?? '',
      });
      const line = `release ${opened.id} opened (${opened.status})`;
      if (options.wait) {
        (options.json ? io.err : io.out)(line);
        return follow(opened.id, options);
      }
      print(options, opened, () => io.out(line));
      return 0;
    }));
  release
    .command('list')
    .summary('list releases, newest first')
    .description('list releases, newest first.\nAPI: GET /v1/releases')
    .option('--app <app>', 'only this app\'s releases')
    .option('--environment <env>', 'only those that reached this environment (needs --app)')
    .option('--limit <n>', 'at most this many (the API allows 1 to 100; default 20)', positiveInteger)
    .option('--cursor <cursor>', 'the next page, as printed after "more:"')
    .option(json, jsonHelp)
    .action(act(async (options: JsonOption & { app?: string; environment?: string; limit?: number; cursor?: string }) => {
      const { app, environment, limit, cursor } = options;
      const page = await client().request<Page<ReleaseSummary>>('GET', `/v1/releases${query({ app, environment, limit, cursor })}`);
      print(options, page, () => printReleases(page, io));
      return 0;
    }));
  release
    .command('show')
    .summary('a release with its environments, hosts and events')
    .description(
      `a release with its environments, hosts (each step's exit code) and events, and the last lines the first ${FAILED_HOSTS_SHOWN} failed steps printed.\n` +
      'A host\'s whole output: slipway release watch <id> --host <host>.\nAPI: GET /v1/releases/{id}; GET /v1/releases/{id}/hosts/{host}/output for each failed host',
    )
    .argument('<id>', 'the release id')
    .option(json, jsonHelp)
    .action(act(async (id: string, options: JsonOption) => {
      const shown = await client().request<ReleaseView>('GET', `/v1/releases/${path(id)}`);
      if (options.json) io.out(JSON.stringify(shown, null, 2));
      else printRelease(shown, io, await readFailedOutput(client(), shown));
      return 0;
    }));
  release
    .command('watch')
    .description('follow a release until it ends; exit 0 only if it succeeded')
    .argument('<id>', 'the release id')
    .option('--interval <seconds>', 'seconds between looks, 0.1 to 60 (default 1)', intervalSeconds)
    .option('--host <host>', 'follow what this host prints instead, line by line (API: GET /v1/releases/{id}/hosts/{host}/output)')
    .option(json, 'print the final release as JSON (progress goes to stderr)')
    .action(act(async (id: string, options: JsonOption & { interval?: number; host?: string }) => {
      if (!options.host) return follow(id, options);
      const ended = await watchHostOutput(client(), id, options.host, io);
      if (options.json) io.out(JSON.stringify(ended, null, 2));
      const release = await client().request<ReleaseView>('GET', `/v1/releases/${path(id)}`);
      io.err(`release ${id}: ${release.status}`);
      return release.status === 'succeeded' ? 0 : 1;
    }));
  release
    .command('history')
    .summary('the workflow\'s execution, state by state')
    .description('the workflow\'s execution, state by state.\nAPI: GET /v1/releases/{id}/history')
    .argument('<id>', 'the release id')
    .option(json, jsonHelp)
    .action(act(async (id: string, options: JsonOption) => {
      const history = await client().request<ExecutionHistory>('GET', `/v1/releases/${path(id)}/history`);
      print(options, history, () => printHistory(history, io));
      return 0;
    }));
  release
    .command('cancel')
    .summary('cancel a release that is not live everywhere yet; switched hosts are put back')
    .description('cancel a release that is not live everywhere yet; switched hosts are put back.\nAPI: POST /v1/releases/{id}/cancel')
    .argument('<id>', 'the release id')
    .option(json, jsonHelp)
    .action(act(async (id: string, options: JsonOption) => {
      const cancelled = await client().request<{ id: string; status: string }>('POST', `/v1/releases/${path(id)}/cancel`);
      print(options, cancelled, () => io.out(`release ${cancelled.id} ${cancelled.status}`));
      return 0;
    }));
  release
    .command('promote')
    .summary('go on from a canary\'s pause')
    .description('go on from a canary\'s pause (as a deployer or an approver).\nAPI: POST /v1/releases/{id}/promote')
    .argument('<id>', 'the release id')
    .option('--full', 'skip every pause still ahead: the release runs to its end unless something fails')
    .option(json, jsonHelp)
    .action(act(async (id: string, options: JsonOption & { full?: boolean }) => {
      const promoted = await client().request<{ id: string; status: string }>('POST', `/v1/releases/${path(id)}/promote`, { full: options.full === true });
      print(options, promoted, () => io.out(`release ${promoted.id} ${promoted.status}${options.full ? ' (no more pauses)' : ''}`));
      return 0;
    }));
  for (const decision of ['approve', 'reject'] as const) {
    release
      .command(decision)
      .summary(`${decision} a release waiting at an approval gate, as the approver your token names`)
      .description(`${decision} a release waiting at an approval gate, as the approver your token names.\nAPI: POST /v1/releases/{id}/approvals`)
      .argument('<id>', 'the release id')
      .option('--environment <env>', 'the gate\'s environment (default: the one waiting)')
      .option('--reason <text>', 'why, for the history')
      .option(json, jsonHelp)
      .action(act(async (id: string, options: JsonOption & { environment?: string; reason?: string }) => {
        const body = { decision, ...(options.environment ? { environment: options.environment } : {}), reason: options.reason ?? '' };
        const decided = await client().request<{ environment: string; decision: string; gate: string }>(
          'POST',
          `/v1/releases/${path(id)}/approvals`,
          body,
        );
        print(options, decided, () => io.out(`${decision === 'approve' ? 'approved' : 'rejected'} release ${id} in ${decided.environment} (gate ${decided.gate})`));
        return 0;
      }));
  }

  program
    .command('rollback')
    .summary('switch an environment back to a retained release')
    .description('switch an environment back to a retained release.\nAPI: POST /v1/apps/{app}/environments/{env}/rollback')
    .argument('<app>', 'the app')
    .argument('<env>', 'the environment')
    .option('--to <release>', 'the release to go back to (default: the one live before the current one)')
    .option('--wait', 'follow the rollback to its end; exit 0 only if it succeeds')
    .option('--interval <seconds>', 'with --wait: seconds between looks, 0.1 to 60 (default 1)', intervalSeconds)
    .option(json, `${jsonHelp} (with --wait: the final release; progress goes to stderr)`)
    .action(act(async (app: string, environment: string, options: JsonOption & { to?: string; wait?: boolean; interval?: number }) => {
      const started = await client().request<{ id: string; status: string }>(
        'POST',
        `/v1/apps/${path(app, 'environments', environment)}/rollback`,
        options.to ? { toRelease: options.to } : {},
      );
      const line = `rollback ${started.id} of ${app} ${environment} started (${started.status})`;
      if (options.wait) {
        (options.json ? io.err : io.out)(line);
        return follow(started.id, options);
      }
      print(options, started, () => io.out(line));
      return 0;
    }));

  program
    .command('hosts')
    .summary('which release each host of an environment runs, and which drift')
    .description([
      'which release each host of an environment runs, against the one live there; drift: not on it, or not answering.',
      'Exits 1 when a host drifts.',
      'API: GET /v1/apps/{app}/environments/{env}/hosts (with --scan: POST .../hosts/scan)',
    ].join('\n'))
    .argument('<app>', 'the app')
    .argument('<env>', 'the environment')
    .option('--scan', 'read every host first (a read-only command on each; deployer or admin)')
    .option(json, jsonHelp)
    .action(act(async (app: string, environment: string, options: JsonOption & { scan?: boolean }) => {
      const base = `/v1/apps/${path(app, 'environments', environment)}/hosts`;
      const listed = options.scan
        ? await client().request<{ items: HostView[]; scanned: number; unreachable: number }>('POST', `${base}/scan`)
        : await client().request<{ items: HostView[] }>('GET', base);
      print(options, listed, () => printHosts(listed.items, io));
      return listed.items.some((h) => h.drift) ? 1 : 0;
    }));

  const token = program.command('token').description('API tokens: who may call the API, in which role');
  token
    .command('create')
    .summary('make a token for someone; its secret is printed this once')
    .description('make a token for someone; its secret is printed this once.\nAPI: POST /v1/tokens')
    .option('--name <who>', 'who holds it, e.g. an email; approvers are matched by this name (required)')
    .option('--role <role>', 'viewer, deployer, approver or admin (required)')
    .option('--expires-in <seconds>', 'lifetime in whole seconds, 60 to 31536000 (default: no expiry)', wholeSeconds)
    .option(json, jsonHelp)
    .usage('--name <who> --role <role> [options]')
    .action(act(async (options: JsonOption & { name?: string; role?: string; expiresIn?: number }) => {
      const { name, role } = required(options, { name: '--name', role: '--role' });
      const created = await client().request<CreatedToken>('POST', '/v1/tokens', {
        name,
        role,
        ...(options.expiresIn === undefined ? {} : { expiresInSeconds: options.expiresIn }),
      });
      print(options, created, () => printCreatedToken(created, io));
      return 0;
    }));
  token
    .command('list')
    .summary('the tokens (never their secrets), last use, expiry')
    .description('the tokens (never their secrets), last use, expiry.\nAPI: GET /v1/tokens')
    .option(json, jsonHelp)
    .action(act(async (options: JsonOption) => {
      const listed = await client().request<{ items: TokenView[] }>('GET', '/v1/tokens');
      print(options, listed, () => printTokens(listed, io));
      return 0;
    }));
  token
    .command('revoke')
    .summary('refuse a token from its next request on')
    .description('refuse a token from its next request on.\nAPI: DELETE /v1/tokens/{name}')
    .argument('<name>', 'the token\'s name')
    .option(json, jsonHelp)
    .action(act(async (name: string, options: JsonOption) => {
      await client().request('DELETE', `/v1/tokens/${path(name)}`);
      print(options, { name, revoked: true }, () => io.out(`token ${name} revoked`));
      return 0;
    }));

  program
    .command('audit')
    .summary('who changed what, newest first')
    .description('who changed what, newest first.\nAPI: GET /v1/audit')
    .option('--limit <n>', 'at most this many (the API allows 1 to 100; default 50)', positiveInteger)
    .option('--cursor <cursor>', 'the next page, as printed after "more:"')
    .option(json, jsonHelp)
    .action(act(async (options: JsonOption & { limit?: number; cursor?: string }) => {
      const page = await client().request<Page<AuditEntry>>('GET', `/v1/audit${query({ limit: options.limit, cursor: options.cursor })}`);
      print(options, page, () => printAudit(page, io));
      return 0;
    }));

  // Every usage error ends with where to look, named for the command that was being parsed.
  const hint = (command: Command, names: string[]) => {
    command.showHelpAfterError(`run "${names.join(' ')} --help" for usage`);
    for (const sub of command.commands) hint(sub, [...names, sub.name()]);
  };
  hint(program, [program.name()]);
  return program;
}
