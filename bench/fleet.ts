/**
 * Shipping bytes to a fleet on the embedded default, beside the physical floor and Capistrano, all
 * measured in this run (issue 18). Run on demand: `npm run bench:fleet`; it prints figures and
 * asserts nothing.
 *
 * - SIZE_MB (default 50) of incompressible data to N local hosts (BENCH_HOSTS, default "20,50"), one
 *   batch: a first release, a second release, then, once its prune ended, a rollback (from the API
 *   call to the last host's `current` switched, and to the rollback's end).
 * - The floor: `tar -xzf` of the same artifact into N folders one after the other.
 * - Capistrano 3 (Debian's package) deploying the same size to N local users over a loopback sshd,
 *   when `cap` is installed (`apt-get install capistrano`; `../shared/peers/capistrano/`), tarball mode.
 * - BENCH_TINY (default 500) tiny hosts, rolling 25%, while a client probes the API (`/healthz` and
 *   the release) every 50 ms: the release time, the probes' latency, failed probes, and the RSS.
 *   The probes run in a process of their own, so the RSS and CPU reported are the server's alone.
 *   TINY_WAIT=poll also polls the release every 20 ms from this process to learn its end.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createCallAttribution } from '@slipway/aws';
import { startDevServer } from '@slipway/local';
import { create } from 'tar';
import { benchClient } from './client.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const SIZE_MB = Number(process.env.SIZE_MB ?? 50);
const FLEETS = (process.env.BENCH_HOSTS ?? '20,50').split(',').filter(Boolean).map(Number);
const TINY = Number(process.env.BENCH_TINY ?? 500);
/** How the bench learns the tiny release ended: from the probes alone (default), or `poll`: also reading it every 20 ms. */
const BY_PROBE = process.env.TINY_WAIT !== 'poll';
// Beside the repository in /work/main, but not beside a worktree elsewhere: CAPISTRANO_DIR says where.
const CAPISTRANO =
  [process.env.CAPISTRANO_DIR, join(dirname(fileURLToPath(import.meta.url)), '../../shared/peers/capistrano'), '/work/shared/peers/capistrano']
    .filter((dir): dir is string => Boolean(dir))
    .find((dir) => existsSync(join(dir, 'run.sh'))) ?? '';

// BENCH_CALLS=1 counts the AWS calls each function makes (attribution costs time: figures are then slower).
const COUNT_CALLS = process.env.BENCH_CALLS === '1';

const dataDir = await mkdtemp(join(tmpdir(), 'slipway-bench-fleet-'));
const calls = new Map<string, number>();
const recorder = COUNT_CALLS
  ? createCallAttribution(({ fn, operation }) => calls.set(`${fn} ${operation}`, (calls.get(`${fn} ${operation}`) ?? 0) + 1))
  : undefined;
const server = await startDevServer({ dataDir, port: 0, logLevel: 'warn', demo: false, ...(recorder ? { recorder } : {}) });
const { call, waitForEnd } = benchClient(server, 20);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);

/**
 * SIZE_MB one-MiB files of random bytes and an index.html, packed as the CLI packs: a portable .tar.gz.
 * Its bytes are read again at each push, not held: the server runs in this process, and two 50 MB
 * buffers kept for the whole run made its RSS look 100 MB larger.
 */
async function buildArtifact(name: string, sizeMb: number): Promise<{ file: string; size: number; sha256: string }> {
  const source = join(dataDir, 'src', name);
  await mkdir(join(source, 'data'), { recursive: true });
  await writeFile(join(source, 'index.html'), `<h1>${name}</h1>\n`);
  for (let i = 0; i < sizeMb; i++) await writeFile(join(source, 'data', `part-${String(i).padStart(4, '0')}.bin`), randomBytes(1024 * 1024));
  const file = `${source}.tar.gz`;
  await create({ gzip: true, file, cwd: source, portable: true }, ['.']);
  const bytes = await readFile(file);
  return { file, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

async function push(app: string, artifact: { file: string; size: number; sha256: string }) {
  const ticket = await call('POST', '/v1/artifacts', { app, sha256: artifact.sha256, size: artifact.size });
  if (ticket.uploadUrl) {
    const response = await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.uploadHeaders, body: await readFile(artifact.file) });
    if (!response.ok) throw new Error(`upload: ${response.status}`);
  }
  return { key: ticket.key as string, sha256: artifact.sha256 };
}

async function defineApp(app: string, hosts: string[], batchSize: number | string) {
  for (const host of hosts) await mkdir(join(dataDir, 'fleet', host), { recursive: true });
  await call('PUT', `/v1/apps/${app}`, {
    name: app,
    deployRoot: `/srv/${app}`,
    keepReleases: 3,
    hooks: { healthCheck: 'test -f "$RELEASE_DIR/index.html"' },
    environments: [{ name: 'production', targets: { hosts }, strategy: { type: 'rolling', batchSize } }],
  });
}

/**
 * Each timed step starts with the disk's dirty pages written, as Capistrano's harness (`sync` before
 * each `cap` run) and the floor do: the writeback of what came before (the artifacts just built, the
 * previous release) otherwise lands in the middle of whichever step runs 30 s later.
 */
function settledDisk() {
  execFileSync('sync');
}

async function timedRelease(app: string, version: string, artifact: { key: string; sha256: string }) {
  settledDisk();
  const started = performance.now();
  const opened = await call('POST', '/v1/releases', { app, version, artifact });
  const release = await waitForEnd(opened.id);
  if (release.status !== 'succeeded') throw new Error(`${app} ${version}: ${release.status} ${release.reason ?? ''}`);
  return { id: opened.id as string, ms: performance.now() - started, release };
}

/**
 * The rollback from the API call to the last host switched, and to the rollback's end. When each
 * host switched is its `current` link's own mtime (made by `ln -s` just before the `mv -T`), read
 * once the rollback ended: polling 50 links every few ms from this process, the server's, competed
 * with the fleet for the event loop and libuv's threads and slowed what it measured.
 */
async function timedRollback(app: string, hosts: string[], target: string) {
  settledDisk();
  const startedAt = Date.now();
  const started = performance.now();
  const rollback = await call('POST', `/v1/apps/${app}/environments/production/rollback`, {});
  const ended = await waitForEnd(rollback.id);
  const endedMs = performance.now() - started;
  const switchedAt = await Promise.all(
    hosts.map(async (host) => {
      const link = join(dataDir, 'fleet', host, 'current');
      if ((await readlink(link)) !== `releases/${target}`) throw new Error(`${host} is not on ${target} after the rollback`);
      return (await lstat(link)).mtimeMs;
    }),
  );
  return { switchedMs: Math.max(...switchedAt) - startedAt, endedMs, release: ended };
}

/** Until the execution stops (a release's record ends before its execution's last state, the prune). */
async function executionEnded(executionId: string) {
  const deadline = Date.now() + 120_000;
  while ((await server.executor.describe(executionId))?.status === 'RUNNING') {
    if (Date.now() > deadline) throw new Error(`execution ${executionId} still running after 120 s`);
    await sleep(20);
  }
}

/** `tar -xzf` of the artifact into N folders one after the other: what one core does alone. */
function sequentialUnpack(artifact: string, n: number): number {
  const base = join(dataDir, 'floor');
  spawnSync('rm', ['-rf', base]);
  for (let i = 0; i < n; i++) execFileSync('mkdir', ['-p', join(base, `h${i}`)]);
  execFileSync('sync');
  const started = performance.now();
  for (let i = 0; i < n; i++) execFileSync('tar', ['-xzf', artifact, '-C', join(base, `h${i}`)]);
  const ms = performance.now() - started;
  spawnSync('rm', ['-rf', base]);
  return ms;
}

/** Capistrano's harness (`run.sh N SIZE_MB`, tarball mode), when `cap` is installed; its summary lines. */
function capistrano(n: number): string | undefined {
  if (spawnSync('sh', ['-c', 'command -v cap'], { encoding: 'utf8' }).status !== 0) return undefined;
  if (!CAPISTRANO) return undefined;
  const run = spawnSync('bash', [join(CAPISTRANO, 'run.sh'), String(n), String(SIZE_MB)], {
    encoding: 'utf8',
    env: { ...process.env, CAPBENCH_SCMS: 'tarball' },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.status !== 0) return `capistrano run failed: ${(run.stderr || run.stdout).trim().split('\n').slice(-3).join(' | ')}`;
  return run.stdout
    .split('\n')
    .filter((line) => /^capistrano N=|^baseline N=/.test(line))
    .join('\n');
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const ENDED = ['succeeded', 'failed', 'rejected', 'cancelled'];

/**
 * The probing client, in a Node process of its own: the server's RSS and CPU are then this
 * process's alone, and a probe's latency is what a client on the same machine sees. It probes
 * `/healthz` until it is told a release id on stdin, then that release; prints `ended` once a probe
 * finds the release ended, and its latencies as one JSON line once told `stop`.
 */
const PROBE_CLIENT = `
const ended = new Set(JSON.parse(process.env.PROBE_ENDED));
const headers = { authorization: 'Bearer ' + process.env.PROBE_TOKEN };
let id, stopped = false, told = false, pending = '', failures = 0;
const latencies = [];
process.stdin.setEncoding('utf8').on('data', (chunk) => {
  const lines = (pending + chunk).split('\\n');
  pending = lines.pop();
  for (const line of lines) if (line === 'stop') stopped = true; else if (line) id = line;
});
while (!stopped) {
  const started = performance.now();
  try {
    const response = await fetch(process.env.PROBE_URL + (id ? '/v1/releases/' + id : '/healthz'), { headers });
    const body = await response.text();
    if (!response.ok) failures += 1;
    else if (id && !told && ended.has(JSON.parse(body).status)) { told = true; process.stdout.write('ended\\n'); }
  } catch {
    failures += 1;
  }
  latencies.push(performance.now() - started);
  await new Promise((resolve) => setTimeout(resolve, 50));
}
process.stdout.write(JSON.stringify({ latencies, failures }) + '\\n', () => process.exit(0));
`;

/**
 * Probes the API every 50 ms from a process of its own until stopped (PROBE_CLIENT); counts a probe
 * failed when it errors or answers non-2xx. `ended` resolves once a probe of the release finds it
 * ended: by default the bench learns the end from these probes alone; TINY_WAIT=poll also polls the
 * release every 20 ms from this process (waitForEnd), a second client reading the 500-host release
 * 50 times a second. Meanwhile this process's RSS, the server's, is sampled every 50 ms.
 */
function probeApi() {
  const client = spawn(process.execPath, ['--input-type=module', '-e', PROBE_CLIENT], {
    env: { ...process.env, PROBE_URL: server.url, PROBE_TOKEN: server.adminToken, PROBE_ENDED: JSON.stringify(ENDED) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let seenEnd!: () => void;
  let lost!: (error: Error) => void;
  const ended = new Promise<void>((resolve, reject) => {
    seenEnd = resolve;
    lost = reject;
  });
  let answered!: (summary: { latencies: number[]; failures: number }) => void;
  const summary = new Promise<{ latencies: number[]; failures: number }>((resolve, reject) => {
    answered = resolve;
    // A client that dies ends both waits: the bench then fails instead of hanging.
    // 'close', not 'exit': its last line may still be in the pipe when it exits.
    client.once('close', (code) => {
      const error = new Error(`the probing client exited (${code}) before it answered`);
      lost(error);
      reject(error);
    });
  });
  // Whoever waits on one of them only; the other's rejection is not an unhandled one.
  ended.catch(() => {});
  summary.catch(() => {});
  let pending = '';
  client.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      if (line === 'ended') seenEnd();
      else if (line.startsWith('{')) answered(JSON.parse(line));
    }
  });
  // At the peak, how much of it is the main thread's V8 heap (the stand-ins' threads have their own).
  let peak = process.memoryUsage();
  const sampler = setInterval(() => {
    const now = process.memoryUsage();
    if (now.rss > peak.rss) peak = now;
  }, 50);
  const stop = async () => {
    client.stdin!.write('stop\n');
    const { latencies, failures } = await summary.finally(() => clearInterval(sampler));
    latencies.sort((a, b) => a - b);
    const max = latencies.at(-1) ?? Number.NaN;
    return { probes: latencies.length, failures, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max, peak };
  };
  /** For a bench that stops early: no client and no sampler left to keep this process alive. */
  const dispose = () => {
    clearInterval(sampler);
    if (client.exitCode === null) client.kill();
  };
  return { ended, follow: (releaseId: string) => client.stdin!.write(`${releaseId}\n`), stop, dispose };
}

/** Each host command's span from the release's events (`distribute`, `switch` per batch), from the open. */
function phases(events: { at: string; type: string; data?: { batchIndex?: number } }[]): string {
  const opened = Date.parse(events[0]?.at ?? '');
  const started = new Map<string, number>();
  const spans: string[] = [];
  for (const event of events) {
    const [kind, outcome] = event.type.split('.');
    if (!kind || !outcome || !['distribute', 'switch', 'revert', 'prune'].includes(kind)) continue;
    const name = event.data?.batchIndex === undefined ? kind : `${kind}[${event.data.batchIndex}]`;
    const at = Date.parse(event.at);
    if (outcome === 'started') started.set(name, at);
    else if (started.has(name)) spans.push(`${name} ${seconds(at - started.get(name)!)} (from +${seconds(started.get(name)! - opened)})`);
  }
  const last = Date.parse(events.at(-1)?.at ?? '');
  return `${spans.join(', ')}; last event at +${seconds(last - opened)}`;
}

/** Each event's type and when it came, from the first. */
function eventTimes(events: { at: string; type: string }[]): string {
  const first = Date.parse(events[0]?.at ?? '');
  return events.map((event) => `${event.type} +${Date.parse(event.at) - first} ms`).join(', ');
}

/** Per step, the median and 90th percentile of one host's script from its start to its end, as the fleet saw them. */
function scriptDurations(hosts: { steps?: Record<string, { startedAt: string; endedAt: string }> }[]): string {
  const byStep = new Map<string, number[]>();
  for (const host of hosts) {
    for (const [step, output] of Object.entries(host.steps ?? {})) {
      const list = byStep.get(step) ?? [];
      list.push(Date.parse(output.endedAt) - Date.parse(output.startedAt));
      byStep.set(step, list);
    }
  }
  return [...byStep]
    .map(([step, list]) => {
      list.sort((a, b) => a - b);
      return `${step} ×${list.length}: p50 ${percentile(list, 50).toFixed(0)} ms, p90 ${percentile(list, 90).toFixed(0)} ms`;
    })
    .join('; ');
}

const lines: string[] = [];
/** Stops the probing client if the bench stops before it does. */
let disposeProbes = () => {};
const report = (line: string) => {
  lines.push(line);
  console.log(line);
};

try {
  report(`Slipway fleet bench: Node ${process.version}, ${SIZE_MB} MB artifacts, hosts ${FLEETS.join(' and ')}, ${TINY} tiny hosts`);
  const artifacts = async () => {
    const first = await buildArtifact('r1', SIZE_MB);
    const second = await buildArtifact('r2', SIZE_MB);
    report(`artifact: ${(first.size / 1024 / 1024).toFixed(1)} MiB .tar.gz`);
    return { first, second };
  };
  const { first, second } = FLEETS.length > 0 ? await artifacts() : { first: undefined!, second: undefined! };

  for (const n of FLEETS) {
    const app = `ship${n}`;
    const hosts = Array.from({ length: n }, (_, i) => `${app}-${i + 1}`);
    await defineApp(app, hosts, n);
    const v1 = await timedRelease(app, '1.0.0', await push(app, first));
    const v2 = await timedRelease(app, '2.0.0', await push(app, second));
    // As a rollback comes in life: after the release's execution and its prune of older releases ended.
    await executionEnded(`release:${v2.id}`);
    await server.settle(120_000);
    const back = await timedRollback(app, hosts, v1.id);
    const floor = sequentialUnpack(first.file, n);
    report(`${n} hosts: first release ${seconds(v1.ms)} (${(v1.ms / floor).toFixed(2)}× the floor), second ${seconds(v2.ms)}, ` +
      `rollback (once the fleet settled): last host switched ${seconds(back.switchedMs)} after the call, rollback ended ${seconds(back.endedMs)}`);
    report(`${n} hosts, first release, phases: ${phases(v1.release.events ?? [])}`);
    report(`${n} hosts, first release, its events: ${eventTimes((v1.release.events ?? []).filter((event: { type: string }) => !/^(distribute|switch)\.(started|succeeded)$/.test(event.type)))}`);
    report(`${n} hosts, rollback, phases: ${phases(back.release.events ?? [])}; its events: ${eventTimes(back.release.events ?? [])}`);
    report(`${n} hosts, first release, one host script alone: ${scriptDurations((v1.release.environments ?? []).flatMap((env: { hosts?: unknown[] }) => env.hosts ?? []))}`);
    report(`${n} hosts: floor, sequential tar -xzf into ${n} folders: ${seconds(floor)}`);
    const peer = capistrano(n);
    report(peer ? `${n} hosts: Capistrano (same machine, this run):\n${peer}` : `${n} hosts: Capistrano not installed (apt-get install capistrano), no peer figure`);
  }

  if (TINY > 0) {
    const app = 'tiny';
    const hosts = Array.from({ length: TINY }, (_, i) => `tiny-${i + 1}`);
    await defineApp(app, hosts, '25%');
    const artifact = await buildArtifact('tiny', 0);
    const ref = await push(app, artifact);
    calls.clear();
    const rssBefore = process.memoryUsage().rss;
    // The server runs in this process: its event loop is this one, and a stall here is a stall of the API.
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const { ended, follow, stop, dispose } = probeApi();
    disposeProbes = dispose;
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const opened = await call('POST', '/v1/releases', { app, version: '1.0.0', artifact: ref });
    follow(opened.id);
    if (BY_PROBE) await ended;
    const release = BY_PROBE ? await call('GET', `/v1/releases/${opened.id}`) : await waitForEnd(opened.id);
    const ms = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    const probes = await stop();
    loopDelay.disable();
    report(`${TINY} tiny hosts, rolling 25% (end seen by ${BY_PROBE ? 'the probes' : 'a 20 ms poll besides the probes'}): ${release.status} in ${seconds(ms)}; API probes every 50 ms meanwhile: ${probes.probes} probes, ` +
      `${probes.failures} failed, p50 ${probes.p50.toFixed(1)} ms, p99 ${probes.p99.toFixed(1)} ms, max ${probes.max.toFixed(0)} ms; ` +
      `peak RSS ${mb(probes.peak.rss)} MB (the server's; the probes run in a process of their own; no artifact held; ` +
      `the main thread's heap ${mb(probes.peak.heapTotal)} MB of it, its buffers ${mb(probes.peak.arrayBuffers)} MB; ` +
      `${(rssBefore / 1024 / 1024).toFixed(0)} MB before the release); event loop delay p99 ${(loopDelay.percentile(99) / 1e6).toFixed(0)} ms, ` +
      `max ${(loopDelay.max / 1e6).toFixed(0)} ms; the server's CPU ${seconds((cpu.user + cpu.system) / 1000)}; load average ${loadavg().map((load) => load.toFixed(1)).join(' ')}`);
    report(`${TINY} tiny hosts, phases: ${phases(release.events ?? [])}`);
    // The same read the probes make, once the execution's last state (the prune on the 500 hosts)
    // ended and no command runs: host scripts outlive this process, and a prune still running
    // after it would load the machine for the next bench.
    await executionEnded(`release:${opened.id}`);
    await server.settle(120_000);
    const idleReads: number[] = [];
    let readBytes = 0;
    for (let i = 0; i < 10; i++) {
      const readStarted = performance.now();
      readBytes = JSON.stringify(await call('GET', `/v1/releases/${opened.id}`)).length;
      idleReads.push(performance.now() - readStarted);
    }
    idleReads.sort((a, b) => a - b);
    report(`${TINY} tiny hosts, GET of the ended release after its prune and once the fleet settled: p50 ${percentile(idleReads, 50).toFixed(0)} ms, ` +
      `max ${idleReads.at(-1)!.toFixed(0)} ms, ${(readBytes / 1024).toFixed(0)} KiB of JSON`);
    if (COUNT_CALLS) {
      const counted = [...calls].sort((a, b) => b[1] - a[1]).map(([what, n]) => `${what} ${n}`);
      report(`${TINY} tiny hosts, AWS calls by function and operation during the release (the API's reads included): ${counted.join(', ')}`);
    }
    report(`${TINY} tiny hosts, one host script alone (its own start to end): ${scriptDurations((release.environments ?? []).flatMap((env: { hosts?: unknown[] }) => env.hosts ?? []))}`);
  }
} finally {
  disposeProbes();
  await server.settle(120_000);
  await server.close();
  // A prune the release started may still be writing in a host's run folder for a moment.
  await rm(dataDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
}
