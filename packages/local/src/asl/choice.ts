import { type Json, lookup, parsePath, select, StatesError, UnsupportedDefinitionError } from './paths.ts';

/**
 * Choice rules as the States Language defines them: a data-test rule compares a `Variable` with a
 * value (or, with the `…Path` form, with another path), `And`/`Or`/`Not` combine rules. A value of
 * the wrong type never matches; a Variable that selects nothing is States.Runtime unless the rule
 * only asks whether it is present.
 */

type Rule = Record<string, unknown>;
type Kind = 'string' | 'number' | 'boolean' | 'timestamp';

const COMPARISONS: Record<string, { kind: Kind; test: (order: number) => boolean }> = {};
for (const [prefix, kind] of [['String', 'string'], ['Numeric', 'number'], ['Timestamp', 'timestamp']] as const) {
  COMPARISONS[`${prefix}Equals`] = { kind, test: (o) => o === 0 };
  COMPARISONS[`${prefix}LessThan`] = { kind, test: (o) => o < 0 };
  COMPARISONS[`${prefix}GreaterThan`] = { kind, test: (o) => o > 0 };
  COMPARISONS[`${prefix}LessThanEquals`] = { kind, test: (o) => o <= 0 };
  COMPARISONS[`${prefix}GreaterThanEquals`] = { kind, test: (o) => o >= 0 };
}
COMPARISONS.BooleanEquals = { kind: 'boolean', test: (o) => o === 0 };

const TYPE_TESTS: Record<string, (value: Json | undefined) => boolean> = {
  IsPresent: (value) => value !== undefined,
  IsNull: (value) => value === null,
  IsNumeric: (value) => typeof value === 'number',
  IsString: (value) => typeof value === 'string',
  IsBoolean: (value) => typeof value === 'boolean',
  IsTimestamp: (value) => typeof value === 'string' && isTimestamp(value),
};

function isTimestamp(value: string): boolean {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value) && !Number.isNaN(Date.parse(value));
}

function ofKind(value: Json | undefined, kind: Kind): boolean {
  if (kind === 'timestamp') return typeof value === 'string' && isTimestamp(value);
  return typeof value === kind;
}

function order(a: Json, b: Json, kind: Kind): number {
  if (kind === 'timestamp') return Math.sign(Date.parse(String(a)) - Date.parse(String(b)));
  if (kind === 'boolean') return a === b ? 0 : 1;
  if (kind === 'number') return Math.sign(Number(a) - Number(b));
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

/** `StringMatches`: `*` matches any run of characters, `\*` a literal star. */
function wildcard(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]!;
    if (char === '\\' && i + 1 < pattern.length) source += pattern[++i]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    else if (char === '*') source += '.*';
    else source += char.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}

function operatorOf(rule: Rule): string | undefined {
  return Object.keys(rule).find((key) => key in COMPARISONS || key.replace(/Path$/, '') in COMPARISONS || key in TYPE_TESTS || key === 'StringMatches');
}

function matches(rule: Rule, input: Json, context: Json): boolean {
  if (Array.isArray(rule.And)) return (rule.And as Rule[]).every((inner) => matches(inner, input, context));
  if (Array.isArray(rule.Or)) return (rule.Or as Rule[]).some((inner) => matches(inner, input, context));
  if (rule.Not) return !matches(rule.Not as Rule, input, context);
  const variable = String(rule.Variable);
  const operator = operatorOf(rule)!;
  const value = lookup(variable, input, context);
  if (operator in TYPE_TESTS) {
    const expected = rule[operator] === true;
    return TYPE_TESTS[operator]!(value) === expected;
  }
  if (value === undefined) throw new StatesError('States.Runtime', `the Choice rule's Variable '${variable}' selects nothing in the input`);
  if (operator === 'StringMatches') return typeof value === 'string' && wildcard(String(rule.StringMatches)).test(value);
  const byPath = operator.endsWith('Path');
  const comparison = COMPARISONS[byPath ? operator.slice(0, -4) : operator]!;
  const other = byPath ? select(String(rule[operator]), input, context, operator) : (rule[operator] as Json);
  if (!ofKind(value, comparison.kind) || !ofKind(other, comparison.kind)) return false;
  return comparison.test(order(value, other, comparison.kind));
}

/** The `Next` of the first rule that matches, or undefined. */
export function evaluateChoice(choices: unknown[], input: Json, context: Json): string | undefined {
  for (const choice of choices as Rule[]) if (matches(choice, input, context)) return String(choice.Next);
  return undefined;
}

function validateRule(rule: Rule, where: string, top: boolean) {
  if (top && typeof rule.Next !== 'string') throw new UnsupportedDefinitionError(`${where}: every Choice rule needs Next`);
  if (Array.isArray(rule.And) || Array.isArray(rule.Or)) {
    for (const inner of (rule.And ?? rule.Or) as Rule[]) validateRule(inner, where, false);
    return;
  }
  if (rule.Not) return validateRule(rule.Not as Rule, where, false);
  if (typeof rule.Variable !== 'string') throw new UnsupportedDefinitionError(`${where}: a Choice rule needs a Variable`);
  parsePath(rule.Variable);
  const operator = operatorOf(rule);
  if (!operator) throw new UnsupportedDefinitionError(`${where}: a Choice rule has no comparison the local executor knows`);
  if (operator.endsWith('Path')) parsePath(String(rule[operator]));
}

export function validateChoice(choices: unknown[], where: string): void {
  if (choices.length === 0) throw new UnsupportedDefinitionError(`${where}: a Choice state needs Choices`);
  for (const choice of choices as Rule[]) validateRule(choice, where, true);
}
