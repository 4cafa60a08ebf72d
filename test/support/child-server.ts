import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from './fixtures.ts';

const TERMINAL = new Set(['succeeded', 'failed', 'rejected', 'cancelled']);

/**
 * `slipway dev` in a process of its own, so a test can kill -9 it where it hurts and start it again
 * on the same data. Speaks to it only over HTTP, as a user would.
 */
export interface ChildServer {
  url: string;
  dataDir: string;
  process: ChildProcess;
  call(method: string, path: string, options?: { body?: unknown; token?: string }): Promise<{ status: number; body: any }>;
  upload(app: string, content: string | Buffer): Promise<{ key: string; sha256: string }>;
  waitForEnd(id: string, timeoutMs?: number): Promise<any>;
  /** kill -9, and wait until the process is gone. */
  kill(): Promise<void>;
  /** A clean stop (SIGTERM). */
  stop(): Promise<void>;
  /** The terminal it ran in closes: SIGHUP to its whole process group, and wait until it is gone. */
  hangUp(): Promise<void>;
}

export async function startChildServer(dataDir: string): Promise<ChildServer> {
  const child = spawn('node', ['packages/cli/bin/slipway.js', 'dev'], {
    env: { ...process.env, PORT: '0', SLIPWAY_DATA_DIR: dataDir, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'ignore', 'pipe'],
    // A process group of its own, as a server started from a terminal is: hangUp signals all of it.
    detached: true,
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let banner = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the dev server did not start: ${banner}`)), 60_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      banner += chunk.toString();
      const match = /Slipway is running at (http:\/\/127\.0\.0\.1:\d+)\//.exec(banner);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`the dev server exited (${code}): ${banner}`)));
  });
  const adminToken = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();

  const call: ChildServer['call'] = async (method, path, options = {}) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${options.token ?? adminToken}`, 'content-type': 'application/json' },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // An HTML page: the caller gets the text.
    }
    return { status: response.status, body };
  };

  return {
    url,
    dataDir,
    process: child,
    call,
    async upload(app, content) {
      const bytes = Buffer.from(content);
      const digest = sha256(bytes);
      const ticket = await call('POST', '/v1/artifacts', { body: { app, sha256: digest, size: bytes.length } });
      if (ticket.status !== 201) throw new Error(`upload request failed: ${JSON.stringify(ticket.body)}`);
      if (!ticket.body.alreadyUploaded) {
        const put = await fetch(ticket.body.uploadUrl, { method: 'PUT', headers: ticket.body.uploadHeaders, body: bytes });
        if (!put.ok) throw new Error(`upload failed: ${put.status}`);
      }
      return { key: ticket.body.key, sha256: digest };
    },
    async waitForEnd(id, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { body } = await call('GET', `/v1/releases/${id}`);
        if (TERMINAL.has(body.status) && (await call('GET', `/v1/releases/${id}/history`)).body.status !== 'RUNNING') {
          return (await call('GET', `/v1/releases/${id}`)).body;
        }
        if (Date.now() > deadline) throw new Error(`release ${id} is still ${body.status} after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
    async hangUp() {
      process.kill(-child.pid!, 'SIGHUP');
      await exited;
    },
  };
}
