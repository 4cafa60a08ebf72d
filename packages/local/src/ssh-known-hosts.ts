import { createHash, createHmac } from 'node:crypto';
import { type SshHost, SSH_DEFAULT_PORT } from '@slipway/core';

/**
 * The pinned host keys of the SSH fleet, from an OpenSSH known_hosts file: plain and hashed host
 * names, `[host]:port` for other ports, patterns with `*`, `?` and `!`, and `@revoked` lines.
 * `@cert-authority` lines are not trusted (host certificates are not supported): a host known only
 * through one is unknown here, and says so.
 */
export interface KnownHostLine {
  marker: '' | 'revoked' | 'cert-authority';
  patterns: string;
  keyType: string;
  key: Buffer;
}

export function parseKnownHosts(text: string): KnownHostLine[] {
  const lines: KnownHostLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostLine['marker'] = '';
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') marker = fields.shift()!.slice(1) as KnownHostLine['marker'];
    const [patterns, keyType, key] = fields;
    if (!patterns || !keyType || !key) continue;
    lines.push({ marker, patterns, keyType, key: Buffer.from(key, 'base64') });
  }
  return lines;
}

/** The name known_hosts files use for a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(target: Pick<SshHost, 'host' | 'port'>): string {
  const bare = target.host.replace(/^\[(.*)\]$/, '$1');
  return target.port === SSH_DEFAULT_PORT ? bare : `[${bare}]:${target.port}`;
}

function globMatches(pattern: string, name: string): boolean {
  const regex = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.');
  return new RegExp(`^${regex}$`, 'i').test(name);
}

function patternsMatch(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const pattern of patterns.split(',')) {
    if (pattern.startsWith('!')) {
      if (globMatches(pattern.slice(1), name)) return false;
    } else if (globMatches(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

/** The key's type, as its SSH wire blob names it (`ssh-ed25519`, `ssh-rsa`...). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const length = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + length).toString('latin1');
}

/** OpenSSH's fingerprint: `SHA256:` and the unpadded base64 of the blob's sha256. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The host key algorithms to offer for a key type pinned in known_hosts. */
export function hostKeyAlgorithmsFor(keyType: string): string[] {
  return keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [keyType];
}

export interface HostKeyCheck {
  /** The key types pinned for the host, for the algorithms the client offers (empty: none pinned). */
  keyTypes: string[];
  /** Undefined when the key the host offered is pinned and not revoked; else why it is refused. */
  refuse(offered: Buffer): string | undefined;
}

/** Strict checking, always: an unknown, changed or revoked host key refuses the host, saying which. */
export function hostKeyCheck(lines: KnownHostLine[], target: SshHost, hostId: string, source: string): HostKeyCheck {
  const name = knownHostsName(target);
  const matching = lines.filter((line) => patternsMatch(line.patterns, name));
  const pinned = matching.filter((line) => line.marker === '');
  const revoked = matching.filter((line) => line.marker === 'revoked');
  return {
    keyTypes: [...new Set(pinned.map((line) => line.keyType))],
    refuse(offered) {
      const described = `${keyTypeOf(offered)} ${fingerprintOf(offered)}`;
      if (revoked.some((line) => line.key.equals(offered))) {
        return `the host key of ${hostId} (${described}) is marked @revoked in ${source}; refusing the host`;
      }
      if (pinned.length === 0) {
        return (
          `the host key of ${hostId} is unknown: ${source} has no key for "${name}" (strict host key checking). ` +
          `The host offered ${described}: check that fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then add its line to ${source}`
        );
      }
      if (pinned.some((line) => line.key.equals(offered))) return undefined;
      return (
        `the host key of ${hostId} has changed: it offered ${described}, which is not the key pinned for "${name}" in ${source}. ` +
        'Someone may be in the middle of the connection; if the host was reinstalled, check its new fingerprint and replace its line'
      );
    },
  };
}
