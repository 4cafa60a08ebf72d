import { ConfigurationError, isWellFormedToken, parse, ValidationError } from '@slipway/core';
import { z } from 'zod';

const RETENTION_DAYS = 'must be a whole number of days, 1 to 3650';

const LocalEnvironment = z.object({
  PORT: z.coerce.number().int().min(0).max(65_535).default(8787),
  SLIPWAY_DATA_DIR: z.string().min(1).default('.slipway'),
  SLIPWAY_ADMIN_TOKEN: z
    .string()
    .refine(isWellFormedToken, 'must be 16 to 256 characters of A-Z, a-z, 0-9, "_" and "-"')
    .optional(),
  SLIPWAY_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  /** Signs webhook deliveries; when unset the dev server makes one and keeps it in the data folder. */
  SLIPWAY_WEBHOOK_SECRET: z.string().min(32, 'must be at least 32 characters of secret').optional(),
  /** Days the local fleet's command folders and the outbox's mails are kept; DEFAULT_OUTPUT_RETENTION_DAYS when unset. */
  SLIPWAY_RETENTION_OUTPUT_DAYS: z
    .string()
    .regex(/^[0-9]{1,4}$/, RETENTION_DAYS)
    .transform(Number)
    .pipe(z.number().min(1, RETENTION_DAYS).max(3650, RETENTION_DAYS))
    .optional(),
  /** The SSH fleet's private key file; with SLIPWAY_SSH_KNOWN_HOSTS, environments may use {"ssh": ...} targets. */
  SLIPWAY_SSH_IDENTITY: z.string().min(1, 'must name a private key file').optional(),
  /** The SSH fleet's pinned host keys (an OpenSSH known_hosts file): host keys are always checked. */
  SLIPWAY_SSH_KNOWN_HOSTS: z.string().min(1, 'must name an OpenSSH known_hosts file').optional(),
}).superRefine((env, ctx) => {
  // Half an SSH setup is a mistake to say at start, not a failure half-way through a release.
  if (env.SLIPWAY_SSH_IDENTITY && !env.SLIPWAY_SSH_KNOWN_HOSTS) {
    ctx.addIssue({ code: 'custom', path: ['SLIPWAY_SSH_KNOWN_HOSTS'], message: 'must be set with SLIPWAY_SSH_IDENTITY: name a known_hosts file holding each SSH host\'s key (ssh-keyscan, checked against the host)' });
  }
  if (env.SLIPWAY_SSH_KNOWN_HOSTS && !env.SLIPWAY_SSH_IDENTITY) {
    ctx.addIssue({ code: 'custom', path: ['SLIPWAY_SSH_IDENTITY'], message: 'must be set with SLIPWAY_SSH_KNOWN_HOSTS: name the private key file Slipway logs in with' });
  }
});
export type LocalEnvironment = z.infer<typeof LocalEnvironment>;

/** How long local command output and outbox mails are kept unless SLIPWAY_RETENTION_OUTPUT_DAYS says otherwise. */
export const DEFAULT_OUTPUT_RETENTION_DAYS = 30;

/** Read once at start; a bad variable stops the dev server and says which one. */
export function readLocalEnvironment(env: NodeJS.ProcessEnv): LocalEnvironment {
  try {
    return parse(LocalEnvironment, env, 'environment');
  } catch (error) {
    if (error instanceof ValidationError) {
      const problems = error.details.map((p) => `${p.field} ${p.message}`).join('; ');
      throw new ConfigurationError(`cannot start: ${problems}`, { cause: error });
    }
    throw error;
  }
}
