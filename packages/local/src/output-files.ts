import { open } from 'node:fs/promises';
import type { HostOutputLine, HostOutputRead } from '@slipway/core';

/**
 * Live output from a host run's two growing files (stdout, stderr), as the folder and SSH fleets
 * keep them. A position is `<stdout offset>-<stderr offset>`: the bytes read of each.
 */

/** What a live read answers of one stream at most: a host printing faster is cut at the start. */
export const LIVE_OUTPUT_LIMIT_BYTES = 512 * 1024;

/**
 * The bytes of `file` from `from` on, at most LIVE_OUTPUT_LIMIT_BYTES of its end, and how many were
 * skipped to keep to that; a missing file reads as empty.
 */
export async function readFrom(file: string, from: number): Promise<{ bytes: Buffer; start: number; cut: number }> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return { bytes: Buffer.alloc(0), start: from, cut: 0 };
  }
  try {
    const { size } = await handle.stat();
    const start = Math.max(from, size - LIVE_OUTPUT_LIMIT_BYTES);
    const bytes = Buffer.alloc(Math.max(0, size - start));
    const { bytesRead } = bytes.length ? await handle.read(bytes, 0, bytes.length, start) : { bytesRead: 0 };
    return { bytes: bytes.subarray(0, bytesRead), start, cut: start - from };
  } finally {
    await handle.close();
  }
}

/**
 * Splits new bytes of a stream into lines, each with the offset just after it. While the run goes
 * on only whole lines count (the rest is read again next time); once it ended, the last line too.
 * After a cut, the partial first line is dropped: its start was cut.
 */
function linesOf(bytes: Buffer, start: number, cut: boolean, ended: boolean): { lines: { text: string; end: number }[]; end: number } {
  const lines: { text: string; end: number }[] = [];
  let lineStart = 0;
  if (cut) {
    const newline = bytes.indexOf(10);
    if (newline < 0) return { lines, end: start + (ended ? bytes.length : 0) };
    lineStart = newline + 1;
  }
  for (let newline = bytes.indexOf(10, lineStart); newline >= 0; newline = bytes.indexOf(10, lineStart)) {
    lines.push({ text: bytes.subarray(lineStart, newline).toString('utf8'), end: start + newline + 1 });
    lineStart = newline + 1;
  }
  if (ended && lineStart < bytes.length) {
    lines.push({ text: bytes.subarray(lineStart).toString('utf8'), end: start + bytes.length });
    lineStart = bytes.length;
  }
  return { lines, end: start + lineStart };
}

/** A local read position: the byte offsets reached in stdout and stderr, `<stdout>-<stderr>`. */
function parsePosition(position: string | undefined): [number, number] {
  const match = position === undefined ? null : /^(\d+)-(\d+)$/.exec(position);
  return match ? [Number(match[1]), Number(match[2])] : [0, 0];
}

/**
 * What the run printed from `from` on. The two streams are separate files, so their relative order
 * is only as fine as the reads: each read gives stdout's new lines, then stderr's. `over`: the run
 * has ended (looked at before reading, so what it wrote before ending is read too).
 */
export async function readGrowingOutput(
  stdoutFile: string,
  stderrFile: string,
  from: string | undefined,
  over: boolean,
): Promise<HostOutputRead> {
  const [outFrom, errFrom] = parsePosition(from);
  const out = await readFrom(stdoutFile, outFrom);
  const err = await readFrom(stderrFile, errFrom);
  const outLines = linesOf(out.bytes, out.start, out.cut > 0, over);
  const errLines = linesOf(err.bytes, err.start, err.cut > 0, over);
  const lines: HostOutputLine[] = [
    ...outLines.lines.map((line) => ({ stream: 'stdout' as const, text: line.text, position: `${line.end}-${errFrom}` })),
    ...errLines.lines.map((line) => ({ stream: 'stderr' as const, text: line.text, position: `${outLines.end}-${line.end}` })),
  ];
  const cutBytes = out.cut + err.cut;
  return {
    lines,
    next: `${outLines.end}-${errLines.end}`,
    ended: over && outLines.end === out.start + out.bytes.length && errLines.end === err.start + err.bytes.length,
    ...(cutBytes > 0 ? { cutBytes } : {}),
  };
}
