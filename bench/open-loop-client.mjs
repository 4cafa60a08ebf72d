// The open-loop client of bench/api.ts, in a process of its own so that the CPU, memory and event
// loop the bench reports are the server's alone, and a request's latency is what a client sees.
// Told on its standard input (one JSON text: the ids of thousands of releases do not fit in an
// environment variable) where to send what: { url, token, rate, seconds, kind: 'open' | 'read' |
// 'health', app, artifact, ids }. It sends `rate` requests a second for `seconds` (open-loop.mjs:
// each at its scheduled time, its latency counted from then) and prints one JSON line: latencies
// (sorted), answers by status, elapsed seconds, and the ids of the releases answered 202.
import { randomUUID } from 'node:crypto';
import { runOpenLoop } from './open-loop.mjs';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { url, token, rate, seconds, kind, app, artifact, ids } = JSON.parse(input);
const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

async function send(i) {
  if (kind === 'open') {
    const response = await fetch(`${url}/v1/releases`, {
      method: 'POST',
      headers: { ...headers, 'idempotency-key': randomUUID() },
      body: JSON.stringify({ app, version: `2.0.${i}`, artifact }),
    });
    const body = await response.json();
    return { status: response.status, id: response.status === 202 ? body.id : undefined };
  }
  if (kind === 'health') {
    const response = await fetch(`${url}/healthz`);
    await response.arrayBuffer();
    return { status: response.status };
  }
  const response = await fetch(`${url}/v1/releases/${ids[i % Math.max(1, ids.length)] ?? 'none'}`, { headers });
  await response.arrayBuffer();
  return { status: response.status };
}

// Before the clock starts: a process's first fetch loads undici and connects (20-40 ms more,
// whichever server answers), which is this client's cost, not the server's.
const warmUp = await fetch(`${url}/healthz`);
await warmUp.arrayBuffer();
if (!warmUp.ok) throw new Error(`the server answered its health check ${warmUp.status}`);

const opened = [];
const { latencies, tally: statuses, elapsed } = await runOpenLoop(rate, seconds, async (i) => {
  const { status, id } = await send(i);
  if (id) opened.push(id);
  return status;
});
process.stdout.write(`${JSON.stringify({ latencies, statuses, elapsed, opened })}\n`);
