import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IdGenerator, Mail, Mailer } from '@slipway/core';

export interface OutboxEntry {
  id: string;
  to: string[];
  subject: string;
  date: string;
  text: string;
}

function encodeHeader(value: string): string {
  // RFC 2047: non-ASCII subjects travel base64-encoded.
  return /^[\x20-\x7e]*$/.test(value) ? value : `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

function base64Lines(text: string): string {
  return (Buffer.from(text, 'utf8').toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

function decodeHeader(value: string): string {
  return value.replace(/=\?UTF-8\?B\?([^?]*)\?=/g, (_, data: string) => Buffer.from(data, 'base64').toString('utf8'));
}

/**
 * The local stand-in for SES: every mail is an .eml file under `<dataDir>/outbox/`, openable in any
 * mail client, and listed by GET /v1/outbox.
 */
export function createOutbox(directory: string, ids: IdGenerator, from = 'slipway@localhost'): Mailer & {
  list(): Promise<OutboxEntry[]>;
  /**
   * Deletes the mails written before `olderThan` (by file time), and any half-written one as old.
   * Each deletion is one unlink: a crash leaves every mail whole or gone. Returns the ids deleted.
   */
  prune(olderThan: Date): Promise<string[]>;
} {
  return {
    async send(mail: Mail) {
      await mkdir(directory, { recursive: true });
      const id = ids.next();
      const boundary = `slipway-${randomUUID()}`;
      const eml = [
        `From: Slipway <${from}>`,
        `To: ${mail.to.join(', ')}`,
        `Subject: ${encodeHeader(mail.subject)}`,
        `Date: ${new Date().toUTCString()}`,
        `Message-ID: <${id}@slipway.local>`,
        'MIME-Version: 1.0',
        `Content-Type: multipart/alternative; boundary="${boundary}"`,
        '',
        `--${boundary}`,
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: base64',
        '',
        base64Lines(mail.text),
        `--${boundary}`,
        'Content-Type: text/html; charset=utf-8',
        'Content-Transfer-Encoding: base64',
        '',
        base64Lines(mail.html),
        `--${boundary}--`,
        '',
      ].join('\r\n');
      await writeFile(join(directory, `${id}.eml.tmp`), eml);
      await rename(join(directory, `${id}.eml.tmp`), join(directory, `${id}.eml`));
    },

    async prune(olderThan: Date) {
      const cutoff = olderThan.getTime();
      const deleted: string[] = [];
      for (const name of await readdir(directory).catch(() => [] as string[])) {
        if (!name.endsWith('.eml') && !name.endsWith('.eml.tmp')) continue;
        const file = join(directory, name);
        const written = await stat(file).then((stats) => stats.mtimeMs, () => undefined);
        if (written === undefined || written >= cutoff) continue;
        try {
          await unlink(file);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
          continue;
        }
        if (name.endsWith('.eml')) deleted.push(name.slice(0, -'.eml'.length));
      }
      return deleted;
    },

    async list() {
      const names = (await readdir(directory).catch(() => [] as string[])).filter((n) => n.endsWith('.eml')).sort().reverse();
      const entries = await Promise.all(
        names.map(async (name): Promise<OutboxEntry | undefined> => {
          let eml: string;
          try {
            eml = await readFile(join(directory, name), 'utf8');
          } catch (error) {
            // Deleted by the retention pass between the listing and the read.
            if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
            throw error;
          }
          const [head = '', ...parts] = eml.split('\r\n\r\n');
          const header = (field: string) => new RegExp(`^${field}: (.*)$`, 'm').exec(head)?.[1] ?? '';
          const textPart = parts.findIndex((part, i) => i > 0 && parts[i - 1]!.includes('text/plain'));
          const text = textPart >= 0 ? Buffer.from(parts[textPart]!.split('\r\n--')[0]!.replace(/\r\n/g, ''), 'base64').toString('utf8') : '';
          return {
            id: name.replace(/\.eml$/, ''),
            to: header('To').split(', ').filter(Boolean),
            subject: decodeHeader(header('Subject')),
            date: header('Date'),
            text,
          };
        }),
      );
      return entries.filter((entry): entry is OutboxEntry => entry !== undefined);
    },
  };
}
