/**
 * What the local fleet itself costs per host run, beside the floor measured in the same run (issue
 * 18). Run on demand: `npm run bench:local-fleet`; it prints figures and asserts nothing.
 *
 * - The fleet: one command to BENCH_HOSTS (default 500) folder hosts, a `scan` script (the cheapest
 *   generated script: it reads `current` and lists releases), from the send to the report.
 * - The floor: the same generated scripts, one per host folder, started by one bash in parallel and
 *   waited for: nothing but the scripts themselves.
 *
 * Each figure is the wall time, the whole machine's busy CPU (from /proc/stat: the server, the
 * launcher and every program the runs start) and this process's own CPU. The machine's figure is
 * the steady one on a shared machine; run it on a quiet one. BENCH_ROUNDS (default 3) alternates them.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, renderHostScript } from '@slipway/core';
import { createLocalFleet } from '@slipway/local';

const HOSTS = Number(process.env.BENCH_HOSTS ?? 500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** Busy and total jiffies of all cores since boot. */
async function machineCpu(): Promise<number> {
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user, nice, system, irq, softirq, steal: not idle, not iowait.
  return [0, 1, 2, 5, 6, 7].reduce((sum, index) => sum + (fields[index] ?? 0), 0) / 100;
}

interface Figure {
  wallS: number;
  machineS: number;
  ownS: number;
}

async function measure(work: () => Promise<void>): Promise<Figure> {
  const machineBefore = await machineCpu();
  const ownBefore = process.cpuUsage();
  const started = performance.now();
  await work();
  const wallS = (performance.now() - started) / 1000;
  const own = process.cpuUsage(ownBefore);
  return { wallS, machineS: (await machineCpu()) - machineBefore, ownS: (own.user + own.system) / 1e6 };
}

async function fleetRound(root: string, round: number): Promise<Figure> {
  const fleetDir = join(root, `fleet-${round}`);
  const hosts = Array.from({ length: HOSTS }, (_, index) => `host-${index}`);
  for (const host of hosts) await mkdir(join(fleetDir, host), { recursive: true });
  let reported!: () => void;
  const finished = new Promise<void>((resolve) => (reported = resolve));
  const fleet = createLocalFleet({
    fleetDir,
    commandsDir: join(root, `commands-${round}`),
    logger: createLogger({ service: 'bench', write: () => {} }),
    onCommandFinished: async () => reported(),
  });
  const figure = await measure(async () => {
    await fleet.send({ commandId: `scan-${round}`, hosts, timeoutSeconds: 60, script: { kind: 'scan', deployRoot: '/unused' } });
    await finished;
  });
  const { invocations } = await fleet.results(`scan-${round}`);
  const failed = invocations.filter((invocation) => invocation.status !== 'success').length;
  if (failed > 0) throw new Error(`${failed} of ${HOSTS} runs did not succeed`);
  fleet.close();
  return figure;
}

async function floorRound(root: string, round: number): Promise<Figure> {
  const dir = join(root, `floor-${round}`);
  for (let index = 0; index < HOSTS; index++) {
    const host = join(dir, `host-${index}`);
    await mkdir(host, { recursive: true });
    await writeFile(join(host, 'script.sh'), renderHostScript({ kind: 'scan', deployRoot: host }));
  }
  return measure(
    () =>
      new Promise<void>((resolve, reject) => {
        const shell = spawn('bash', ['-c', 'for host in "$1"/host-*; do bash "$host/script.sh" > "$host/stdout" 2> "$host/stderr" & done; wait', 'floor', dir], {
          stdio: 'ignore',
        });
        shell.once('error', reject);
        shell.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`the floor's bash exited ${code}`))));
      }),
  );
}

const root = await mkdtemp(join(tmpdir(), 'slipway-bench-local-fleet-'));
const show = (name: string, figures: Figure[]) => {
  const median = (pick: (figure: Figure) => number) => {
    const sorted = figures.map(pick).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)]!;
  };
  const perRun = (seconds: number) => `${((seconds * 1000) / HOSTS).toFixed(2)} ms`;
  console.log(
    `${name}: wall ${median((f) => f.wallS).toFixed(2)} s, machine CPU ${median((f) => f.machineS).toFixed(2)} core-s ` +
    `(${perRun(median((f) => f.machineS))} per host), this process ${median((f) => f.ownS).toFixed(2)} s ` +
    `(medians of ${figures.length}; each: ${figures.map((f) => `${f.wallS.toFixed(2)}/${f.machineS.toFixed(2)}`).join(', ')} s wall/CPU)`,
  );
};
try {
  console.log(`Local fleet bench: Node ${process.version}, ${HOSTS} hosts, ${ROUNDS} rounds, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const fleet: Figure[] = [];
  const floor: Figure[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    floor.push(await floorRound(root, round));
    fleet.push(await fleetRound(root, round));
  }
  show(`the floor: ${HOSTS} scan scripts from one bash`, floor);
  show(`the local fleet: one scan command to ${HOSTS} hosts, send to report`, fleet);
} finally {
  await rm(root, { recursive: true, force: true, maxRetries: 5 });
}
