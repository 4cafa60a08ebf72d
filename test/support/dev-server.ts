import { rm } from 'node:fs/promises';
import { type DevServer, type DevServerOptions, startDevServer } from '@slipway/local';
import { sha256 } from './fixtures.ts';
import { temporaryDirectory } from './stand-ins.ts';

export interface TestServer extends DevServer {
  logs: string[];
  call(
    method: string,
    path: string,
    options?: CallOptions,
  ): Promise<{ status: number; body: any; headers: Headers }>;
  /** A token of the given role, made through the API by the admin. */
  tokenFor(role: 'viewer' | 'deployer' | 'approver' | 'admin', name?: string): Promise<string>;
  /** Requests an upload for `content` and PUTs it; returns the artifact reference. */
  upload(app: string, content: string | Buffer): Promise<{ key: string; sha256: string }>;
  /** Polls a release until it ends (succeeded, failed, rejected, cancelled) and its execution stopped; returns it. */
  waitForEnd(id: string, timeoutMs?: number): Promise<any>;
  /** Stops the server and, unless kept for a restart, deletes its data folder. */
  stop(options?: { keepData?: boolean }): Promise<void>;
}

const TERMINAL = new Set(['succeeded', 'failed', 'rejected', 'cancelled']);

export interface CallOptions {
  token?: string | null;
  body?: unknown;
  rawBody?: string | Buffer;
  headers?: Record<string, string>;
}

export async function startTestServer(dataDir?: string, options: Partial<DevServerOptions> = {}): Promise<TestServer> {
  const folder = dataDir ?? (await temporaryDirectory('slipway-dev-'));
  const logs: string[] = [];
  const server = await startDevServer({ dataDir: folder, port: 0, writeLog: (line) => logs.push(line), ...options });

  const call: TestServer['call'] = async (method, path, options = {}) => {
    const token = options.token === undefined ? server.adminToken : options.token;
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | Buffer | undefined;
    if (options.rawBody !== undefined) body = options.rawBody;
    else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not JSON (an HTML page, say): the test gets the text.
    }
    return { status: response.status, body: parsed, headers: response.headers };
  };

  return {
    ...server,
    logs,
    call,
    async tokenFor(role, name = `${role}@example.com`) {
      const created = await call('POST', '/v1/tokens', { body: { name, role } });
      if (created.status !== 201) throw new Error(`token creation failed: ${JSON.stringify(created.body)}`);
      return created.body.token as string;
    },
    async upload(app, content) {
      const bytes = Buffer.from(content);
      const digest = sha256(bytes);
      const ticket = await call('POST', '/v1/artifacts', {
        body: { app, sha256: digest, size: bytes.length },
      });
      if (ticket.status !== 201) throw new Error(`upload request failed: ${JSON.stringify(ticket.body)}`);
      if (!ticket.body.alreadyUploaded) {
        const put = await fetch(ticket.body.uploadUrl, {
          method: 'PUT',
          headers: ticket.body.uploadHeaders,
          body: bytes,
        });
        if (!put.ok) throw new Error(`upload failed: ${put.status}`);
      }
      return { key: ticket.body.key, sha256: digest };
    },
    async waitForEnd(id, timeoutMs = 90_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { body } = await call('GET', `/v1/releases/${id}`);
        // Ended, and its execution too (a release is succeeded once live everywhere; pruning follows).
        if (TERMINAL.has(body.status) && (await server.executor.releaseHistory(id))?.status !== 'RUNNING') {
          return (await call('GET', `/v1/releases/${id}`)).body;
        }
        if (Date.now() > deadline) throw new Error(`release ${id} is still ${body.status} after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async stop(options = {}) {
      if (!options.keepData) await server.settle();
      await server.close();
      if (!options.keepData) await rm(folder, { recursive: true, force: true, maxRetries: 5 });
    },
  };
}

/** Stops a test server without deleting its data and starts a new one on the same folder, as a deploy would. */
export async function restartTestServer(server: TestServer, options: Partial<DevServerOptions> = {}): Promise<TestServer> {
  await server.stop({ keepData: true });
  return startTestServer(server.dataDir, options);
}
