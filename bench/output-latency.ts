/**
 * Live host output on the embedded default: how long a line printed on a host takes to arrive
 * over SSE (GET /v1/releases/{id}/hosts/{host}/output), for an operator following a 50-host release
 * (issue 14 aims under 1 s). Every host's health check prints a line with the wall clock every
 * 100 ms; the bench follows all hosts' streams at once and subtracts. Run on demand with
 * `npm run bench:output` (BENCH_HOSTS, BENCH_TICKS); it prints figures and asserts nothing.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevServer } from '@slipway/local';
import { create } from 'tar';
import { openSse } from '../test/support/sse.ts';
import { sha256 } from '../test/support/fixtures.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const HOSTS = Number(process.env.BENCH_HOSTS ?? 50);
const TICKS = Number(process.env.BENCH_TICKS ?? 50);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const dataDir = await mkdtemp(join(tmpdir(), 'slipway-bench-output-'));
const server = await startDevServer({ dataDir, port: 0, demo: false, logLevel: 'error', writeLog: () => {} });
try {
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${server.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return response.json() as Promise<any>;
  };
  const hosts = Array.from({ length: HOSTS }, (_, i) => `out-${i + 1}`);
  for (const host of hosts) await mkdir(join(dataDir, 'fleet', host), { recursive: true });
  // Milliseconds since the epoch, from the host's own clock (the same machine).
  const tick = `for i in $(seq 1 ${TICKS}); do echo "tick $(date +%s%3N)"; sleep 0.1; done`;
  await call('PUT', '/v1/apps/out', {
    name: 'out',
    deployRoot: '/srv/out',
    hooks: { healthCheck: tick },
    environments: [{ name: 'production', targets: { hosts }, strategy: { type: 'rolling', batchSize: HOSTS } }],
  });
  const source = join(dataDir, 'src');
  await mkdir(source, { recursive: true });
  await writeFile(join(source, 'index.html'), 'bench');
  await create({ gzip: true, file: `${source}.tar.gz`, cwd: source, portable: true }, ['index.html']);
  const bytes = await readFile(`${source}.tar.gz`);
  const ticket = await call('POST', '/v1/artifacts', { app: 'out', sha256: sha256(bytes), size: bytes.length });
  await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.uploadHeaders, body: bytes });
  const release = await call('POST', '/v1/releases', { app: 'out', version: '1', artifact: { key: ticket.key, sha256: ticket.sha256 } });

  const delays: number[] = [];
  await Promise.all(
    hosts.map(async (host) => {
      const stream = await openSse(`${server.url}/v1/releases/${release.id}/hosts/${host}/output`, server.adminToken);
      for (let event = await stream.next(300_000); event && event.event !== 'end'; event = await stream.next(300_000)) {
        const match = event.event === 'line' ? /^tick (\d+)$/.exec(event.data.text) : null;
        if (match) delays.push(Date.now() - Number(match[1]));
      }
    }),
  );
  delays.sort((a, b) => a - b);
  console.log(
    `line printed on a host -> arrived over SSE: ${delays.length} lines from ${HOSTS} hosts  ` +
    `p50 ${percentile(delays, 50)} ms  p95 ${percentile(delays, 95)} ms  p99 ${percentile(delays, 99)} ms  max ${delays.at(-1)} ms`,
  );
} finally {
  await server.close();
  await rm(dataDir, { recursive: true, force: true });
}
