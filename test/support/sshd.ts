import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { temporaryDirectory } from './stand-ins.ts';

const run = promisify(execFile);

/**
 * A real OpenSSH server on a free loopback port, with its own config, host key and client key, and
 * a few local Unix users as its "hosts" (each `user@127.0.0.1:port`). Key login only, `UsePAM no`.
 * `scripts/ensure-host-tools.sh` (the pretest) installs Debian's openssh-server when it is missing; the
 * users are made here when missing, so the tests run as root.
 */
export interface TestSshd {
  port: number;
  /** `user@127.0.0.1:port` of each user, in order. */
  hosts: string[];
  users: string[];
  /** The client's private key: what SLIPWAY_SSH_IDENTITY names. */
  identityFile: string;
  /** Pins this server's host key for [127.0.0.1]:port: what SLIPWAY_SSH_KNOWN_HOSTS names. */
  knownHostsFile: string;
  /** A known_hosts file pinning another key for the same host: a changed host key. */
  wrongKnownHostsFile: string;
  dir: string;
  uidOf(user: string): Promise<number>;
  /** Kills the sshd processes serving the user's connections: every connection of theirs drops at once. */
  dropConnections(user: string): Promise<number>;
  homeOf(user: string): Promise<string>;
  stop(): Promise<void>;
}

const SSHD = '/usr/sbin/sshd';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Makes the user when missing (two test files may race for it, and useradd may find passwd locked). */
async function ensureUser(user: string) {
  for (let attempt = 1; ; attempt++) {
    if (await run('id', ['-u', user]).then(() => true, () => false)) break;
    try {
      await run('useradd', ['-m', '-s', '/bin/bash', '-c', 'Slipway SSH test host', user]);
      break;
    } catch (error) {
      if (attempt >= 10) throw new Error(`could not create the test user ${user}`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
  // useradd leaves the password locked ("!"); with UsePAM no, sshd refuses a locked account even for
  // key login. "*" is "no password login", not locked.
  await run('usermod', ['-p', '*', user]);
}

async function waitForBanner(port: number, sshd: ChildProcess, log: () => string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (sshd.exitCode !== null) throw new Error(`sshd exited (${sshd.exitCode}): ${log()}`);
    const banner = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString();
        if (text.includes('\n')) socket.destroy();
      });
      socket.on('error', () => resolve(''));
      socket.on('close', () => resolve(text));
    });
    if (banner.startsWith('SSH-2.0-')) return;
    if (Date.now() > deadline) throw new Error(`sshd did not answer on 127.0.0.1:${port}: ${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function startTestSshd(users: string[]): Promise<TestSshd> {
  if ((await run('id', ['-u'])).stdout.trim() !== '0') throw new Error('the SSH tests make local users: run them as root');
  await run(SSHD, ['-V']).catch((error: { stderr?: string }) => {
    if (!String(error.stderr ?? '').includes('OpenSSH')) throw new Error('no /usr/sbin/sshd: run bash scripts/ensure-host-tools.sh');
  });
  const dir = await temporaryDirectory('slipway-sshd-');
  // sshd reads authorized keys as the logging-in user.
  await chmod(dir, 0o755);
  for (const key of ['host_key', 'client_key', 'other_host_key']) {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `slipway-test-${key}`, '-f', join(dir, key)]);
  }
  const clientPublicKey = await readFile(join(dir, 'client_key.pub'), 'utf8');
  await mkdir(join(dir, 'authorized_keys'), { mode: 0o755 });
  for (const user of users) {
    await ensureUser(user);
    await writeFile(join(dir, 'authorized_keys', user), clientPublicKey, { mode: 0o644 });
  }
  const port = await freePort();
  await writeFile(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'AddressFamily inet',
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'UsePAM no',
      'PubkeyAuthentication yes',
      'AuthenticationMethods publickey',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin no',
      `AllowUsers ${users.join(' ')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys', '%u')}`,
      // The key files live under /tmp, which StrictModes would refuse (world-writable).
      'StrictModes no',
      'UseDNS no',
      'PrintMotd no',
      'X11Forwarding no',
      'AllowTcpForwarding no',
      'AllowAgentForwarding no',
      // One sshd stands for every host: let a parallel fan-out in.
      'MaxStartups 500',
      'MaxSessions 100',
      'LogLevel INFO',
      '',
    ].join('\n'),
  );
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  let log = '';
  const sshd = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  sshd.stderr!.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-8000);
  });
  const exited = new Promise<void>((resolve) => sshd.once('exit', () => resolve()));
  try {
    await waitForBanner(port, sshd, () => log);
  } catch (error) {
    sshd.kill();
    throw error;
  }
  const hostKey = (await readFile(join(dir, 'host_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
  const otherKey = (await readFile(join(dir, 'other_host_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
  await writeFile(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostKey}\n`);
  await writeFile(join(dir, 'wrong_known_hosts'), `[127.0.0.1]:${port} ${otherKey}\n`);
  const passwd = async (user: string) => (await run('getent', ['passwd', user])).stdout.trim().split(':');
  return {
    port,
    users,
    hosts: users.map((user) => `${user}@127.0.0.1:${port}`),
    identityFile: join(dir, 'client_key'),
    knownHostsFile: join(dir, 'known_hosts'),
    wrongKnownHostsFile: join(dir, 'wrong_known_hosts'),
    dir,
    uidOf: async (user) => Number((await passwd(user))[2]),
    async dropConnections(user) {
      // Each connection is a privileged child of this sshd ("sshd: <user> [priv]") and its own
      // child that holds the session ("sshd: <user>@notty"): killing both drops that connection.
      // Only processes below the sshd started here, by pid.
      const children = async (parent: number) => {
        const { stdout } = await run('ps', ['-o', 'pid=,args=', '--ppid', String(parent)]).catch(() => ({ stdout: '' }));
        return stdout
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((line) => {
            const [pid, ...args] = line.trim().split(/\s+/);
            return { pid: Number(pid), args: args.join(' ') };
          });
      };
      // A monitor whose session was killed may be gone by the time its own kill comes.
      const kill = (pid: number) => {
        try {
          process.kill(pid, 'SIGKILL');
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
        }
      };
      let dropped = 0;
      for (const monitor of await children(sshd.pid!)) {
        if (!monitor.args.startsWith(`sshd: ${user} `)) continue;
        for (const session of await children(monitor.pid)) kill(session.pid);
        kill(monitor.pid);
        dropped += 1;
      }
      return dropped;
    },
    homeOf: async (user) => (await passwd(user))[5]!,
    async stop() {
      sshd.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
