import { mkdir, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create } from 'tar';
import type { TestServer } from './dev-server.ts';

/** What the helpers need of a server: one in this process, or one in a child process. */
export interface Driver extends Pick<TestServer, 'dataDir' | 'url' | 'upload' | 'waitForEnd'> {
  call(method: string, path: string, options?: { body?: unknown; token?: string }): Promise<{ status: number; body: any }>;
}

/**
 * What end-to-end tests do to a running Slipway, through its API and its folder hosts. Takes a
 * getter, so a test that restarts the server keeps using the same helpers.
 */
export function scenario(server: () => Driver) {
  const fleet = (host: string, ...path: string[]) => join(server().dataDir, 'fleet', host, ...path);

  async function release(id: string) {
    return (await server().call('GET', `/v1/releases/${id}`)).body;
  }

  async function waitFor(id: string, done: (r: any) => boolean, what: string, timeoutMs = 90_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const current = await release(id);
      if (done(current)) return current;
      if (Date.now() > deadline) throw new Error(`release ${id} never ${what}; it is ${current.status}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async function tarball(appName: string, files: Record<string, string>) {
    const source = join(server().dataDir, `src-${Math.random().toString(36).slice(2)}`);
    for (const [path, content] of Object.entries(files)) {
      await mkdir(join(source, path, '..'), { recursive: true });
      await writeFile(join(source, path), content);
    }
    const file = `${source}.tar.gz`;
    await create({ gzip: true, file, cwd: source, portable: true }, Object.keys(files));
    const artifact = await server().upload(appName, await readFile(file));
    await rm(source, { recursive: true, force: true });
    await rm(file, { force: true });
    return artifact;
  }

  return {
    fleet,
    release,
    waitFor,
    waitForEnd: (id: string, timeoutMs = 90_000) => server().waitForEnd(id, timeoutMs),
    /** Waits until the release stands at a gate with every approver mailed. */
    waitForGate: (id: string, environment: string) =>
      waitFor(
        id,
        (r) =>
          r.status === 'awaiting_approval' &&
          r.approvals.some(
            (g: any) =>
              g.environment === environment &&
              r.events.filter((e: any) => e.type === 'approval.mailed' && e.data?.environment === environment).length === g.approvers.length,
          ),
        `reached the ${environment} gate`,
      ),

    /** Creates the hosts' folders and stores the app. */
    async app(config: Record<string, any>) {
      for (const env of config.environments) for (const host of env.targets.hosts ?? []) await mkdir(fleet(host), { recursive: true });
      const stored = await server().call('PUT', `/v1/apps/${config.name}`, { body: config });
      if (stored.status !== 200) throw new Error(JSON.stringify(stored.body));
      return stored.body;
    },

    tarball,

    async open(appName: string, version: string, files: Record<string, string> = { 'index.html': version }) {
      const artifact = await tarball(appName, files);
      const opened = await server().call('POST', '/v1/releases', { body: { app: appName, version, artifact, description: `release ${version}` } });
      if (opened.status !== 202) throw new Error(JSON.stringify(opened.body));
      return opened.body.id as string;
    },

    async rollback(appName: string, environment: string, body: Record<string, unknown> = {}) {
      const opened = await server().call('POST', `/v1/apps/${appName}/environments/${environment}/rollback`, { body });
      if (opened.status !== 202) throw new Error(JSON.stringify(opened.body));
      return opened.body.id as string;
    },

    /** Where a host's `current` points, or null. */
    current: (host: string) => readlink(fleet(host, 'current')).catch(() => null),
    releasesOn: async (host: string) => (await readdir(fleet(host, 'releases'))).filter((name) => !name.startsWith('.')).sort(),

    /** What the API says is live on each environment of an app, and who holds its lock. */
    async live(appName: string) {
      const { body } = await server().call('GET', `/v1/apps/${appName}`);
      const entries = body.environments.map((e: any) => [e.name, { live: e.live?.id ?? null, lock: e.lock?.holder ?? null }]);
      return Object.fromEntries(entries) as Record<string, { live: string | null; lock: string | null }>;
    },

    /** The approval links mailed for a release's gate, by approver. */
    async links(id: string, environment?: string): Promise<Record<string, string>> {
      const { items } = (await server().call('GET', '/v1/outbox')).body;
      const found: Record<string, string> = {};
      for (const mail of items) {
        if (!mail.text.includes(id) || (environment && !mail.text.includes(environment))) continue;
        const link = /(http:\/\/127\.0\.0\.1:\d+\/approvals\/[A-Za-z0-9_-]{43})/.exec(mail.text)?.[1];
        if (link) found[mail.to[0]] = link;
      }
      return found;
    },

    /** Decides on an approval page as a person would: read the form, post it. */
    async decide(link: string, decision: 'approve' | 'reject', reason = '') {
      // The link names the server that mailed it; a restarted server listens elsewhere.
      const url = new URL(link);
      const here = `${server().url}${url.pathname}`;
      const html = await (await fetch(here)).text();
      const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
      const response = await fetch(here, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ decision, reason, csrf }).toString(),
      });
      return { status: response.status, html: await response.text() };
    },
  };
}
