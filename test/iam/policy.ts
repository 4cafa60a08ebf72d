import type { AttributedCall } from '@slipway/aws';
import type { StackRefs, Statement } from '../../infra/permissions.ts';

/** The local names of what the stack creates: each maps to the ARN the stack gives it. */
export interface LocalNames {
  tables: string[];
  buckets: string[];
}

/**
 * The ARN a recorded resource has on the stack: `{region}` and `{account}` filled in from the refs,
 * a local table or bucket replaced by the stack's.
 */
export function stackArn(resource: string, refs: StackRefs, names: LocalNames): string {
  const arn = resource.replaceAll('{region}', refs.region).replaceAll('{account}', refs.account);
  const table = /^arn:aws:dynamodb:[^:]*:[^:]*:table\/([^/]+)(.*)$/.exec(arn);
  if (table && names.tables.includes(table[1]!)) return `${refs.tableArn}${table[2]}`;
  const bucket = /^arn:aws:s3:::([^/]+)(.*)$/.exec(arn);
  if (bucket && names.buckets.includes(bucket[1]!)) return `${refs.bucketArn}${bucket[2]}`;
  return arn;
}

/** IAM's wildcards: `*` any run of characters (`/` and `:` too), `?` any one. */
export function globMatches(pattern: string, value: string, caseInsensitive = false): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.');
  return new RegExp(`^${source}$`, caseInsensitive ? 'i' : '').test(value);
}

/** Whether a statement allows an action on a resource. Conditions are not evaluated: the caller notes them. */
export function allows(statement: Statement, action: string, resource: string): boolean {
  return (
    statement.actions.some((pattern) => globMatches(pattern, action, true)) &&
    statement.resources.some((pattern) => globMatches(pattern, resource))
  );
}

export interface Finding {
  fn: string;
  action: string;
  resource: string;
  /** The SDK operations that needed it, and why when it is not obvious. */
  because: string[];
}

export interface Verdict {
  /** Calls no statement of their function allows. */
  unauthorised: Finding[];
  /** Calls allowed only by a statement with conditions, which this check does not evaluate. */
  conditional: Finding[];
  /** Per function, each action on a resource pattern that no recorded call used. */
  unused: Record<string, string[]>;
}

/**
 * Checks every recorded call (already resolved to stack ARNs) against the statements of the
 * function that made it, and finds the grants nothing used.
 */
export function judge(calls: AttributedCall[], grants: Record<string, Statement[]>): Verdict {
  const unique = new Map<string, Finding>();
  for (const call of calls) {
    const key = `${call.fn}\u0000${call.action}\u0000${call.resource}`;
    const found = unique.get(key) ?? { fn: call.fn, action: call.action, resource: call.resource, because: [] };
    const reason = call.note ? `${call.operation} (${call.note})` : call.operation;
    if (!found.because.includes(reason)) found.because.push(reason);
    unique.set(key, found);
  }

  const unauthorised: Finding[] = [];
  const conditional: Finding[] = [];
  const used = new Set<string>();
  for (const finding of unique.values()) {
    const statements = grants[finding.fn] ?? [];
    const matching = statements.filter((statement) => allows(statement, finding.action, finding.resource));
    if (matching.length === 0) unauthorised.push(finding);
    else if (matching.every((statement) => statement.conditions?.length)) conditional.push(finding);
    for (const statement of matching) {
      for (const action of statement.actions) {
        if (!globMatches(action, finding.action, true)) continue;
        for (const resource of statement.resources) {
          if (globMatches(resource, finding.resource)) used.add(`${finding.fn}\u0000${action}\u0000${resource}`);
        }
      }
    }
  }

  const unused: Record<string, string[]> = {};
  for (const [fn, statements] of Object.entries(grants)) {
    // By resource, the actions granted on it that nothing used: "dynamodb:BatchGetItem, dynamodb:Query on <arn>".
    const idle = new Map<string, Set<string>>();
    for (const statement of statements) {
      for (const resource of statement.resources) {
        const label = `${resource}${statement.conditions?.length ? ' (with conditions)' : ''}`;
        for (const action of statement.actions) {
          if (!used.has(`${fn}\u0000${action}\u0000${resource}`)) idle.set(label, (idle.get(label) ?? new Set()).add(action));
        }
      }
    }
    if (idle.size > 0) unused[fn] = [...idle].map(([resource, actions]) => `${[...actions].join(', ')} on ${resource}`);
  }
  const order = (a: Finding, b: Finding) => `${a.fn} ${a.action} ${a.resource}`.localeCompare(`${b.fn} ${b.action} ${b.resource}`);
  return { unauthorised: unauthorised.sort(order), conditional: conditional.sort(order), unused };
}
