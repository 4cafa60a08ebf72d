/**
 * SSH fleet timings against a real sshd on loopback, one local user per host (as the tests do).
 * Run on demand (root: it makes the users), never inside `npm test`:
 *
 *   npx tsx bench/ssh.ts [--hosts 20,50] [--size-mb 50] [--transport-only] [--no-cap]
 *
 * 1. Transport, on the first host count: connect and run a small script on every host in parallel,
 *    with the ssh2 library (what the fleet uses) and with OpenSSH's client with ControlMaster, cold
 *    (a new connection each) and warm (a connection already open / a live master).
 * 2. For each host count: a release of a `--size-mb` artifact (incompressible) to every host
 *    (all at once), a second release and a rollback, open to end through the API; beside them, in
 *    the same run, `tar -xzf` of the same artifact into as many folders, one after another; and,
 *    if `cap` is installed, Capistrano's figures from the peer harness (CAPBENCH_HARNESS, by default
 *    /work/shared/peers/capistrano/run.sh), run right after.
 * Prints figures, asserts nothing. Every host here shares this machine's cores and page cache.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startDevServer } from '@slipway/local';
import ssh2 from 'ssh2';
import { create } from 'tar';
import { startTestSshd, type TestSshd } from '../test/support/sshd.ts';
import { benchClient } from './client.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const run = promisify(execFile);
const argument = (name: string) => {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
};
const HOST_COUNTS = (argument('--hosts') ?? '20,50').split(',').map(Number);
const SIZE_MB = Number(argument('--size-mb') ?? 50);
const TRANSPORT_ONLY = process.argv.includes('--transport-only');
const ROUNDS = 3;
const SMALL_SCRIPT = 'echo "$(id -un) $(hostname)"; ls -a ~ > /dev/null\n';

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const ms = (value: number) => `${value.toFixed(0)} ms`;
async function timed(task: () => Promise<unknown>) {
  const started = performance.now();
  await task();
  return performance.now() - started;
}

function ssh2Connect(sshd: TestSshd, user: string, key: Buffer): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.once('ready', () => resolve(client)).once('error', reject);
    client.connect({ host: '127.0.0.1', port: sshd.port, username: user, privateKey: key, readyTimeout: 60_000 });
  });
}

function ssh2Run(client: ssh2.Client): Promise<void> {
  return new Promise((resolve, reject) => {
    client.exec('bash -s', (error, channel) => {
      if (error) return reject(error);
      channel.on('data', () => {}).once('close', () => resolve());
      channel.stderr.on('data', () => {});
      channel.end(SMALL_SCRIPT);
    });
  });
}

function opensshRun(sshd: TestSshd, user: string, controlDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', [
      '-i', sshd.identityFile, '-p', String(sshd.port),
      '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`,
      '-o', 'ControlMaster=auto', '-o', `ControlPath=${controlDir}/%r@%h:%p`, '-o', 'ControlPersist=120',
      `${user}@127.0.0.1`, 'bash -s',
    ], { stdio: ['pipe', 'ignore', 'ignore'] });
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ssh exited ${code}`))));
    child.stdin.end(SMALL_SCRIPT);
  });
}

async function transport(sshd: TestSshd) {
  const key = await readFile(sshd.identityFile);
  const cold: number[] = [];
  const warm: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    let clients: ssh2.Client[] = [];
    cold.push(await timed(async () => {
      clients = await Promise.all(sshd.users.map((user) => ssh2Connect(sshd, user, key)));
      await Promise.all(clients.map(ssh2Run));
    }));
    warm.push(await timed(() => Promise.all(clients.map(ssh2Run))));
    for (const client of clients) client.end();
  }
  const opensshCold: number[] = [];
  const opensshWarm: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const controlDir = await mkdtemp(join(tmpdir(), 'slipway-cm-'));
    opensshCold.push(await timed(() => Promise.all(sshd.users.map((user) => opensshRun(sshd, user, controlDir)))));
    opensshWarm.push(await timed(() => Promise.all(sshd.users.map((user) => opensshRun(sshd, user, controlDir)))));
    // Stop the masters (by their control sockets), so the next round is cold again.
    await Promise.all(sshd.users.map((user) =>
      run('ssh', ['-o', `ControlPath=${controlDir}/%r@%h:%p`, '-p', String(sshd.port), '-O', 'exit', `${user}@127.0.0.1`]).catch(() => {})));
    await rm(controlDir, { recursive: true, force: true });
  }
  const hosts = sshd.users.length;
  console.log(`transport, ${hosts} hosts in parallel, connect + a small script (median of ${ROUNDS}):`);
  console.log(`  ssh2 (pure JS)            new connections ${ms(median(cold))}, on open connections ${ms(median(warm))}`);
  console.log(`  OpenSSH + ControlMaster   first call (master starts) ${ms(median(opensshCold))}, through the master ${ms(median(opensshWarm))}`);
}

async function artifact(dir: string) {
  const source = join(dir, 'src');
  await mkdir(source, { recursive: true });
  for (let index = 0; index < SIZE_MB; index++) await writeFile(join(source, `blob-${index}.bin`), randomBytes(1024 * 1024));
  await writeFile(join(source, 'index.html'), 'bench');
  const file = join(dir, 'artifact.tar.gz');
  await create({ gzip: true, file, cwd: source, portable: true }, ['.']);
  return file;
}

async function releaseBench(hostCount: number, artifactFile: string) {
  const users = Array.from({ length: hostCount }, (_, index) => `slipbench${index + 1}`);
  const sshd = await startTestSshd(users);
  const root = `slipway-bench-${process.pid}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'slipway-ssh-bench-'));
  const server = await startDevServer({
    dataDir, port: 0, logLevel: 'warn', demo: false,
    ssh: { identityFile: sshd.identityFile, knownHostsFile: sshd.knownHostsFile },
  });
  const { call, waitForEnd } = benchClient(server, 50);
  try {
    if (hostCount === HOST_COUNTS[0]) await transport(sshd);
    if (TRANSPORT_ONLY) return;
    await call('PUT', '/v1/apps/bench', {
      name: 'bench',
      deployRoot: `~/${root}/app`,
      hooks: { healthCheck: 'test -f "$RELEASE_DIR/index.html"' },
      environments: [{ name: 'production', targets: { ssh: { hosts: sshd.hosts } } }],
    });
    const bytes = await readFile(artifactFile);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const ticket = await call('POST', '/v1/artifacts', { app: 'bench', sha256, size: bytes.length });
    if (!ticket.alreadyUploaded) await fetch(ticket.uploadUrl, { method: 'PUT', headers: ticket.uploadHeaders, body: bytes });
    /** From the step's `.started` event to its `.succeeded` one, in ms. */
    const step = (release: any, kind: string) => {
      const at = (type: string) => Date.parse(release.events.find((event: any) => event.type === type)?.at ?? '');
      return at(`${kind}.succeeded`) - at(`${kind}.started`);
    };
    const distributeMs: number[] = [];
    const open = async (version: string) => {
      const opened = await call('POST', '/v1/releases', { app: 'bench', version, artifact: { key: ticket.key, sha256 } });
      const release = await waitForEnd(opened.id);
      if (release.status !== 'succeeded') throw new Error(`release ${version} ${release.status}: ${release.reason}`);
      distributeMs.push(step(release, 'distribute'));
    };
    const first = await timed(() => open('1'));
    const second = await timed(() => open('2'));
    const rollback = await timed(async () => {
      const opened = await call('POST', '/v1/apps/bench/environments/production/rollback', {});
      const release = await waitForEnd(opened.id);
      if (release.status !== 'succeeded') throw new Error(`rollback ${release.status}: ${release.reason}`);
    });

    const folders = await mkdtemp(join(tmpdir(), 'slipway-tar-bench-'));
    const tar = await timed(async () => {
      for (let index = 0; index < hostCount; index++) {
        const folder = join(folders, `host-${index}`);
        await mkdir(folder);
        await run('tar', ['-xzf', artifactFile, '-C', folder]);
      }
    });
    await rm(folders, { recursive: true, force: true });
    console.log(`${hostCount} SSH hosts, ${SIZE_MB} MB artifact (${(bytes.length / 1024 / 1024).toFixed(1)} MB gzipped), all at once, concurrency 16:`);
    console.log(`  release 1 (download, unpack, switch, health check)  ${ms(first)}, of which distribute ${ms(distributeMs[0]!)}`);
    console.log(`  release 2                                            ${ms(second)}, of which distribute ${ms(distributeMs[1]!)}`);
    console.log(`  rollback (switch back only)                          ${ms(rollback)}`);
    console.log(`  sequential tar -xzf into ${hostCount} folders (same run)       ${ms(tar)}`);
    await capistrano(hostCount);
  } finally {
    await server.close();
    await sshd.stop();
    for (const user of users) await rm(join(await sshd.homeOf(user), root), { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * Capistrano doing the same job on the same machine, through the peer harness (its own sshd and
 * users; `tarball`: each host unpacks the artifact from a store on this machine). Skipped when `cap`
 * is not installed or `--no-cap` is given.
 */
async function capistrano(hostCount: number) {
  const harness = process.env.CAPBENCH_HARNESS ?? '/work/shared/peers/capistrano/run.sh';
  const cap = await run('sh', ['-c', 'command -v cap']).then(() => true, () => false);
  if (!cap || process.argv.includes('--no-cap')) {
    console.log(`  Capistrano: ${cap ? 'skipped (--no-cap)' : 'cap is not installed here (apt-get install capistrano)'}`);
    return;
  }
  const { stdout } = await run('bash', [harness, String(hostCount), String(SIZE_MB)], {
    env: { ...process.env, CAPBENCH_SCMS: 'tarball' },
    maxBuffer: 64 * 1024 * 1024,
  }).catch((error: { stdout?: string; message: string }) => ({ stdout: `${error.stdout ?? ''}\nthe harness failed: ${error.message}` }));
  for (const line of stdout.split('\n').filter((text) => /^(capistrano|baseline) N=|harness failed/.test(text))) console.log(`  ${line}`);
}

const work = await mkdtemp(join(tmpdir(), 'slipway-ssh-artifact-'));
try {
  const [load] = (await readFile('/proc/loadavg', 'utf8')).split(' ');
  console.log(`load average at start: ${load} on ${(await run('nproc')).stdout.trim()} cores (shared machine)`);
  const artifactFile = TRANSPORT_ONLY ? '' : await artifact(work);
  for (const hostCount of HOST_COUNTS) await releaseBench(hostCount, artifactFile);
} finally {
  await rm(work, { recursive: true, force: true });
}
