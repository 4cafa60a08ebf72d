import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../support/fixtures.ts';
import { temporaryDirectory } from '../support/stand-ins.ts';

/**
 * kill -9 of the dev server in the middle of a release, then a fresh start on the same data: the
 * executor resumes the execution, the fleet reports the host command that finished meanwhile, and
 * the release ends with every host on a working `current`.
 */
let dataDir: string;
let child: ChildProcess | undefined;

async function startServer(): Promise<{ url: string; process: ChildProcess }> {
  const process_ = spawn('node', ['packages/cli/bin/slipway.js', 'dev'], {
    env: { ...process.env, PORT: '0', SLIPWAY_DATA_DIR: dataDir, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let banner = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the dev server did not start: ${banner}`)), 20_000);
    process_.stderr!.on('data', (chunk: Buffer) => {
      banner += chunk.toString();
      const match = /Slipway is running at (http:\/\/127\.0\.0\.1:\d+)\//.exec(banner);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    process_.once('exit', (code) => reject(new Error(`the dev server exited (${code}): ${banner}`)));
  });
  return { url, process: process_ };
}

async function call(url: string, method: string, path: string, body?: unknown) {
  const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as any };
}

async function poll<T>(what: string, read: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  dataDir = await temporaryDirectory('slipway-crash-');
});
afterAll(async () => {
  child?.kill('SIGKILL');
  // Host scripts run detached; give the last ones a moment before the folder goes.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await rm(dataDir, { recursive: true, force: true, maxRetries: 5 });
});

describe('a crash in the middle of a release', () => {
  it('resumes after kill -9 and leaves every host consistent', async () => {
    let server = await startServer();
    child = server.process;

    const hosts = ['c-s1', 'c-p1', 'c-p2', 'c-p3'];
    for (const host of hosts) await mkdir(join(dataDir, 'fleet', host), { recursive: true });
    const config = {
      name: 'crashy',
      deployRoot: '/srv/crashy',
      // A slow postRelease keeps each production batch busy long enough to be killed inside it.
      hooks: { postRelease: 'sleep 1', healthCheck: 'test -f "$RELEASE_DIR/index.html"' },
      environments: [
        { name: 'staging', targets: { hosts: ['c-s1'] } },
        { name: 'production', targets: { hosts: ['c-p1', 'c-p2', 'c-p3'] }, strategy: { type: 'rolling', batchSize: 1 } },
      ],
    };
    expect((await call(server.url, 'PUT', '/v1/apps/crashy', config)).status).toBe(200);

    const source = join(dataDir, 'build');
    await mkdir(source, { recursive: true });
    await writeFile(join(source, 'index.html'), 'crash-proof');
    const file = join(dataDir, 'build.tar.gz');
    await create({ gzip: true, file, cwd: source, portable: true }, ['index.html']);
    const bytes = await readFile(file);
    const ticket = await call(server.url, 'POST', '/v1/artifacts', { app: 'crashy', sha256: sha256(bytes), size: bytes.length });
    await fetch(ticket.body.uploadUrl, { method: 'PUT', headers: ticket.body.uploadHeaders, body: bytes });
    const opened = await call(server.url, 'POST', '/v1/releases', {
      app: 'crashy',
      version: '1.0.0',
      artifact: { key: ticket.body.key, sha256: sha256(bytes) },
    });
    expect(opened.status).toBe(202);
    const id = opened.body.id as string;

    // Kill while production's second batch is being switched.
    await poll('the second production batch to start', async () => {
      const release = await call(server.url, 'GET', `/v1/releases/${id}`);
      const started = release.body.events.filter((e: any) => e.type === 'switch.started' && e.data.environment === 'production');
      return started.length >= 2 ? true : undefined;
    });
    server.process.kill('SIGKILL');
    await new Promise((resolve) => server.process.once('exit', resolve));

    server = await startServer();
    child = server.process;
    const ended = await poll('the release to end', async () => {
      const release = await call(server.url, 'GET', `/v1/releases/${id}`);
      return ['succeeded', 'failed'].includes(release.body.status) ? release.body : undefined;
    });
    expect(ended.status, ended.reason).toBe('succeeded');

    for (const host of hosts) {
      expect(await readlink(join(dataDir, 'fleet', host, 'current'))).toBe(`releases/${id}`);
      expect((await stat(join(dataDir, 'fleet', host, 'current/index.html'))).isFile()).toBe(true);
      const leftovers = (await readdir(join(dataDir, 'fleet', host))).filter((name) => name.includes('slipway-tmp'));
      expect(leftovers).toEqual([]);
    }
    // Every batch's switch ran exactly once on its host, resumed or not.
    const switches = ended.events.filter((e: any) => e.type === 'switch.started');
    expect(switches.map((e: any) => `${e.data.environment}#${e.data.batchIndex}`).sort()).toEqual([
      'production#0',
      'production#1',
      'production#2',
      'staging#0',
    ]);
    const commands = await readdir(join(dataDir, 'commands'));
    const kinds = await Promise.all(
      commands.map(async (c) => JSON.parse(await readFile(join(dataDir, 'commands', c, 'command.json'), 'utf8')).kind),
    );
    expect(kinds.filter((k) => k === 'switch')).toHaveLength(4);

    const history = await call(server.url, 'GET', `/v1/releases/${id}/history`);
    expect(history.body.status).toBe('SUCCEEDED');
    const types = history.body.events.map((e: any) => e.type);
    expect(types.filter((t: string) => t === 'ExecutionResumed')).toHaveLength(1);
    expect(JSON.stringify(history.body)).not.toMatch(/taskToken"\s*:\s*"[A-Za-z0-9_-]{20,}/);
    child.kill('SIGTERM');
    await new Promise((resolve) => child!.once('exit', resolve));
    child = undefined;
  }, 120_000);
});
