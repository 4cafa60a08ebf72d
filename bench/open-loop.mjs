// The open loop of bench/api.ts, for its client process (open-loop-client.mjs) and its floors alike,
// so that both are timed the same way: `send(i)` `rate` times a second for `seconds`, each at its
// scheduled time whatever the answers, each latency counted from that scheduled time (a server
// that falls behind cannot hide it). Answers the latencies (sorted, failures included), a tally of
// what `send` answered or, for what it threw, `error <message>`, and the seconds it all took.
export async function runOpenLoop(rate, seconds, send) {
  const count = Math.round(rate * seconds);
  const latencies = [];
  const tally = {};
  const started = performance.now();
  const pending = [];
  for (let i = 0; i < count; i++) {
    const scheduled = started + (i * 1000) / rate;
    const wait = scheduled - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const settle = (answer) => {
      latencies.push(performance.now() - scheduled);
      tally[answer] = (tally[answer] ?? 0) + 1;
    };
    pending.push(
      send(i).then(
        (answer) => settle(String(answer)),
        (error) => settle(`error ${error instanceof Error ? error.message : String(error)}`),
      ),
    );
  }
  await Promise.all(pending);
  latencies.sort((a, b) => a - b);
  return { latencies, tally, elapsed: (performance.now() - started) / 1000 };
}
