/**
 * How long a rollback of the demo app's 4-host production takes from the click on "Roll back now"
 * in the dashboard to the last host's `current` switched on disk. Run on demand:
 * `npm run bench:rollback` (needs Debian's chromium). Prints figures, asserts nothing.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevServer } from '@slipway/local';
import { chromium } from 'playwright-core';
import { create } from 'tar';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const PRODUCTION = ['prod-1', 'prod-2', 'prod-3', 'prod-4'];

const dataDir = await mkdtemp(join(tmpdir(), 'slipway-bench-'));
const server = await startDevServer({ dataDir, port: 0, logLevel: 'warn' });
const call = async (method: string, path: string, body?: unknown, token = server.adminToken) => {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const parsed = (await response.json()) as any;
  if (!response.ok) throw new Error(`${method} ${path}: ${JSON.stringify(parsed)}`);
  return parsed;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function release(version: string, approver: string): Promise<string> {
  const source = join(dataDir, `src-${version}`);
  await mkdir(source, { recursive: true });
  await writeFile(join(source, 'index.html'), version);
  await create({ gzip: true, file: `${source}.tar.gz`, cwd: source, portable: true }, ['index.html']);
  const bytes = await readFile(`${source}.tar.gz`);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const ticket = await call('POST', '/v1/artifacts', { app: 'demo', sha256, size: bytes.length });
  await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.uploadHeaders, body: bytes });
  const { id } = await call('POST', '/v1/releases', { app: 'demo', version, artifact: { key: ticket.key, sha256 } });
  for (;;) {
    const current = await call('GET', `/v1/releases/${id}`);
    if (current.status === 'awaiting_approval' && current.approvals.length) break;
    await sleep(20);
  }
  await call('POST', `/v1/releases/${id}/approvals`, { decision: 'approve' }, approver);
  for (;;) {
    const current = await call('GET', `/v1/releases/${id}`);
    if (current.status === 'succeeded') return id;
    if (['failed', 'rejected'].includes(current.status)) throw new Error(`release ${version} ${current.status}`);
    await sleep(20);
  }
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const approver = (await call('POST', '/v1/tokens', { name: 'approver@example.com', role: 'approver' })).token;
  const timings: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const older = await release(`2.${round}.0`, approver);
    await release(`2.${round}.1`, approver);
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.getByLabel('API token').fill(server.adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('section[aria-label="demo"] tr[data-environment="production"]').getByRole('button', { name: 'Roll back…' }).click();
    const clicked = page.locator('dialog[open]').getByRole('button', { name: 'Roll back now' });
    await clicked.waitFor();
    const started = performance.now();
    await clicked.click();
    for (;;) {
      const links = await Promise.all(PRODUCTION.map((host) => readlink(join(dataDir, 'fleet', host, 'current')).catch(() => '')));
      if (links.every((link) => link === `releases/${older}`)) break;
      await sleep(5);
    }
    timings.push(performance.now() - started);
    await page.close();
    // Let the rollback finish (health checks, records) before the next round opens a release.
    for (;;) {
      const app = await call('GET', '/v1/apps/demo');
      if (!app.environments[1].lock) break;
      await sleep(20);
    }
  }
  const sorted = [...timings].sort((a, b) => a - b);
  console.log(`Rollback of the demo's 4-host production (2 batches of 2) from the click to the last host switched, ${ROUNDS} rounds:`);
  console.log(`median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} ms, min ${sorted[0]!.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms`);
} finally {
  await browser.close();
  await server.close();
  await rm(dataDir, { recursive: true, force: true });
}
