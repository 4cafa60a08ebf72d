/**
 * The States Language's paths, as far as the local interpreter supports them: reference paths
 * (`$`, `$.a.b`, `$['a b']`, `$.list[0]`) over the state's input, and `$$.…` over the context
 * object. JSONPath filters, wildcards, slices and unions are refused when a definition is loaded,
 * so a machine never fails on them half-way through a run.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** An error in the States Language's own terms: `Error` is what Retry and Catch match. */
export class StatesError extends Error {
  constructor(
    readonly error: string,
    readonly causeText: string,
  ) {
    super(causeText);
    this.name = error;
  }
}

/** A path the interpreter cannot follow: found when the definition is loaded, before any run. */
export class UnsupportedDefinitionError extends Error {
  override name = 'UnsupportedDefinitionError';
}

export type Segment = string | number;
export interface ParsedPath {
  root: '$' | '$$';
  segments: Segment[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_-]*/;

export function parsePath(path: string): ParsedPath {
  const root = path.startsWith('$$') ? '$$' : path.startsWith('$') ? '$' : undefined;
  if (!root) throw new UnsupportedDefinitionError(`"${path}" is not a path: it must start with $`);
  const segments: Segment[] = [];
  let rest = path.slice(root.length);
  while (rest.length > 0) {
    if (rest.startsWith('.')) {
      const name = NAME.exec(rest.slice(1));
      if (!name) throw new UnsupportedDefinitionError(`"${path}": only plain names may follow a dot`);
      segments.push(name[0]);
      rest = rest.slice(1 + name[0].length);
      continue;
    }
    const index = /^\[(\d+)\]/.exec(rest);
    if (index) {
      segments.push(Number(index[1]));
      rest = rest.slice(index[0].length);
      continue;
    }
    const quoted = /^\['((?:[^'\\]|\\.)*)'\]/.exec(rest);
    if (quoted) {
      segments.push(quoted[1]!.replace(/\\(.)/g, '$1'));
      rest = rest.slice(quoted[0].length);
      continue;
    }
    throw new UnsupportedDefinitionError(
      `"${path}": the local executor follows reference paths only (names and indexes); filters, wildcards and slices are not supported`,
    );
  }
  return { root, segments };
}

const parsedCache = new Map<string, ParsedPath>();
function parsed(path: string): ParsedPath {
  let hit = parsedCache.get(path);
  if (!hit) {
    hit = parsePath(path);
    parsedCache.set(path, hit);
  }
  return hit;
}

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What a path selects, or `undefined` when it selects nothing. */
export function lookup(path: string, input: Json, context: Json): Json | undefined {
  const { root, segments } = parsed(path);
  let value: Json | undefined = root === '$$' ? context : input;
  for (const segment of segments) {
    if (typeof segment === 'number') value = Array.isArray(value) ? value[segment] : undefined;
    else value = isObject(value) && Object.hasOwn(value, segment) ? value[segment] : undefined;
    if (value === undefined) return undefined;
  }
  return value;
}

/** What a path selects; a path that selects nothing fails the state with States.Runtime, as on AWS. */
export function select(path: string, input: Json, context: Json, field: string): Json {
  const value = lookup(path, input, context);
  if (value === undefined) {
    throw new StatesError('States.Runtime', `${field}: the path '${path}' selects nothing in the input`);
  }
  return value;
}

/** `InputPath` and `OutputPath`: absent means `$`, null means `{}`. */
export function applyPath(path: string | null | undefined, input: Json, context: Json, field: string): Json {
  if (path === undefined) return input;
  if (path === null) return {};
  return select(path, input, context, field);
}

/** `ResultPath`: where the result goes in a copy of the state's input. Absent means `$`, null discards it. */
export function applyResultPath(path: string | null | undefined, input: Json, result: Json): Json {
  if (path === undefined || path === '$') return result;
  if (path === null) return input;
  const { root, segments } = parsed(path);
  if (root !== '$') throw new StatesError('States.Runtime', `ResultPath '${path}' must refer to the input ($)`);
  const copy: Json = structuredClone(input);
  if (!isObject(copy)) {
    throw new StatesError('States.Runtime', `ResultPath '${path}' needs an object as the state's input`);
  }
  let parent: Json = copy;
  for (const [position, segment] of segments.entries()) {
    const last = position === segments.length - 1;
    if (typeof segment === 'number') {
      if (!Array.isArray(parent) || segment >= parent.length) {
        throw new StatesError('States.Runtime', `ResultPath '${path}' indexes past an array's end`);
      }
      if (last) parent[segment] = result;
      else parent = parent[segment]!;
      continue;
    }
    if (!isObject(parent)) throw new StatesError('States.Runtime', `ResultPath '${path}' goes through a value that is not an object`);
    if (last) parent[segment] = result;
    else {
      if (!isObject(parent[segment]) && !Array.isArray(parent[segment])) parent[segment] = {};
      parent = parent[segment]!;
    }
  }
  return copy;
}

/**
 * `Parameters`, `ItemSelector`, `ResultSelector`: a template whose `key.$` fields take the value of
 * a path (over the input, or the context with `$$`).
 */
export function renderTemplate(template: Json, input: Json, context: Json, field: string): Json {
  if (Array.isArray(template)) return template.map((item) => renderTemplate(item, input, context, field));
  if (!isObject(template)) return template;
  const rendered: Record<string, Json> = {};
  for (const [key, value] of Object.entries(template)) {
    if (key.endsWith('.$')) {
      rendered[key.slice(0, -2)] = select(String(value), input, context, `${field}.${key}`);
    } else {
      rendered[key] = renderTemplate(value, input, context, field);
    }
  }
  return rendered;
}

/** Every path a template holds, to check them all when a definition is loaded. */
export function templatePaths(template: unknown, found: string[] = []): string[] {
  if (Array.isArray(template)) for (const item of template) templatePaths(item, found);
  else if (isObject(template)) {
    for (const [key, value] of Object.entries(template)) {
      if (key.endsWith('.$')) {
        if (typeof value !== 'string') throw new UnsupportedDefinitionError(`${key} must name a path`);
        if (value.startsWith('States.')) {
          throw new UnsupportedDefinitionError(`${key}: intrinsic functions (${value.split('(')[0]}) are not supported by the local executor`);
        }
        found.push(value);
      } else templatePaths(value, found);
    }
  }
  return found;
}
