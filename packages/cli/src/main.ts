import { openAsBlob } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CreatedToken, ReleaseSummary, ReleaseView, TokenView, UploadTicket } from '@slipway/core';
import { type ApiClient, ApiError, createApiClient } from './client.ts';
import { packDirectory } from './pack.ts';
import { watchRelease } from './watch.ts';

const USAGE = `slipway: release orchestrator for server fleets

usage:
  slipway dev                                   start the local API, stand-ins and demo fleet
  slipway apply <config.json>                   create or update an app from its config file
  slipway artifact push <dir> --app <app>       pack a folder as tar.gz and upload it
  slipway release open --app <app> --version <v> --artifact <key> [--description <text>] [--wait]
  slipway release watch <id>                     follow a release until it ends (exit 0 only on success)
  slipway release list [--app <app>] [--environment <env>] [--limit <n>] [--cursor <c>]
  slipway release show <id>
  slipway rollback <app> <env> [--to <release>] [--wait]   switch an environment back to a retained release
  slipway token create --name <who> --role <viewer|deployer|approver|admin> [--expires-in <seconds>]
  slipway token list                             the tokens (never their secrets), last use, expiry
  slipway token revoke <name>                    refuse a token from its next request on

The client commands read SLIPWAY_URL (default http://127.0.0.1:8787) and SLIPWAY_TOKEN.
Add --json to any client command to print the API's answer as JSON.`;

class UsageError extends Error {}

export { packDirectory } from './pack.ts';

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

function clientFrom(env: NodeJS.ProcessEnv): ApiClient {
  const token = env.SLIPWAY_TOKEN;
  if (!token)
    throw new UsageError('set SLIPWAY_TOKEN to an API token (the dev server prints the admin token)');
  return createApiClient(env.SLIPWAY_URL ?? 'http://127.0.0.1:8787', token);
}

/** Checks every required flag at once, so one try names all that are missing. */
function required<N extends string>(values: Record<string, unknown>, ...names: N[]): Record<N, string> {
  const missing = names.filter((name) => typeof values[name] !== 'string' || values[name] === '');
  if (missing.length > 0) {
    throw new UsageError(
      `${missing.map((name) => `--${name}`).join(', ')} ${missing.length > 1 ? 'are' : 'is'} required`,
    );
  }
  return Object.fromEntries(names.map((name) => [name, values[name]])) as Record<N, string>;
}

function intervalOf(value: string | undefined): number {
  if (value === undefined) return 1000;
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds < 0.1 || seconds > 60) throw new UsageError('--interval is seconds, 0.1 to 60');
  return seconds * 1000;
}

function sha256FromKey(key: string): string {
  const match = /^artifacts\/[^/]+\/([0-9a-f]{64})\.tar\.gz$/.exec(key);
  if (!match)
    throw new UsageError(
      '--artifact must be a key printed by "slipway artifact push" (artifacts/<app>/<sha256>.tar.gz)',
    );
  return match[1]!;
}

function printRelease(release: ReleaseView, io: Io) {
  io.out(`release ${release.id}  ${release.app} ${release.version}  ${release.status}`);
  io.out(`  opened by ${release.openedBy} at ${release.createdAt}`);
  io.out(`  artifact ${release.artifact.key} (${release.artifact.size} bytes)`);
  if (release.description) io.out(`  ${release.description.split('\n').join('\n  ')}`);
  if (release.reason) io.out(`  reason: ${release.reason}`);
  for (const env of release.environments) {
    io.out(`  ${env.environment}: ${env.status}`);
    for (const host of env.hosts) io.out(`    ${host.host}: ${host.status}`);
  }
  io.out('  events:');
  for (const event of release.events) io.out(`    ${event.at}  ${event.type}  by ${event.actor}`);
}

async function run(argv: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const [command, ...rest] = argv;
  const sub = rest[0];
  const print = (json: boolean, value: unknown, human: () => void) =>
    json ? io.out(JSON.stringify(value, null, 2)) : human();

  switch (command) {
    case 'dev': {
      const { runDev } = await import('./dev.ts');
      return runDev(env, io);
    }
    case 'apply': {
      const { values, positionals } = parseArgs({
        args: rest,
        options: { json: { type: 'boolean' } },
        allowPositionals: true,
      });
      const file = positionals[0];
      if (!file) throw new UsageError('name the app config file: slipway apply slipway.json');
      let config: { name?: unknown };
      try {
        config = JSON.parse(await readFile(file, 'utf8'));
      } catch (error) {
        throw new UsageError(`cannot read ${file} as JSON: ${(error as Error).message}`);
      }
      if (typeof config.name !== 'string') throw new UsageError(`${file} needs a "name" naming the app`);
      const stored = await clientFrom(env).request<{ revision: number }>(
        'PUT',
        `/v1/apps/${encodeURIComponent(config.name)}`,
        config,
      );
      print(!!values.json, stored, () => io.out(`app ${config.name} stored (revision ${stored.revision})`));
      return 0;
    }
    case 'artifact': {
      if (sub !== 'push') throw new UsageError('usage: slipway artifact push <dir> --app <app>');
      const { values, positionals } = parseArgs({
        args: rest.slice(1),
        options: { app: { type: 'string' }, json: { type: 'boolean' } },
        allowPositionals: true,
      });
      const directory = positionals[0];
      if (!directory)
        throw new UsageError('name the folder to push: slipway artifact push ./dist --app <app>');
      const { app } = required(values, 'app');
      const client = clientFrom(env);
      const workspace = await mkdtemp(join(tmpdir(), 'slipway-push-'));
      try {
        const packed = await packDirectory(directory, join(workspace, 'artifact.tar.gz'));
        const ticket = await client.request<UploadTicket>('POST', '/v1/artifacts', {
          app,
          sha256: packed.sha256,
          size: packed.size,
        });
        if (!ticket.alreadyUploaded) {
          const upload = await fetch(ticket.uploadUrl!, {
            method: 'PUT',
            headers: { ...ticket.uploadHeaders, 'content-length': String(packed.size) },
            body: await openAsBlob(packed.file),
          });
          if (!upload.ok) {
            throw new ApiError(
              upload.status,
              'upload_failed',
              `upload failed: HTTP ${upload.status} ${await upload.text()}`,
              null,
            );
          }
        }
        const result = {
          key: ticket.key,
          sha256: packed.sha256,
          size: packed.size,
          uploaded: !ticket.alreadyUploaded,
        };
        print(!!values.json, result, () => {
          io.err(`packed ${packed.entries} entries, ${packed.size} bytes, sha256 ${packed.sha256}`);
          io.err(ticket.alreadyUploaded ? 'already stored; nothing uploaded' : 'uploaded');
          io.out(ticket.key);
        });
        return 0;
      } finally {
        await rm(workspace, { recursive: true, force: true });
      }
    }
    case 'release': {
      const client = () => clientFrom(env);
      if (sub === 'open') {
        const { values } = parseArgs({
          args: rest.slice(1),
          options: {
            app: { type: 'string' },
            version: { type: 'string' },
            artifact: { type: 'string' },
            description: { type: 'string' },
            wait: { type: 'boolean' },
            interval: { type: 'string' },
            json: { type: 'boolean' },
          },
        });
        const { app, version, artifact: key } = required(values, 'app', 'version', 'artifact');
        const opened = await client().request<{ id: string; status: string }>('POST', '/v1/releases', {
          app,
          version,
          artifact: { key, sha256: sha256FromKey(key) },
          description: values.description ?? '',
        });
        print(!!values.json, opened, () => io.out(`release ${opened.id} opened (${opened.status})`));
        if (!values.wait) return 0;
        const ended = await watchRelease(client(), opened.id, io, { intervalMs: intervalOf(values.interval) });
        return ended.status === 'succeeded' ? 0 : 1;
      }
      if (sub === 'watch') {
        const { values, positionals } = parseArgs({
          args: rest.slice(1),
          options: { interval: { type: 'string' } },
          allowPositionals: true,
        });
        const id = positionals[0];
        if (!id) throw new UsageError('usage: slipway release watch <id>');
        const ended = await watchRelease(client(), id, io, { intervalMs: intervalOf(values.interval) });
        return ended.status === 'succeeded' ? 0 : 1;
      }
      if (sub === 'list') {
        const { values } = parseArgs({
          args: rest.slice(1),
          options: {
            app: { type: 'string' },
            environment: { type: 'string' },
            limit: { type: 'string' },
            cursor: { type: 'string' },
            json: { type: 'boolean' },
          },
        });
        const query = new URLSearchParams();
        for (const name of ['app', 'environment', 'limit', 'cursor'] as const) {
          if (values[name]) query.set(name, values[name]);
        }
        const page = await client().request<{ items: ReleaseSummary[]; nextCursor?: string }>(
          'GET',
          `/v1/releases${query.size ? `?${query}` : ''}`,
        );
        print(!!values.json, page, () => {
          for (const r of page.items)
            io.out(`${r.id}  ${r.app}  ${r.version}  ${r.status}  ${r.createdAt}  ${r.openedBy}`);
          if (page.items.length === 0) io.out('no releases');
          if (page.nextCursor) io.out(`more: --cursor ${page.nextCursor}`);
        });
        return 0;
      }
      if (sub === 'show') {
        const { values, positionals } = parseArgs({
          args: rest.slice(1),
          options: { json: { type: 'boolean' } },
          allowPositionals: true,
        });
        const id = positionals[0];
        if (!id) throw new UsageError('usage: slipway release show <id>');
        const release = await client().request<ReleaseView>('GET', `/v1/releases/${encodeURIComponent(id)}`);
        print(!!values.json, release, () => printRelease(release, io));
        return 0;
      }
      throw new UsageError('usage: slipway release open|list|show|watch');
    }
    case 'rollback': {
      const { values, positionals } = parseArgs({
        args: rest,
        options: { to: { type: 'string' }, wait: { type: 'boolean' }, interval: { type: 'string' }, json: { type: 'boolean' } },
        allowPositionals: true,
      });
      const [app, environment] = positionals;
      if (!app || !environment) throw new UsageError('usage: slipway rollback <app> <env> [--to <release>] [--wait]');
      const client = clientFrom(env);
      const started = await client.request<{ id: string; status: string }>(
        'POST',
        `/v1/apps/${encodeURIComponent(app)}/environments/${encodeURIComponent(environment)}/rollback`,
        values.to ? { toRelease: values.to } : {},
      );
      print(!!values.json, started, () => io.out(`rollback ${started.id} of ${app} ${environment} started (${started.status})`));
      if (!values.wait) return 0;
      const ended = await watchRelease(client, started.id, io, { intervalMs: intervalOf(values.interval) });
      return ended.status === 'succeeded' ? 0 : 1;
    }
    case 'token': {
      if (sub === 'create') {
        const { values } = parseArgs({
          args: rest.slice(1),
          options: { name: { type: 'string' }, role: { type: 'string' }, 'expires-in': { type: 'string' }, json: { type: 'boolean' } },
        });
        const request: Record<string, unknown> = required(values, 'name', 'role');
        if (values['expires-in'] !== undefined) {
          if (!/^[0-9]+$/.test(values['expires-in'])) throw new UsageError('--expires-in is whole seconds, 60 to 31536000 (a year)');
          request.expiresInSeconds = Number(values['expires-in']);
        }
        const created = await clientFrom(env).request<CreatedToken>('POST', '/v1/tokens', request);
        print(!!values.json, created, () => {
          const until = created.expiresAt ? `, expires ${created.expiresAt}` : '';
          io.err(`token for ${created.name} (${created.role}${until}); it is shown only now:`);
          io.out(created.token);
        });
        return 0;
      }
      if (sub === 'list') {
        const { values } = parseArgs({ args: rest.slice(1), options: { json: { type: 'boolean' } } });
        const listed = await clientFrom(env).request<{ items: TokenView[] }>('GET', '/v1/tokens');
        print(!!values.json, listed, () => {
          for (const t of listed.items) {
            const expiry = t.expiresAt ? `expires ${t.expiresAt}` : 'no expiry';
            io.out(`${t.name}  ${t.role}  created ${t.createdAt} by ${t.createdBy}  last used ${t.lastUsedAt ?? 'never'}  ${expiry}`);
          }
          if (listed.items.length === 0) io.out('no tokens');
        });
        return 0;
      }
      if (sub === 'revoke') {
        const { values, positionals } = parseArgs({ args: rest.slice(1), options: { json: { type: 'boolean' } }, allowPositionals: true });
        const name = positionals[0];
        if (!name || positionals.length > 1) throw new UsageError('usage: slipway token revoke <name>');
        await clientFrom(env).request('DELETE', `/v1/tokens/${encodeURIComponent(name)}`);
        print(!!values.json, { name, revoked: true }, () => io.out(`token ${name} revoked`));
        return 0;
      }
      throw new UsageError('usage: slipway token create|list|revoke');
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.out(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

export async function main(argv: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  try {
    return await run(argv, env, io);
  } catch (error) {
    if (
      error instanceof UsageError ||
      (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      io.err(`slipway: ${error.message}`);
      io.err('run "slipway help" for usage');
      return 2;
    }
    if (error instanceof ApiError) {
      io.err(`slipway: ${error.message}`);
      if (Array.isArray(error.details)) {
        for (const problem of error.details as { field: string; message: string }[]) {
          io.err(`  ${problem.field}: ${problem.message}`);
        }
      }
      return 1;
    }
    io.err(`slipway: ${(error as Error).message}`);
    return 1;
  }
}
