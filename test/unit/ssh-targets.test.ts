import { execFile } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SSH_TARGETS_ON_AWS } from '@slipway/aws';
import {
  AppConfig,
  ConfigurationError,
  createLogger,
  parse,
  parseSshHost,
  renderHostScript,
  sshTargetProblems,
  ValidationError,
} from '@slipway/core';
import { createSshFleet, hostKeyCheck, knownHostsName, parseKnownHosts, readLocalEnvironment } from '@slipway/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { temporaryDirectory } from '../support/stand-ins.ts';

const run = promisify(execFile);
let work: string;
beforeAll(async () => {
  work = await temporaryDirectory('slipway-ssh-unit-');
});
afterAll(async () => rm(work, { recursive: true, force: true }));

const config = (hosts: unknown[], deployRoot = '~/shop') => ({
  name: 'shop',
  deployRoot,
  environments: [{ name: 'production', targets: { ssh: { hosts } } }],
});

function problemsOf(input: unknown) {
  try {
    parse(AppConfig, input, 'app config');
    return [];
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    return error.details;
  }
}

describe('SSH targets at the config edge', () => {
  it('takes user@host, user@host:port, IP addresses and ~/ deploy roots', () => {
    expect(problemsOf(config(['deploy@web-1.example.com', 'deploy@10.0.0.5:2222', 'ops_1@[fe80::1]:22', '_x.y-z@h']))).toEqual([]);
    expect(parseSshHost('deploy@10.0.0.5:2222')).toEqual({ host: { user: 'deploy', host: '10.0.0.5', port: 2222 } });
    expect(parseSshHost('deploy@web-1')).toEqual({ host: { user: 'deploy', host: 'web-1', port: 22 } });
    expect(problemsOf(config(['deploy@web-1'], '/srv/shop'))).toEqual([]);
  });

  it.each([
    ['deploy@web-1;rm -rf /', 'host'],
    ['deploy@$(reboot)', 'host'],
    ['deploy@`id`', 'host'],
    ['deploy@web 1', 'host'],
    ['deploy@web-1\nrm -rf /', 'host'],
    ['de ploy@web-1', 'user'],
    ['$(id)@web-1', 'user'],
    ['-oProxyCommand=x@web-1', 'user'],
    ['deploy@-oProxyCommand=x', 'host'],
    ['web-1', 'user@host'],
    ['deploy@web-1:0', 'port'],
    ['deploy@web-1:65536', 'port'],
    ['deploy@web-1:22a', 'port'],
    ['deploy@web-1:022', 'port'],
  ])('refuses %j, naming the field and how to write it', (hostile, part) => {
    const problems = problemsOf(config(['deploy@ok', hostile]));
    expect(problems).toHaveLength(1);
    expect(problems[0]!.field).toBe('environments[0].targets.ssh.hosts[1]');
    expect(problems[0]!.message).toContain(part);
    expect(problems[0]!.message).toContain('user@host:port');
  });

  it('refuses the same host twice, also when one names port 22 and the other leaves it out', () => {
    expect(problemsOf(config(['deploy@web-1', 'deploy@web-1:22']))).toEqual([
      { field: 'environments[0].targets.ssh.hosts', message: 'must not name a host twice (user@host is user@host:22)' },
    ]);
  });

  it.each(['~', '~/', '~deploy/shop', '~/../etc', '~/a//b', 'shop'])('refuses the deploy root %j', (root) => {
    expect(problemsOf(config(['deploy@web-1'], root)).map((p) => p.field)).toEqual(['deployRoot']);
  });

  it('names each environment with SSH targets for a runtime that cannot reach them', () => {
    const app = parse(AppConfig, {
      name: 'shop',
      deployRoot: '/srv/shop',
      environments: [
        { name: 'staging', targets: { hosts: ['i-1'] } },
        { name: 'production', targets: { ssh: { hosts: ['deploy@web-1'] } } },
      ],
    }, 'app config');
    expect(sshTargetProblems(app, SSH_TARGETS_ON_AWS)).toEqual([{ field: 'environments[1].targets.ssh', message: SSH_TARGETS_ON_AWS }]);
    expect(SSH_TARGETS_ON_AWS).toMatch(/not supported on AWS/);
  });
});

describe('~/ deploy roots on a host', () => {
  it('puts the release below the running user\'s home', async () => {
    const home = join(work, 'home');
    await mkdir(home);
    // HOME stands in for the user database only when it has no home for the user; as root here it
    // has one (/root), so a fake getent on PATH says the home is `home`.
    const bin = join(work, 'bin');
    await mkdir(bin);
    await writeFile(join(bin, 'getent'), `#!/bin/sh\necho "user:x:0:0::${home}:/bin/bash"\n`, { mode: 0o755 });
    const script = renderHostScript({ kind: 'prune', deployRoot: '~/apps/shop', releaseId: 'r1', keepReleases: 2, protect: [] });
    await run('bash', ['-c', script], { env: { PATH: `${bin}:/usr/bin:/bin`, HOME: '/nonexistent' } });
    expect((await stat(join(home, 'apps', 'shop', 'releases'))).isDirectory()).toBe(true);
  });
});

describe('known_hosts', () => {
  const key = (seed: string) => {
    const type = Buffer.from('ssh-ed25519');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(type.length);
    return Buffer.concat([length, type, Buffer.from(seed.padEnd(36, '.'))]);
  };
  const pinned = key('pinned');
  const other = key('other');
  const target = { user: 'deploy', host: 'web-1.example.com', port: 2222 };
  const check = (text: string, on = target) => hostKeyCheck(parseKnownHosts(text), on, 'deploy@web-1.example.com:2222', 'known_hosts');

  it('names hosts on other ports as [host]:port', () => {
    expect(knownHostsName(target)).toBe('[web-1.example.com]:2222');
    expect(knownHostsName({ host: '[::1]', port: 22 })).toBe('::1');
  });

  it('accepts the pinned key under a plain, hashed or wildcard name', () => {
    const salt = randomBytes(20);
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[web-1.example.com]:2222').digest('base64')}`;
    for (const names of ['[web-1.example.com]:2222', `web-0,[web-1.example.com]:2222`, hashed, '[*.example.com]:2222']) {
      const line = `# a comment\n${names} ssh-ed25519 ${pinned.toString('base64')}\n`;
      expect(check(line).refuse(pinned), names).toBeUndefined();
      expect(check(line).keyTypes).toEqual(['ssh-ed25519']);
    }
  });

  it('refuses a changed key, an unknown host, a negated pattern and a revoked key, saying which', () => {
    const line = `[web-1.example.com]:2222 ssh-ed25519 ${pinned.toString('base64')}\n`;
    expect(check(line).refuse(other)).toMatch(/has changed: it offered ssh-ed25519 SHA256:/);
    // Port 22 is another name: the pin for :2222 does not count for it.
    expect(check(line, { ...target, port: 22 }).refuse(pinned)).toMatch(/is unknown: known_hosts has no key for "web-1.example.com"/);
    expect(check(`[*.example.com]:2222,![web-1.example.com]:2222 ssh-ed25519 ${pinned.toString('base64')}\n`).refuse(pinned)).toMatch(/unknown/);
    expect(check(`${line}@revoked * ssh-ed25519 ${pinned.toString('base64')}\n`).refuse(pinned)).toMatch(/@revoked/);
    expect(check(`@cert-authority * ssh-ed25519 ${pinned.toString('base64')}\n`).refuse(pinned)).toMatch(/unknown/);
  });
});

describe('SSH settings of the local server', () => {
  it('wants the key and the known_hosts file together', () => {
    expect(() => readLocalEnvironment({ SLIPWAY_SSH_IDENTITY: '/k' })).toThrow(/SLIPWAY_SSH_KNOWN_HOSTS must be set with SLIPWAY_SSH_IDENTITY/);
    expect(() => readLocalEnvironment({ SLIPWAY_SSH_KNOWN_HOSTS: '/k' })).toThrow(/SLIPWAY_SSH_IDENTITY must be set with SLIPWAY_SSH_KNOWN_HOSTS/);
    expect(readLocalEnvironment({ SLIPWAY_SSH_IDENTITY: '/k', SLIPWAY_SSH_KNOWN_HOSTS: '/h' })).toMatchObject({
      SLIPWAY_SSH_IDENTITY: '/k',
      SLIPWAY_SSH_KNOWN_HOSTS: '/h',
    });
  });

  it('stops the start on a missing, locked or unreadable key or known_hosts file, naming the variable', async () => {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'plain')]);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'a passphrase', '-f', join(work, 'locked')]);
    await writeFile(join(work, 'known_hosts'), '');
    const start = (identityFile: string, knownHostsFile: string) =>
      createSshFleet({
        identityFile,
        knownHostsFile,
        commandsDir: join(work, 'journal'),
        logger: createLogger({ service: 'test', write: () => {} }),
        onCommandFinished: async () => {},
      });
    await expect(start(join(work, 'missing'), join(work, 'known_hosts'))).rejects.toThrow(/SLIPWAY_SSH_IDENTITY names .*missing, which cannot be read/);
    await expect(start(join(work, 'locked'), join(work, 'known_hosts'))).rejects.toThrow(ConfigurationError);
    await expect(start(join(work, 'locked'), join(work, 'known_hosts'))).rejects.toThrow(/without a passphrase/);
    await expect(start(join(work, 'plain'), join(work, 'nope'))).rejects.toThrow(/SLIPWAY_SSH_KNOWN_HOSTS names .*nope, which cannot be read/);
    expect(await readFile(join(work, 'plain.pub'), 'utf8')).toMatch(/^ssh-ed25519 /);
    await expect(start(join(work, 'plain'), join(work, 'known_hosts'))).resolves.toBeDefined();
  });
});
