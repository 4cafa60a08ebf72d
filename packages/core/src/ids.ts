/**
 * Time-sortable ids (ULID layout, lowercase Crockford base32): 10 characters of milliseconds, then
 * 16 of randomness. Lexical order is creation order, which is what "newest first" listing and the
 * event log need; lowercase keeps them inside the id pattern a-z0-9.
 */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

export interface IdGenerator {
  next(): string;
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

function encodeTime(ms: number): string {
  let out = '';
  let rest = ms;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[rest % 32] + out;
    rest = Math.floor(rest / 32);
  }
  return out;
}

function incrementBase32(text: string): string {
  const chars = text.split('');
  for (let i = chars.length - 1; i >= 0; i--) {
    const value = ALPHABET.indexOf(chars[i]!);
    if (value < 31) {
      chars[i] = ALPHABET[value + 1]!;
      return chars.join('');
    }
    chars[i] = ALPHABET[0]!;
  }
  throw new Error('id randomness overflowed within one millisecond');
}

/** Monotonic within one process: two ids in the same millisecond still sort in creation order. */
export function createUlidGenerator(clock: Clock = systemClock): IdGenerator {
  let lastTime = -1;
  let lastRandom = '';
  return {
    next() {
      const time = clock.now().getTime();
      if (time <= lastTime) {
        lastRandom = incrementBase32(lastRandom);
      } else {
        lastTime = time;
        const bytes = crypto.getRandomValues(new Uint8Array(16));
        lastRandom = Array.from(bytes, (b) => ALPHABET[b % 32]).join('');
      }
      return encodeTime(lastTime) + lastRandom;
    },
  };
}
