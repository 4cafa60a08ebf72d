import {
  type AppConfig,
  type FieldProblem,
  type Fleet,
  type HostCommand,
  type ResolvedTargets,
  sshTargetProblems,
  type Targets,
} from '@slipway/core';
import { dirname, join } from 'node:path';
import { createLocalFleet, type LocalFleetOptions } from './fleet.ts';
import { createSshFleet, type SshFleet, type SshFleetOptions } from './ssh-fleet.ts';

/** What the server's configuration says of the SSH fleet; the rest comes from the folder fleet's options. */
export type SshSettings = Omit<SshFleetOptions, 'commandsDir' | 'onCommandFinished' | 'logger'>;

/** Why a local server without an SSH key refuses SSH targets, and how to give it one. */
export const NO_SSH_KEY =
  'needs an SSH key: start the server with SLIPWAY_SSH_IDENTITY (a private key file) and SLIPWAY_SSH_KNOWN_HOSTS (an OpenSSH known_hosts file with each host\'s key)';

/**
 * The local runtime's fleet: `{"ssh": ...}` targets go to the SSH fleet, every other target to the
 * folder fleet. A command goes to one environment's hosts, so to one of them: SSH host ids are
 * `user@host:port`, which no folder host id can be (they have no "@").
 */
export async function createRoutedFleet(sshSettings: SshSettings | undefined, folderOptions: LocalFleetOptions) {
  const folders = createLocalFleet(folderOptions);
  // Its journal sits beside the folder fleet's (`<dataDir>/ssh-commands`), which never sees it.
  const ssh: SshFleet | undefined = sshSettings
    ? await createSshFleet({
        ...sshSettings,
        commandsDir: join(dirname(folderOptions.commandsDir), 'ssh-commands'),
        logger: folderOptions.logger,
        onCommandFinished: folderOptions.onCommandFinished,
      })
    : undefined;
  const isSshCommand = (command: HostCommand) => command.hosts.some((host) => host.includes('@'));
  const fleet: Fleet = {
    async resolveTargets(targets: Targets): Promise<ResolvedTargets> {
      if (!('ssh' in targets)) return folders.resolveTargets(targets);
      if (ssh) return ssh.resolveTargets(targets);
      return { hosts: [], unreachable: targets.ssh.hosts.map((host) => ({ host, reason: `this server ${NO_SSH_KEY}` })) };
    },
    async send(command) {
      if (!isSshCommand(command)) return folders.send(command);
      if (!ssh) throw new Error(`an SSH command with no SSH fleet: this server ${NO_SSH_KEY}`);
      return ssh.send(command);
    },
    async results(commandId) {
      if (ssh && (await ssh.owns(commandId))) return ssh.results(commandId);
      return folders.results(commandId);
    },
    // Live output: SSH host ids have an "@", folder host ids never do.
    async readOutput(commandId, host, from) {
      if (ssh && host.includes('@')) return ssh.readOutput(commandId, host, from);
      return folders.readOutput(commandId, host, from);
    },
  };
  return {
    ...fleet,
    hostDir: folders.hostDir,
    /** Refuses at apply time SSH targets this server cannot reach (no key given). */
    refuseTargets: (config: AppConfig): FieldProblem[] => (ssh ? [] : sshTargetProblems(config, NO_SSH_KEY)),
    async reconcile() {
      await Promise.all([folders.reconcile(), ssh?.reconcile()]);
    },
    async settle(timeoutMs: number) {
      await Promise.all([folders.settle(timeoutMs), ssh?.settle(timeoutMs)]);
    },
    close() {
      folders.close();
      ssh?.close();
    },
    async prune(olderThan: Date) {
      const [local, remote] = await Promise.all([folders.prune(olderThan), ssh?.prune(olderThan) ?? []]);
      return [...local, ...remote];
    },
  };
}
