/** A server-sent events reader for tests and benches: fetch, then one event at a time. */
export interface SseEvent {
  event: string;
  id?: string;
  data: any;
}

export interface SseReader {
  status: number;
  contentType: string;
  /** The next event, or undefined when the stream ended; fails after `timeoutMs`. */
  next(timeoutMs?: number): Promise<SseEvent | undefined>;
  /** Reads until an event matches (returning it) or the stream ends (undefined). */
  until(match: (event: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent | undefined>;
  close(): void;
}

export async function openSse(url: string, token: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', ...headers },
    signal: controller.signal,
  });
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let done = false;

  function parse(block: string): SseEvent | undefined {
    const event: SseEvent = { event: 'message', data: undefined };
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':') || line === '') continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event.event = value;
      else if (field === 'id') event.id = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length === 0) return undefined;
    const text = data.join('\n');
    try {
      event.data = JSON.parse(text);
    } catch {
      event.data = text;
    }
    return event;
  }

  async function next(timeoutMs = 60_000): Promise<SseEvent | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = parse(block);
        if (event) return event;
        continue;
      }
      if (done) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no server-sent event within ${timeoutMs} ms`);
      let timer: NodeJS.Timeout | undefined;
      const read = await Promise.race([
        reader.read(),
        new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), left); }),
      ]);
      clearTimeout(timer);
      if (read === 'timeout') throw new Error(`no server-sent event within ${timeoutMs} ms`);
      if (read.done) done = true;
      else buffer += decoder.decode(read.value, { stream: true });
    }
  }

  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    next,
    async until(match, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const event = await next(Math.max(1, deadline - Date.now()));
        if (!event || match(event)) return event;
      }
    },
    close() {
      controller.abort();
    },
  };
}
