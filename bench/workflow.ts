/**
 * End-to-end timings on the embedded default: a 4-host rolling release (2 per batch) from the open
 * to the end, and a rollback of those 4 hosts from the request to the last host switched.
 * Run on demand with `npm run bench:workflow`; it prints figures and asserts nothing.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevServer } from '@slipway/local';
import { create } from 'tar';
import { benchClient } from './client.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const dataDir = await mkdtemp(join(tmpdir(), 'slipway-bench-'));
const server = await startDevServer({ dataDir, port: 0, logLevel: 'warn', demo: false });
const { call, waitForEnd } = benchClient(server, 10);
const stats = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} ms, min ${sorted[0]!.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms`;
};

try {
  const hosts = ['b-1', 'b-2', 'b-3', 'b-4'];
  for (const host of hosts) await mkdir(join(dataDir, 'fleet', host), { recursive: true });
  await call('PUT', '/v1/apps/bench', {
    name: 'bench',
    deployRoot: '/srv/bench',
    keepReleases: 3,
    hooks: { healthCheck: 'test -f "$RELEASE_DIR/index.html"' },
    environments: [{ name: 'production', targets: { hosts }, strategy: { type: 'rolling', batchSize: 2 } }],
  });
  const releases: number[] = [];
  const rollbacks: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const source = join(dataDir, `src-${round}`);
    await mkdir(source, { recursive: true });
    await writeFile(join(source, 'index.html'), `round ${round}`);
    await create({ gzip: true, file: `${source}.tar.gz`, cwd: source, portable: true }, ['index.html']);
    const bytes = await readFile(`${source}.tar.gz`);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const ticket = await call('POST', '/v1/artifacts', { app: 'bench', sha256, size: bytes.length });
    await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.uploadHeaders, body: bytes });

    let started = performance.now();
    const opened = await call('POST', '/v1/releases', { app: 'bench', version: `1.${round}`, artifact: { key: ticket.key, sha256 } });
    await waitForEnd(opened.id);
    releases.push(performance.now() - started);

    if (round > 0) {
      started = performance.now();
      const rollback = await call('POST', '/v1/apps/bench/environments/production/rollback', {});
      await waitForEnd(rollback.id);
      rollbacks.push(performance.now() - started);
    }
  }
  console.log(`Slipway workflow bench (embedded default, Node ${process.version}, ${ROUNDS} rounds)`);
  console.log(`4-host rolling release (distribute, 2 batches, prune): ${stats(releases)}`);
  console.log(`4-host rollback (2 batches, no download):            ${stats(rollbacks)}`);
} finally {
  await server.close();
  await rm(dataDir, { recursive: true, force: true });
}
