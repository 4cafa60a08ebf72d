import type { Clock, IdGenerator } from './ids.ts';
import type { Logger } from './logger.ts';
import type { AuditAction, AuditEntry, AuditStore, Page } from './ports.ts';
import { AuditQuery, parse } from './schemas.ts';

/**
 * The audit log: one entry per change a person made (app configs, tokens, approval decisions,
 * cancels, rollbacks), written after the change succeeded. Read by admins through GET /v1/audit.
 */
export interface AuditDeps {
  store: AuditStore;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
}

export function createAuditLog({ store, clock, ids, logger }: AuditDeps) {
  return {
    /**
     * Appends one entry. The change it describes has already happened, so a failed write does not
     * fail the caller (a retry would repeat the change, or meet a conflict): the entry goes to the
     * error log in full instead, where an operator finds it.
     */
    async record(action: AuditAction, actor: string, subject: string, details: Record<string, unknown> = {}): Promise<void> {
      const entry: AuditEntry = { id: ids.next(), at: clock.now().toISOString(), actor, action, subject, details };
      try {
        await store.append(entry);
      } catch (error) {
        logger.error('the audit entry could not be stored; it is in this log line only', { audit: entry, error });
      }
    },

    async list(query: Record<string, string | undefined>): Promise<Page<AuditEntry>> {
      const { limit, cursor } = parse(AuditQuery, query, 'audit query');
      const page = await store.list({ limit, ...(cursor ? { cursor } : {}) });
      return { items: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    },
  };
}
export type AuditLog = ReturnType<typeof createAuditLog>;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep equality of JSON values, blind to key order (DynamoDB does not keep it). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => sameJson(item, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].every((key) => sameJson(a[key], b[key]));
  }
  return false;
}

/** Fields of two objects that differ; with `descend`, one level into nested objects: `hooks.postRelease`. */
function changedFields(before: Record<string, unknown>, after: Record<string, unknown>, prefix: string, descend: boolean): string[] {
  const changed: string[] = [];
  for (const key of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    const [was, now] = [before[key], after[key]];
    if (sameJson(was, now)) continue;
    if (descend && isPlainObject(was) && isPlainObject(now)) {
      for (const inner of [...new Set([...Object.keys(was), ...Object.keys(now)])].sort()) {
        if (!sameJson(was[inner], now[inner])) changed.push(`${prefix}${key}.${inner}`);
      }
    } else {
      changed.push(`${prefix}${key}`);
    }
  }
  return changed;
}

type Config = Record<string, unknown> & { environments?: unknown };

/**
 * What a config write changed, compactly: top-level fields (`keepReleases`, `hooks.postRelease`),
 * environments added or removed (`environments[canary]`), their fields
 * (`environments[production].strategy`), and `environments` itself when only their order moved.
 * Without a config before, every field counts as changed.
 */
export function diffConfig(before: Config | undefined, after: Config): string[] {
  const envs = (config: Config | undefined) =>
    new Map(
      (Array.isArray(config?.environments) ? config.environments : [])
        .filter(isPlainObject)
        .map((env) => [String(env.name), env] as const),
    );
  const { environments: _before, ...topBefore } = before ?? {};
  const { environments: _after, ...topAfter } = after;
  const changed = changedFields(topBefore, topAfter, '', true);

  const [was, now] = [envs(before), envs(after)];
  for (const name of [...new Set([...was.keys(), ...now.keys()])]) {
    const [a, b] = [was.get(name), now.get(name)];
    if (!a || !b) changed.push(`environments[${name}]`);
    else changed.push(...changedFields(a, b, `environments[${name}].`, false));
  }
  const sameOrder = [...was.keys()].filter((n) => now.has(n)).join('\n') === [...now.keys()].filter((n) => was.has(n)).join('\n');
  if (before && !sameOrder) changed.push('environments');
  return changed;
}
