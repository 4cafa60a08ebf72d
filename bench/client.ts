/** The API calls every bench makes against a running dev server, with its admin token. */
export function benchClient(server: { url: string; adminToken: string }, pollMs: number) {
  const headers = { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' };
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${server.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const parsed = (await response.json()) as any;
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(parsed)}`);
    return parsed;
  };
  /** Polls the release every `pollMs` until it has ended, and answers it. */
  const waitForEnd = async (id: string) => {
    for (;;) {
      const release = await call('GET', `/v1/releases/${id}`);
      if (['succeeded', 'failed', 'rejected', 'cancelled'].includes(release.status)) return release;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  };
  return { headers, call, waitForEnd };
}
