import { gzipSync } from 'node:zlib';

/**
 * Hostile artifacts: archives crafted byte by byte (ustar headers, with a pax header for long or
 * unusual names), so a test can put in exactly what an attacker would, which no well-behaved tar
 * writer produces: absolute names, "..", FIFOs, devices, hard links out of the archive.
 */

export type Member =
  | { name: string; type: 'file'; content?: string } |
  { name: string; type: 'dir' | 'fifo' | 'char'; mode?: number } |
  { name: string; type: 'symlink' | 'hardlink'; target: string };

const TYPE_FLAG = { file: '0', hardlink: '1', symlink: '2', char: '3', dir: '5', fifo: '6' } as const;

function octal(block: Buffer, offset: number, length: number, value: number) {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'ascii');
}

function header(name: Buffer, typeflag: string, size: number, mode: number, linkname = Buffer.alloc(0)): Buffer {
  const block = Buffer.alloc(512);
  name.copy(block, 0, 0, Math.min(name.length, 100));
  octal(block, 100, 8, mode);
  octal(block, 108, 8, 0);
  octal(block, 116, 8, 0);
  octal(block, 124, 12, size);
  octal(block, 136, 12, 1_700_000_000);
  block.write(typeflag, 156, 1, 'ascii');
  linkname.copy(block, 157, 0, Math.min(linkname.length, 100));
  block.write('ustar\u000000', 257, 8, 'ascii');
  block.write('root', 265, 'ascii');
  block.write('root', 297, 'ascii');
  if (typeflag === TYPE_FLAG.char) {
    octal(block, 329, 8, 1);
    octal(block, 337, 8, 3);
  }
  block.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return block;
}

function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

/** The members' blocks, without the end of the archive. */
export function tarBlocks(members: Member[]): Buffer {
  const blocks: Buffer[] = [];
  for (const member of members) {
    const name = Buffer.from(member.name);
    const target = Buffer.from('target' in member ? member.target : '');
    const records: Buffer[] = [];
    if (name.length > 100 || /[^ -~]/.test(member.name)) records.push(paxRecord('path', name));
    if (target.length > 100 || /[^ -~]/.test(target.toString())) records.push(paxRecord('linkpath', target));
    if (records.length > 0) {
      const pax = Buffer.concat(records);
      blocks.push(header(Buffer.from('PaxHeader'), 'x', pax.length, 0o644), padded(pax));
    }
    const content = Buffer.from(member.type === 'file' ? member.content ?? '' : '');
    const mode = 'mode' in member && member.mode !== undefined ? member.mode : member.type === 'dir' ? 0o755 : 0o644;
    blocks.push(header(name, TYPE_FLAG[member.type], content.length, mode, target));
    if (content.length > 0) blocks.push(padded(content));
  }
  return Buffer.concat(blocks);
}

/** A whole .tar.gz of the members. */
export function tarball(members: Member[]): Buffer {
  return gzipSync(Buffer.concat([tarBlocks(members), Buffer.alloc(1024)]));
}
