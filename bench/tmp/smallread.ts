import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { startDevServer } from '@slipway/local';
import { benchClient } from '../client.ts';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const dataDir = await mkdtemp(join(tmpdir(), 'slipway-smallread-'));
const server = await startDevServer({ dataDir, port: 0, logLevel: 'warn', demo: false });
const { call, waitForEnd } = benchClient(server, 100);
try {
  await call('PUT', '/v1/apps/bench', { name: 'bench', deployRoot: '/srv/bench', environments: [{ name: 'production', targets: { tags: { Bench: 'no-such-host' } } }] });
  const bytes = Buffer.alloc(1024, 7);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const ticket = await call('POST', '/v1/artifacts', { app: 'bench', sha256, size: bytes.length });
  if (ticket.uploadUrl) await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.uploadHeaders, body: bytes });
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) { const o = await call('POST', '/v1/releases', { app: 'bench', version: `1.${i}`, artifact: { key: ticket.key, sha256 } }); ids.push(o.id); await waitForEnd(o.id); }
  for (let round = 0; round < 3; round++) {
    const cpu = process.cpuUsage();
    const child = spawn(process.execPath, ['bench/open-loop-client.mjs'], { env: { ...process.env, OPEN_LOOP: JSON.stringify({ url: server.url, token: server.adminToken, rate: 200, seconds: 10, kind: 'read', ids }) }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = ''; child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    await new Promise((r) => child.once('close', r));
    const { latencies } = JSON.parse(out);
    const c = process.cpuUsage(cpu);
    const p = (q: number) => latencies[Math.floor(q / 100 * latencies.length)].toFixed(1);
    console.log(`reads 200/s: p50 ${p(50)} p99 ${p(99)} max ${latencies.at(-1).toFixed(0)}; server cpu ${((c.user + c.system) / 1000 / latencies.length).toFixed(2)} ms/read`);
  }
} finally { await server.close(); await rm(dataDir, { recursive: true, force: true }); }
