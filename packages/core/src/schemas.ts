import { z } from 'zod';
import { type FieldProblem, ValidationError } from './errors.ts';

/**
 * One schema per boundary: the HTTP request bodies and queries, the app config file, the values
 * that later reach host scripts. Types are inferred from them so parser and type cannot drift.
 */

const NO_CONTROL_CHARACTERS = /^[^\u0000-\u001f\u007f]*$/;
/** Descriptions and reasons may span lines; nothing else below U+0020 is accepted. */
const NO_CONTROL_CHARACTERS_EXCEPT_NEWLINE = /^[^\u0000-\u0009\u000b-\u001f\u007f]*$/;

export const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
const ID_MESSAGE = 'must be 1 to 63 characters of a-z, 0-9 and "-", starting with a letter or digit';

export const Id = z.string().regex(ID_PATTERN, ID_MESSAGE);
export const AppName = Id;
export const EnvironmentName = Id;
export const ReleaseId = Id;

export const Version = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/,
    'must be 1 to 64 characters of A-Z, a-z, 0-9, ".", "_", "+" and "-", starting with a letter or digit',
  );

export const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a sha256 as 64 lowercase hex characters');

/** Host ids: EC2 instance ids on AWS, folder names in the local fleet. */
export const HostId = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/,
    'must be 1 to 128 characters of A-Z, a-z, 0-9, ".", "_" and "-", starting with a letter or digit',
  )
  .refine((value) => !value.includes('..'), 'must not contain ".."');

const PATH_SEGMENT = /^[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*$|^\.[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*$/;

function pathSegmentsProblem(segments: string[]): string | undefined {
  for (const segment of segments) {
    if (segment === '') return 'must not contain empty segments ("//") or end with "/"';
    if (segment === '.' || segment === '..') return 'must not contain "." or ".." segments';
    if (!PATH_SEGMENT.test(segment)) return 'segments may use only A-Z, a-z, 0-9, ".", "_", "@", "+" and "-"';
  }
  return undefined;
}

export const DeployRoot = z
  .string()
  .max(255, 'must be at most 255 characters')
  .superRefine((value, ctx) => {
    // "~/app": below the login user's home on the host (SSH targets: each user apart on one machine).
    const home = value.startsWith('~/');
    if ((!home && !value.startsWith('/')) || value === '/' || value === '~/') {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute path below "/", e.g. /srv/shop, or below the login user\'s home, e.g. ~/shop' });
      return;
    }
    const problem = pathSegmentsProblem(value.slice(home ? 2 : 1).split('/'));
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

export const SharedPath = z
  .string()
  .max(255, 'must be at most 255 characters')
  .superRefine((value, ctx) => {
    if (value.startsWith('/')) {
      ctx.addIssue({ code: 'custom', message: 'must be relative to the release folder, e.g. storage' });
      return;
    }
    const problem = pathSegmentsProblem(value.split('/'));
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const HookCommand = z
  .string()
  .max(4096, 'must be at most 4096 characters')
  .regex(NO_CONTROL_CHARACTERS, 'must be one line with no control characters (newline, tab, NUL, escape)');

const TagText = (max: number) =>
  z
    .string()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .regex(/^[A-Za-z0-9 _.:/=+@-]*$/, 'may use only letters, digits, spaces and _ . : / = + - @');

/**
 * An SSH target, `user@host` or `user@host:port`. The parts go to the SSH library as values (never
 * through a shell), but they also name the host in records, logs and messages, so each part is held
 * to a strict pattern here, at the config edge: shell characters, spaces and newlines never pass.
 */
const SSH_USER = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;
const SSH_HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const SSH_HOST_IPV6 = /^\[[0-9A-Fa-f:.]{2,45}\]$/;
const SSH_ENTRY = /^([^@]*)@(\[[^\]]*\]|[^:]*)(?::([^:]*))?$/;
export const SSH_DEFAULT_PORT = 22;

export interface SshHost {
  user: string;
  /** A DNS name, an IPv4 address, or an IPv6 address in brackets. */
  host: string;
  port: number;
}

/** Parses one `user@host[:port]`; a problem says which part is wrong and how to write it. */
export function parseSshHost(entry: string): { host: SshHost } | { problem: string } {
  const fix = 'write it as user@host or user@host:port, e.g. deploy@web-1.example.com:2222';
  const match = SSH_ENTRY.exec(entry);
  if (!match) return { problem: `must be user@host or user@host:port with no spaces or shell characters; ${fix}` };
  const [, user = '', host = '', portText] = match;
  if (!SSH_USER.test(user)) {
    return { problem: `has a user that is not 1 to 32 of A-Z, a-z, 0-9, ".", "_" and "-" (starting with a letter or "_"); ${fix}` };
  }
  if (!SSH_HOST_NAME.test(host) && !SSH_HOST_IPV6.test(host)) {
    return { problem: `has a host that is not a DNS name or IP address (letters, digits, "-" and "." only; IPv6 in brackets); ${fix}` };
  }
  let port = SSH_DEFAULT_PORT;
  if (portText !== undefined) {
    if (!/^[1-9][0-9]{0,4}$/.test(portText) || Number(portText) > 65_535) {
      return { problem: `has a port that is not a number from 1 to 65535; ${fix}` };
    }
    port = Number(portText);
  }
  return { host: { user, host, port } };
}

/** The one name of an SSH host everywhere (plans, records, messages): `user@host:port`. */
export function sshHostId(target: SshHost): string {
  return `${target.user}@${target.host}:${target.port}`;
}

const SshHostEntry = z.string().max(300, 'must be at most 300 characters').superRefine((value, ctx) => {
  const parsed = parseSshHost(value);
  if ('problem' in parsed) ctx.addIssue({ code: 'custom', message: parsed.problem });
});

const Targets = z.union(
  [
    z.strictObject({
      hosts: z
        .array(HostId)
        .min(1, 'name at least one host')
        .max(5000, 'at most 5000 hosts')
        .refine((hosts) => new Set(hosts).size === hosts.length, 'must not name a host twice'),
    }),
    z.strictObject({
      ssh: z.strictObject({
        hosts: z
          .array(SshHostEntry)
          .min(1, 'name at least one host as user@host or user@host:port')
          .max(5000, 'at most 5000 hosts')
          .refine((hosts) => {
            const ids = hosts.map((entry) => {
              const parsed = parseSshHost(entry);
              return 'host' in parsed ? sshHostId(parsed.host) : entry;
            });
            return new Set(ids).size === ids.length;
          }, 'must not name a host twice (user@host is user@host:22)'),
      }),
    }),
    z.strictObject({
      tags: z
        .record(TagText(128), TagText(256))
        .refine((tags) => Object.keys(tags).length >= 1 && Object.keys(tags).length <= 10, {
          message: 'must have 1 to 10 tags',
        }),
    }),
  ],
  { error: 'must be one of {"hosts": [...]}, {"tags": {...}} or {"ssh": {"hosts": ["user@host:port", ...]}}' },
);

export const BatchSize = z.union(
  [
    z.number().int().min(1).max(5000),
    z.string().regex(/^([1-9][0-9]?|100)%$/, 'a percent must be written like "25%" (1% to 100%)'),
  ],
  { error: 'must be a host count (1 or more) or a percent like "25%"' },
);

const PERCENT_100 = '100%';

/** One step of a canary: switch until this many hosts run the release, or pause (for a person, or N seconds). */
const CanaryStep = z.union(
  [
    z.strictObject({ hosts: BatchSize }),
    z.strictObject({
      pause: z.strictObject({ seconds: z.number().int().min(1).max(86_400, 'must be at most 86400 (one day)').optional() }),
    }),
  ],
  { error: 'each step must be {"hosts": 2 or "50%"}, {"pause": {}} (wait for a person) or {"pause": {"seconds": 600}}' },
);
export type CanaryStep = z.infer<typeof CanaryStep>;

const Canary = z
  .strictObject({
    type: z.literal('canary'),
    canaryHosts: z.number().int().min(1).max(100).optional(),
    batchSize: BatchSize.optional(),
    steps: z.array(CanaryStep).min(1, 'name at least one step').max(50, 'at most 50 steps').optional(),
  })
  .superRefine((canary, ctx) => {
    if (canary.steps === undefined) {
      if (canary.batchSize === undefined) {
        ctx.addIssue({ code: 'custom', path: ['steps'], message: 'give either steps (e.g. [{"hosts": 1}, {"pause": {}}, {"hosts": "100%"}]) or batchSize' });
      }
      return;
    }
    if (canary.canaryHosts !== undefined || canary.batchSize !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['steps'], message: 'steps replace canaryHosts and batchSize: remove those two fields' });
    }
    const steps = canary.steps;
    if ('pause' in steps[0]!) ctx.addIssue({ code: 'custom', path: ['steps', 0], message: 'a pause must follow a hosts step: start with {"hosts": 1}' });
    const last = steps.at(-1)!;
    if (!('hosts' in last) || last.hosts !== PERCENT_100) {
      ctx.addIssue({ code: 'custom', path: ['steps', steps.length - 1], message: 'the last step must be {"hosts": "100%"} so every host gets the release: add it at the end' });
    }
  });

const Strategy = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('all-at-once') }),
    z.strictObject({ type: z.literal('rolling'), batchSize: BatchSize }),
    Canary,
  ],
  { error: 'type must be one of all-at-once, rolling, canary' },
);

/**
 * What Slipway watches through every bake and timed pause after a switch: an HTTP endpoint that must
 * answer `expectStatus`, and/or CloudWatch alarms that must not be in ALARM (locally: see README).
 */
const Analysis = z
  .strictObject({
    http: z
      .strictObject({
        url: z
          .url({ error: 'must be an http or https URL' })
          .max(2000)
          .refine((url) => /^https?:\/\//.test(url), 'must be an http or https URL'),
        expectStatus: z.number().int().min(100).max(599).default(200),
        timeoutSeconds: z.number().int().min(1).max(30, 'must be at most 30').default(5),
      })
      .optional(),
    alarms: z
      .array(z.string().min(1).max(255).regex(NO_CONTROL_CHARACTERS, 'must have no control characters'))
      .min(1, 'name at least one alarm')
      .max(100, 'at most 100 alarms (one DescribeAlarms call)')
      .refine((names) => new Set(names).size === names.length, 'must not name an alarm twice')
      .optional(),
    intervalSeconds: z.number().int().min(1).max(3600).default(10),
    failureLimit: z.number().int().min(1).max(100).default(3),
  })
  .refine((analysis) => analysis.http !== undefined || analysis.alarms !== undefined, {
    message: 'give http ({"url": "https://..."}) or alarms (["name"]), or both',
  });
export type Analysis = z.infer<typeof Analysis>;

const Email = z.email({ error: 'must be an email address' }).max(254);

const Approval = z
  .strictObject({
    approvers: z
      .array(Email)
      .min(1, 'name at least one approver')
      .max(50)
      .refine((list) => new Set(list.map((a) => a.toLowerCase())).size === list.length, {
        message: 'must not name an approver twice',
      }),
    required: z.number().int().min(1).default(1),
    timeoutHours: z.number().positive().max(504, 'must be at most 504 hours (21 days)').default(72),
    forRollback: z.boolean().default(false),
    allowSelfApproval: z.boolean().default(false),
  })
  .refine((approval) => approval.required <= approval.approvers.length, {
    message: 'required must not exceed the number of approvers',
    path: ['required'],
  });

const Environment = z.strictObject({
  name: EnvironmentName,
  targets: Targets,
  strategy: Strategy.default({ type: 'all-at-once' }),
  bakeSeconds: z.number().int().min(0).max(86_400, 'must be at most 86400 (one day)').default(0),
  approval: Approval.optional(),
  analysis: Analysis.optional(),
});

export const AppConfig = z.strictObject({
  name: AppName,
  deployRoot: DeployRoot,
  keepReleases: z
    .number()
    .int()
    .min(2, 'must keep at least 2 releases so rollback is possible')
    .max(100)
    .default(5),
  sharedPaths: z
    .array(SharedPath)
    .max(100)
    .refine((paths) => new Set(paths).size === paths.length, 'must not name a path twice')
    .default([]),
  hooks: z
    .strictObject({
      postDeploy: HookCommand.default(''),
      preRelease: HookCommand.default(''),
      postRelease: HookCommand.default(''),
      healthCheck: HookCommand.default(''),
    })
    .default({ postDeploy: '', preRelease: '', postRelease: '', healthCheck: '' }),
  queue: z.boolean().default(false),
  /** Where to POST release outcomes as JSON (chat tools). https, or http to this machine only. */
  webhookUrl: z
    .url({ error: 'must be a URL' })
    .max(2000)
    .refine(
      (url) => url.startsWith('https://') || /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\//.test(url),
      'must be https (plain http only to 127.0.0.1 or localhost)',
    )
    .optional(),
  environments: z
    .array(Environment)
    .min(1, 'define at least one environment')
    .max(20)
    .refine(
      (envs) => new Set(envs.map((e) => e.name)).size === envs.length,
      'environment names must be unique',
    ),
});
export type AppConfig = z.infer<typeof AppConfig>;
export type EnvironmentConfig = AppConfig['environments'][number];
export type Strategy = z.infer<typeof Strategy>;

/**
 * One problem per environment with SSH targets, for a runtime that cannot reach them (AWS, or a
 * local server started without an SSH key): `reason` says why and what to do instead.
 */
export function sshTargetProblems(config: AppConfig, reason: string): FieldProblem[] {
  return config.environments.flatMap((environment, index) =>
    'ssh' in environment.targets ? [{ field: `environments[${index}].targets.ssh`, message: reason }] : [],
  );
}

export function artifactKey(app: string, sha256: string): string {
  return `artifacts/${app}/${sha256}.tar.gz`;
}

/** A generous upper bound: a single presigned PUT to S3 takes at most 5 GiB. */
export const MAX_ARTIFACT_BYTES = 5 * 1024 ** 3;

/** Where an artifact was built from, when the CLI pushed it from a git work tree (shown to approvers). */
export const ArtifactSource = z.strictObject({
  repository: z
    .string()
    .min(1)
    .max(1024)
    .refine((url) => !/^[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/i.test(url), 'repository must not carry a password (scheme://user:password@...): drop it from the URL'),
  commit: z.string().regex(/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/, 'commit must be a full git object id (40 or 64 hex digits)'),
  ref: z.string().min(1).max(256).optional(),
  dirty: z.boolean().meta({ description: 'the work tree had changes not committed when the artifact was packed' }),
});
export type ArtifactSource = z.infer<typeof ArtifactSource>;

export const CreateArtifactRequest = z.strictObject({
  app: AppName,
  sha256: Sha256,
  size: z.number().int().min(1, 'an artifact cannot be empty'),
  source: ArtifactSource.optional(),
});
export type CreateArtifactRequest = z.infer<typeof CreateArtifactRequest>;

export const OpenReleaseRequest = z
  .strictObject({
    app: AppName,
    version: Version,
    artifact: z.strictObject({
      key: z.string().max(300),
      sha256: Sha256,
    }),
    description: z
      .string()
      .max(2000, 'must be at most 2000 characters')
      .regex(NO_CONTROL_CHARACTERS_EXCEPT_NEWLINE, 'must not contain control characters other than newlines')
      .default(''),
  })
  .refine((request) => request.artifact.key === artifactKey(request.app, request.artifact.sha256), {
    message: 'must be artifacts/<app>/<sha256>.tar.gz, as returned by POST /v1/artifacts',
    path: ['artifact', 'key'],
  });
export type OpenReleaseRequest = z.infer<typeof OpenReleaseRequest>;

export const ListReleasesQuery = z
  .strictObject({
    app: AppName.optional(),
    environment: EnvironmentName.optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().max(2048).optional(),
  })
  .refine((query) => query.environment === undefined || query.app !== undefined, {
    message: 'filtering by environment needs app as well',
    path: ['environment'],
  });
export type ListReleasesQuery = z.infer<typeof ListReleasesQuery>;

export const RollbackRequest = z.strictObject({
  /** A release retained on the environment; by default the one live before the current one. */
  toRelease: ReleaseId.optional(),
});

export const PromoteRequest = z.strictObject({
  /** Skip every pause still ahead (the release then runs to its end unless something fails). */
  full: z.boolean().default(false),
});

export const ROLES = ['viewer', 'deployer', 'approver', 'admin'] as const;
export const Role = z.enum(ROLES, { error: `must be one of ${ROLES.join(', ')}` });
export type Role = z.infer<typeof Role>;

export const PrincipalName = z
  .string()
  .regex(
    /^[A-Za-z0-9._%+@-]{1,128}$/,
    'must be 1 to 128 characters of letters, digits and . _ % + @ - (an email address works)',
  );

const Reason = z
  .string()
  .max(2000, 'must be at most 2000 characters')
  .regex(NO_CONTROL_CHARACTERS_EXCEPT_NEWLINE, 'must not contain control characters other than newlines')
  .default('');

/** The form an approval page posts. */
export const ApprovalForm = z.strictObject({
  decision: z.enum(['approve', 'reject'], { error: 'must be approve or reject' }),
  reason: Reason,
  csrf: z.string().min(1, 'is missing: use the form on the approval page').max(200),
});

/** A decision through the API, for approvers who decide from chat-ops or the dashboard. */
export const ApprovalRequestBody = z.strictObject({
  environment: EnvironmentName.optional(),
  decision: z.enum(['approve', 'reject'], { error: 'must be approve or reject' }),
  reason: Reason,
});

/** Token lifetimes: a minute to a year; no expiry when absent. */
export const TOKEN_MIN_SECONDS = 60;
export const TOKEN_MAX_SECONDS = 31_536_000;

export const CreateTokenRequest = z.strictObject({
  name: PrincipalName,
  role: Role,
  expiresInSeconds: z
    .number({ error: 'must be a whole number of seconds' })
    .int('must be a whole number of seconds')
    .min(TOKEN_MIN_SECONDS, `must be at least ${TOKEN_MIN_SECONDS} (one minute)`)
    .max(TOKEN_MAX_SECONDS, `must be at most ${TOKEN_MAX_SECONDS} (one year)`)
    .optional(),
});
export type CreateTokenRequest = z.infer<typeof CreateTokenRequest>;

export const AuditQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().regex(/^[0-9a-z]{26}$/, 'is not a cursor this listing gave out; start again without it').optional(),
});
export type AuditQuery = z.infer<typeof AuditQuery>;

function fieldOf(path: readonly PropertyKey[]): string {
  let field = '';
  for (const part of path) {
    if (typeof part === 'number') field += `[${part}]`;
    else field += field === '' ? String(part) : `.${String(part)}`;
  }
  return field;
}

export function problemsOf(error: z.ZodError): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        problems.push({ field: fieldOf([...issue.path, key]), message: 'is not a known field; remove it' });
      }
    } else {
      problems.push({ field: fieldOf(issue.path) || '(body)', message: issue.message });
    }
  }
  return problems;
}

/** Parses at the edge; a failure names every field to fix. */
export function parse<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = problemsOf(result.error);
  const summary = problems
    .slice(0, 3)
    .map((p) => `${p.field} ${p.message}`)
    .join('; ');
  throw new ValidationError(`invalid ${what}: ${summary}${problems.length > 3 ? '; …' : ''}`, problems);
}
