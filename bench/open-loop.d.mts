/** The open loop bench/api.ts's client and floors both run (open-loop.mjs says how). */
export function runOpenLoop(
  rate: number,
  seconds: number,
  send: (i: number) => Promise<string | number>,
): Promise<{ latencies: number[]; tally: Record<string, number>; elapsed: number }>;
