/**
 * API throughput and latency on the embedded default: opening releases, reading one, listing.
 * Run on demand with `npm run bench`; it prints figures and asserts nothing.
 *
 * BENCH_MODE=closed (default): BENCH_CONCURRENCY clients, each sending its next request when the
 * last is answered. BENCH_MODE=open: requests at a fixed rate whatever the answers (BENCH_RATE
 * opens/s, then BENCH_READ_RATE reads/s, for BENCH_SECONDS each), latency counted from each
 * request's scheduled send, so a server that falls behind cannot hide it (coordinated omission);
 * then how many releases exist against how many opens were answered 202: under overload nothing
 * may lie. BENCH_MODE=calls: the AWS calls the API function makes for one open and one read, by
 * operation (the executor's journal, Step Functions' part on AWS, is not counted).
 *
 * Beside the open loop, the floors under it, in the same run: the same client reading /healthz (a
 * lower bound of its and HTTP's part of a read), and the DynamoDB and S3 calls of one read and of
 * one open, sent bare through SDK clients made as the server's are, to the same stand-ins at the
 * same rates, with none of Slipway's code around them (the store's part).
 */
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { BatchWriteCommand, GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type AttributedCall, createCallAttribution, createDocumentClient, createS3Client, keys, RELEASE_TAIL } from '@slipway/aws';
import { isTerminal, type ReleaseStatus } from '@slipway/core';
import { LOCAL_BUCKET, LOCAL_CREDENTIALS, LOCAL_REGION, LOCAL_TABLE, startDevServer } from '@slipway/local';
import { runOpenLoop } from './open-loop.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const OPENS = Number(process.env.BENCH_OPENS ?? 300);
const READS = Number(process.env.BENCH_READS ?? 600);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const MODE = process.env.BENCH_MODE ?? 'closed';
const RATE = Number(process.env.BENCH_RATE ?? 100);
const READ_RATE = Number(process.env.BENCH_READ_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);

/**
 * Runs open-loop-client.mjs in a process of its own: `rate` requests a second for `seconds`, each at
 * its scheduled time; prints the latencies and answers beside the server's CPU per request (this
 * process runs only the server meanwhile) and answers the client's tally.
 */
async function openLoop(name: string, loop: { rate: number; seconds: number; kind: 'open' | 'read' | 'health'; artifact?: unknown; ids?: string[] }) {
  const cpu = process.cpuUsage();
  const child = spawn(process.execPath, [fileURLToPath(new URL('open-loop-client.mjs', import.meta.url))], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  child.stdin.end(JSON.stringify({ url: server.url, token: server.adminToken, app: 'bench', ...loop }));
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`the open-loop client exited (${code})`);
  const tally = JSON.parse(output) as { latencies: number[]; statuses: Record<string, number>; elapsed: number; opened: string[] };
  const { latencies, statuses, elapsed } = tally;
  const count = latencies.length;
  console.log(
    `${name.padEnd(22)} offered ${loop.rate}/s for ${loop.seconds} s: ${count} requests, all answered in ${elapsed.toFixed(1)} s; ` +
    `p50 ${percentile(latencies, 50).toFixed(1)} ms  p99 ${percentile(latencies, 99).toFixed(1)} ms  max ${(latencies.at(-1) ?? 0).toFixed(0)} ms; ` +
    `answers ${Object.entries(statuses).map(([status, n]) => `${status}: ${n}`).join(', ')}; the server's ${cpuPerRequest(cpu, count)}`,
  );
  return tally;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function measure(name: string, count: number, task: (i: number) => Promise<void>) {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        const i = next++;
        const t0 = performance.now();
        await task(i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  console.log(
    `${name.padEnd(22)} ${String(count).padStart(5)} requests  ${(count / seconds).toFixed(0).padStart(5)}/s  ` +
    `p50 ${percentile(latencies, 50).toFixed(1)} ms  p95 ${percentile(latencies, 95).toFixed(1)} ms  ` +
    `p99 ${percentile(latencies, 99).toFixed(1)} ms  ${cpuPerRequest(cpu, count)}`,
  );
}

/**
 * This process's CPU time per request since `since` (the API, the stand-ins, the workflows, and in
 * the closed loop this client too): on a shared, loaded machine a steadier figure than latency.
 */
function cpuPerRequest(since: NodeJS.CpuUsage, count: number) {
  const { user, system } = process.cpuUsage(since);
  return `cpu ${((user + system) / 1000 / count).toFixed(1)} ms/request; load average ${loadavg().map((n) => n.toFixed(1)).join(' ')}`;
}

type Item = Record<string, unknown>;
/** What a real open read (token, app, artifact) and wrote, as it wrote it (see openItems). */
type OpenItems = Record<
  'token' | 'app' | 'artifact' | 'claim' | 'response' | 'release' | 'environment' | 'opened' | 'started' | 'execution' | 'executionStarted',
  Item
>;
const keyOf = (item: Item) => ({ pk: item.pk, sk: item.sk });

/**
 * A floor: `one` (the store calls of a request, bare) `rate` times a second for `seconds`, each at
 * its scheduled time as the open-loop client sends, through SDK clients made as the server's are
 * (createDocumentClient, createS3Client) to the same stand-ins in this process: what the request
 * costs at least with the store it must use, whatever Slipway does around it (HTTP, router, auth,
 * validation, workflow).
 */
async function storeFloor(name: string, calls: string, rate: number, one: (i: number) => Promise<unknown>, warmUp: () => Promise<unknown>) {
  // The stand-ins close an idle connection after 5 s: connect again right before the clock.
  await warmUp();
  const cpu = process.cpuUsage();
  const { latencies, tally } = await runOpenLoop(rate, SECONDS, async (i) => {
    await one(i);
    return 'ok';
  });
  const count = latencies.length;
  const errors = Object.entries(tally).filter(([answer]) => answer !== 'ok');
  console.log(
    `${name.padEnd(22)} offered ${rate}/s for ${SECONDS} s: ${calls}, bare, ${count} times; ` +
    `p50 ${percentile(latencies, 50).toFixed(1)} ms  p99 ${percentile(latencies, 99).toFixed(1)} ms  max ${(latencies.at(-1) ?? 0).toFixed(0)} ms; ` +
    `${errors.length === 0 ? 'no error' : errors.map(([error, n]) => `${error}: ${n}`).join(', ')}; the server's ${cpuPerRequest(cpu, count)}`,
  );
}

/** SDK clients for the floors, made as the server makes its own; `warmUp` connects both. */
function floorClients(token: Item, artifactKey: string) {
  const connection = { region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, endpoints: server.endpoints };
  const dynamo = createDocumentClient(connection);
  const s3 = createS3Client(connection);
  const warmUp = () => Promise.all([
    dynamo.send(new GetCommand({ TableName: LOCAL_TABLE, Key: keyOf(token), ConsistentRead: true })),
    s3.send(new HeadObjectCommand({ Bucket: LOCAL_BUCKET, Key: artifactKey })),
  ]);
  return { dynamo, s3, warmUp, close: () => (dynamo.destroy(), s3.destroy()) };
}
type FloorClients = ReturnType<typeof floorClients>;

/** A read's store calls: the token's GetItem and the one Query of the release's partition below its tail. */
function readFloor({ dynamo, warmUp }: FloorClients, token: Item, opened: string[]) {
  return storeFloor('floor: a read\'s calls', 'the 2 calls of a read', READ_RATE, async (i) => {
    await dynamo.send(new GetCommand({ TableName: LOCAL_TABLE, Key: keyOf(token), ConsistentRead: true }));
    await dynamo.send(new QueryCommand({
      TableName: LOCAL_TABLE,
      KeyConditionExpression: 'pk = :pk AND sk < :tail',
      ExpressionAttributeValues: { ':pk': keys.release(opened[i % opened.length]!).pk, ':tail': RELEASE_TAIL },
      ConsistentRead: true,
    }));
  }, warmUp);
}

/**
 * An open's store calls (bench calls mode: GetItem 3, PutItem 3, BatchWriteItem 1, UpdateItem 1,
 * HeadObject 1; and the executor's PutItem 2), in the open's order, with the one group it sends at
 * once and the conditions it writes with: the items a real open wrote (`items`), each copy under
 * keys and index keys of its own, so that it still costs its index writes and no listing (nor the
 * executor's search for running executions) ever finds it.
 */
function openFloor({ dynamo, s3, warmUp }: FloorClients, items: OpenItems, artifactKey: string) {
  const TableName = LOCAL_TABLE;
  const hidden = (item: Item, pk: string): Item => ({
    ...item,
    pk,
    ...(item.gsi1pk === undefined ? {} : { gsi1pk: `FLOOR#${String(item.gsi1pk)}` }),
    ...(item.gsi2pk === undefined ? {} : { gsi2pk: `FLOOR#${String(item.gsi2pk)}` }),
  });
  const get = (item: Item) => dynamo.send(new GetCommand({ TableName, Key: keyOf(item), ConsistentRead: true }));
  const putOnce = (Item: Item) => dynamo.send(new PutCommand({ TableName, Item, ConditionExpression: 'attribute_not_exists(pk)' }));
  return storeFloor('floor: an open\'s calls', 'the 11 calls of an open', RATE, async (i) => {
    const now = new Date().toISOString();
    const claim = hidden(items.claim, `FLOOR#${i}#${String(items.claim.pk)}`);
    await get(items.token);
    await dynamo.send(new PutCommand({
      TableName,
      Item: claim,
      ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now OR (#status = :inProgress AND inProgressUntil < :now)',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':now': now, ':inProgress': 'in_progress' },
    }));
    await Promise.all([get(items.app), s3.send(new HeadObjectCommand({ Bucket: LOCAL_BUCKET, Key: artifactKey })), get(items.artifact)]);
    const partition = `REL#floor-${i}`;
    await dynamo.send(new BatchWriteCommand({
      RequestItems: { [TableName]: [items.environment, items.opened].map((item) => ({ PutRequest: { Item: hidden(item, partition) } })) },
    }));
    await putOnce(hidden(items.release, partition));
    const execution = `FLOOR#${i}#${String(items.execution.pk)}`;
    await putOnce(hidden(items.execution, execution));
    await dynamo.send(new PutCommand({ TableName, Item: hidden(items.executionStarted, execution) }));
    await putOnce(hidden(items.started, partition));
    await dynamo.send(new UpdateCommand({
      TableName,
      Key: keyOf(claim),
      UpdateExpression: 'SET #status = :completed, #response = :response, expiresAt = :expiresAt, #ttl = :ttl',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeNames: { '#status': 'status', '#response': 'response', '#ttl': 'ttl' },
      ExpressionAttributeValues: { ':completed': 'completed', ':response': items.response, ':expiresAt': claim.expiresAt, ':ttl': claim.ttl },
    }));
  }, warmUp);
}

/**
 * The items of one real open (`releaseId`, opened with an Idempotency-Key, ended since) as the open
 * wrote them: the items that change after it (the release, its environment, the execution, the
 * key's record) are put back in the state the open left them in, with the attributes it wrote.
 */
async function openItems(releaseId: string, sha256: string): Promise<OpenItems> {
  const dynamo = createDocumentClient({ region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, endpoints: server.endpoints });
  const TableName = LOCAL_TABLE;
  const get = async (key: { pk: string; sk: string }) => {
    const { Item } = await dynamo.send(new GetCommand({ TableName, Key: key, ConsistentRead: true }));
    if (!Item) throw new Error(`no item ${key.pk} ${key.sk}`);
    return Item;
  };
  // Scanned while the table is still small: one page holds them.
  const only = async (prefix: string) => {
    const { Items = [] } = await dynamo.send(new ScanCommand({
      TableName,
      FilterExpression: 'begins_with(pk, :prefix)',
      ExpressionAttributeValues: { ':prefix': prefix },
    }));
    if (Items.length !== 1) throw new Error(`${Items.length} items under ${prefix}, not 1`);
    return Items[0]!;
  };
  const typed = async (pk: string, type: string) => {
    const { Items = [] } = await dynamo.send(new QueryCommand({
      TableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :event)',
      ExpressionAttributeValues: { ':pk': pk, ':event': 'EVENT#' },
      ConsistentRead: true,
    }));
    const found = Items.find((item) => item.type === type);
    if (!found) throw new Error(`no ${type} event under ${pk}`);
    return found;
  };
  const pick = (item: Item, names: string[]) =>
    Object.fromEntries(names.filter((name) => item[name] !== undefined).map((name) => [name, item[name]]));
  const release = await get(keys.release(releaseId));
  const environment = await get(keys.releaseEnv(releaseId, 'production'));
  const executionKey = { pk: `EXEC#release:${releaseId}`, sk: 'META' };
  const execution = await get(executionKey);
  const claim = await only('IDEMPOTENCY#');
  const items: OpenItems = {
    token: await only('TOKEN#'),
    app: await get(keys.app('bench')),
    artifact: await get(keys.artifact('bench', sha256)),
    // dynamo-idempotency-store.ts claimIdempotencyKey
    claim: { ...pick(claim, ['pk', 'sk', 'key', 'requestHash', 'inProgressUntil', 'expiresAt', 'ttl']), status: 'in_progress' },
    // completeIdempotencyKey: the open's answer as it stored it
    response: claim.response as Item,
    // dynamo-release-records.ts releaseItem, as releases.ts open makes the release
    release: {
      ...pick(release, ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk', 'id', 'app', 'version', 'artifact', 'description', 'openedBy', 'createdAt', 'config']),
      status: 'pending',
      updatedAt: release.createdAt,
    },
    environment: { ...pick(environment, ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'releaseId', 'app', 'environment', 'order']), status: 'pending' },
    opened: await typed(keys.release(releaseId).pk, 'release.opened'),
    started: await typed(keys.release(releaseId).pk, 'workflow.started'),
    // executor.ts start and its first appendHistory
    execution: {
      ...pick(execution, ['pk', 'sk', 'executionId', 'machine', 'input', 'startedAt']),
      status: 'RUNNING',
      resumes: 0,
      gsi1pk: 'EXECUTIONS#RUNNING',
      gsi1sk: execution.executionId,
    },
    executionStarted: await typed(executionKey.pk, 'ExecutionStarted'),
  };
  dynamo.destroy();
  return items;
}

const dataDir = await mkdtemp(join(tmpdir(), 'slipway-bench-'));
const apiCalls: AttributedCall[] = [];
const recorder = MODE === 'calls'
  ? createCallAttribution((recorded) => {
      if (recorded.fn === 'Api') apiCalls.push(recorded);
    })
  : undefined;
const server = await startDevServer({ dataDir, port: 0, logLevel: 'warn', ...(recorder ? { recorder } : {}) });
const headers = { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' };
const call = async (method: string, path: string, body?: unknown) => {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
};

/** Waits until no release of the bench app is still running or queued. */
async function allEnded() {
  const deadline = Date.now() + 600_000;
  for (;;) {
    let running = 0;
    let cursor: string | undefined;
    do {
      const page = await call('GET', `/v1/releases?app=bench&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      running += (page.items as { status: ReleaseStatus }[]).filter((item) => !isTerminal(item.status)).length;
      cursor = page.nextCursor;
    } while (cursor);
    if (running === 0) return;
    if (Date.now() > deadline) throw new Error(`${running} releases still running after 10 minutes`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

try {
  // An app of its own: queueing (so opens never meet a lock) and targeting no host, so each release
  // ends at once in Prepare and the figures are the API's, not the fleet's.
  await call('PUT', '/v1/apps/bench', {
    name: 'bench',
    deployRoot: '/srv/bench',
    queue: true,
    environments: [{ name: 'production', targets: { tags: { Bench: 'no-such-host' } } }],
  });
  const bytes = Buffer.alloc(5 * 1024 * 1024, 7);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const ticket = await call('POST', '/v1/artifacts', { app: 'bench', sha256, size: bytes.length });
  await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.uploadHeaders, body: bytes });
  const artifact = { key: ticket.key, sha256 };

  console.log(
    `Slipway API bench: ${CONCURRENCY} concurrent clients, embedded DynamoDB and S3, Node ${process.version}`,
  );
  const t0 = performance.now();
  await call('POST', '/v1/releases', { app: 'bench', version: 'first', artifact });
  console.log(`first open (hashes the 5 MiB artifact once): ${(performance.now() - t0).toFixed(1)} ms`);

  if (MODE === 'calls') {
    /** Counts the API's calls while `work` runs, by operation. */
    const count = async (name: string, work: () => Promise<unknown>) => {
      apiCalls.length = 0;
      await work();
      const byOperation = new Map<string, number>();
      for (const { operation } of apiCalls) byOperation.set(operation, (byOperation.get(operation) ?? 0) + 1);
      console.log(`${name.padEnd(40)} ${apiCalls.length} calls: ${[...byOperation].map(([operation, n]) => `${operation} ${n}`).join(', ')}`);
    };
    await call('PUT', '/v1/apps/bench-locked', {
      name: 'bench-locked',
      deployRoot: '/srv/bench',
      environments: [
        { name: 'staging', targets: { tags: { Bench: 'no-such-host' } } },
        { name: 'production', targets: { tags: { Bench: 'no-such-host' } } },
      ],
    });
    const lockedTicket = await call('POST', '/v1/artifacts', { app: 'bench-locked', sha256, size: bytes.length });
    await fetch(lockedTicket.uploadUrl, { method: 'PUT', headers: lockedTicket.uploadHeaders, body: bytes });
    // The first open hashes the artifact; the counted one finds it verified and its lock free again.
    const first = await call('POST', '/v1/releases', { app: 'bench-locked', version: 'first', artifact: { key: lockedTicket.key, sha256 } });
    for (let tries = 0; tries < 300; tries++) {
      const { status } = await call('GET', `/v1/releases/${first.id}`);
      if (['succeeded', 'failed', 'cancelled'].includes(status)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    let id = '';
    await count('POST /v1/releases (queue, Idempotency-Key)', async () => {
      const response = await fetch(`${server.url}/v1/releases`, {
        method: 'POST',
        headers: { ...headers, 'idempotency-key': randomUUID() },
        body: JSON.stringify({ app: 'bench', version: 'counted', artifact }),
      });
      id = ((await response.json()) as { id: string }).id;
    });
    await count('POST /v1/releases (2 locked environments)', () => fetch(`${server.url}/v1/releases`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ app: 'bench-locked', version: 'counted', artifact: { key: lockedTicket.key, sha256 } }),
    }));
    await count('GET /v1/releases/{id}', () => call('GET', `/v1/releases/${id}`));
  }

  if (MODE === 'open') {
    const rss = () => `${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`;
    // For the floors: the items of a real open, one more with a key, once it ended.
    const keyed = await fetch(`${server.url}/v1/releases`, {
      method: 'POST',
      headers: { ...headers, 'idempotency-key': randomUUID() },
      body: JSON.stringify({ app: 'bench', version: 'floor', artifact }),
    });
    if (keyed.status !== 202) throw new Error(`the floor's open answered ${keyed.status}: ${await keyed.text()}`);
    const { id: keyedId } = (await keyed.json()) as { id: string };
    await allEnded();
    const floorItems = await openItems(keyedId, sha256);
    const clients = floorClients(floorItems.token, artifact.key);

    const idleBefore = process.memoryUsage().rss;
    console.log(`open loop; rss before ${rss()}`);
    const { opened, statuses } = await openLoop('POST /v1/releases', { rate: RATE, seconds: SECONDS, kind: 'open', artifact });
    console.log(`rss after the opens ${rss()}`);
    let created = 0;
    let cursor: string | undefined;
    do {
      const page = await call('GET', `/v1/releases?app=bench&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      created += (page.items as { version: string }[]).filter((item) => item.version.startsWith('2.0.')).length;
      cursor = page.nextCursor;
    } while (cursor);
    console.log(`releases created by the open loop: ${created}; answered 202: ${statuses['202'] ?? 0} (equal when nothing lied)`);
    await openLoop('GET /v1/releases/{id}', { rate: READ_RATE, seconds: SECONDS, kind: 'read', ids: opened });
    console.log('(the reads above ran while the opened releases went through their workflows; the same reads once they all ended:)');
    await allEnded();
    await openLoop('GET /v1/releases/{id}', { rate: READ_RATE, seconds: SECONDS, kind: 'read', ids: opened });
    // The floors under those reads, at once (the same heap, the same table): the client's and HTTP's
    // part, the same client reading /healthz (no auth, no store call, a body of a few bytes), and the
    // store's, the read's calls bare.
    await openLoop('floor: GET /healthz', { rate: READ_RATE, seconds: SECONDS, kind: 'health' });
    await readFloor(clients, floorItems.token, opened);
    // V8 gives its heap back once the allocations stop for a while (its memory reducer): wait for it,
    // from the end of the reads and their floors.
    const idle = process.memoryUsage().rss;
    const quiet = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 5000));
    console.log(`rss 5 s after the reads and their floors ${rss()}`);
    while (process.memoryUsage().rss > idleBefore * 1.1 && performance.now() - quiet < 120_000) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    console.log(`rss ${((performance.now() - quiet) / 1000).toFixed(0)} s after them ${rss()} (${(idle / 2 ** 20).toFixed(0)} MiB as they ended; ` +
      `${(idleBefore / 2 ** 20).toFixed(0)} MiB before the opens)`);

    // Last, so that its garbage is not in the memory figures above: the floor under the opens.
    await openFloor(clients, floorItems, artifact.key);
    clients.close();
  }

  const ids: string[] = [];
  if (MODE === 'closed') await measure('POST /v1/releases', OPENS, async (i) => {
    ids.push((await call('POST', '/v1/releases', { app: 'bench', version: `1.0.${i}`, artifact })).id);
  });
  if (MODE === 'closed') {
    await measure('GET /v1/releases/{id}', READS, async (i) => {
      await call('GET', `/v1/releases/${ids[i % ids.length]}`);
    });
    await measure('GET /v1/releases', READS, async () => {
      await call('GET', '/v1/releases?app=bench&limit=50');
    });
    await measure('GET /v1/apps/{app}', READS, async () => {
      await call('GET', '/v1/apps/bench');
    });
  }
  const memory = process.memoryUsage();
  console.log(
    `memory after: rss ${(memory.rss / 2 ** 20).toFixed(0)} MiB, heap used ${(memory.heapUsed / 2 ** 20).toFixed(0)} MiB ` +
    `(this process: the API and the DynamoDB and S3 stand-ins${MODE === 'open' ? ', after the floors' : ', and this client'})`,
  );
} finally {
  await server.close();
  await rm(dataDir, { recursive: true, force: true });
}
