/**
 * Structured JSON logs, one object a line. Fields whose names suggest a secret are replaced before
 * anything is written, so a careless `logger.info('x', { request })` cannot leak a token or a
 * signed link.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

const SECRET_FIELD =
  /token|authorization|secret|password|signature|cookie|credential|(upload|download|signed|presigned|approval)(url|link)/i;
export const REDACTED = '[redacted]';

/**
 * Secrets that can hide inside ordinary text (a request path, an error message, a URL): an approval
 * link's id, an API token, a presigned URL's signature or credential. Every string logged is
 * scrubbed of them, whatever its field is called.
 */
const SECRET_TEXT: [RegExp, string][] = [
  [/\/approvals\/[^/?#\s"']+/g, '/approvals/…'],
  [/\bslw_[A-Za-z0-9_-]{8,}/g, 'slw_…'],
  [/([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|AWSAccessKeyId|sig|token)=)[^&\s"'#]*/gi, '$1…'],
];

export function scrub(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_TEXT) out = out.replace(pattern, replacement);
  return out;
}

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  service: string;
  level?: LogLevel;
  write?: (line: string) => void;
}

function redact(value: unknown, depth = 0): unknown {
  if (depth > 6) return '[deep]';
  if (typeof value === 'string') return scrub(value);
  if (value instanceof Error) {
    return {
      name: value.name,
      message: scrub(value.message),
      stack: value.stack === undefined ? undefined : scrub(value.stack),
      cause: redact(value.cause, depth + 1),
    };
  }
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      out[key] = SECRET_FIELD.test(key) ? REDACTED : redact(inner, depth + 1);
    }
    return out;
  }
  return value;
}

export function createLogger(options: LoggerOptions, bound: Record<string, unknown> = {}): Logger {
  const threshold = LEVELS[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const emit = (level: LogLevel, message: string, fields: Record<string, unknown> = {}) => {
    if (LEVELS[level] < threshold) return;
    const entry = redact({ ...bound, ...fields }) as Record<string, unknown>;
    write(
      JSON.stringify({ time: new Date().toISOString(), level, service: options.service, message: scrub(message), ...entry }),
    );
  };
  return {
    debug: (message, fields) => emit('debug', message, fields),
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
    child: (fields) => createLogger(options, { ...bound, ...fields }),
  };
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
