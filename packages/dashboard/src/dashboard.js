// Slipway dashboard: plain JavaScript, no build step. Every value from the API reaches the page as
// text (never as HTML). The API token is kept in sessionStorage for this tab, never in a URL.
const TOKEN_KEY = 'slipway.token';
const TERMINAL = new Set(['succeeded', 'failed', 'rejected', 'cancelled']);
const main = document.getElementById('main');
const dialog = document.getElementById('confirm');
let me = null;
let poll = null;
// The workflow history comes from Step Functions on AWS (account-wide API quotas), so it is read only
// while its section is open, and at most every HISTORY_REFRESH_MS while the release runs.
const HISTORY_REFRESH_MS = 10_000;
let historyCache = null;
// A running release is followed over server-sent events (GET /v1/releases/{id}/events); only if the
// stream cannot be had (a proxy that buffers, an old server) does the page poll, this often.
const FALLBACK_POLL_MS = 2000;
let feed = null;
const feedFailed = new Set();

function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
    else if (key === 'class') element.className = value;
    else element.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

class ApiError extends Error {
  constructor(status, message, details) {
    super(message);
    this.status = status;
    this.details = details;
  }
}

async function api(method, path, body, { signOutOn401 = true } = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const response = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401 && signOutOn401) {
    signOut('Your session ended: sign in again.');
    throw new ApiError(401, data.error?.message ?? 'unauthorized');
  }
  if (!response.ok) throw new ApiError(response.status, data.error?.message ?? `HTTP ${response.status}`, data.error?.details);
  return data;
}

/**
 * Reads server-sent events from `path` (fetch, not EventSource: EventSource cannot send the token
 * header) and hands each to `onEvent` as `{event, id, data}`; resolves when the stream ends.
 */
async function readEvents(path, signal, onEvent) {
  const response = await fetch(path, {
    headers: { authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}`, accept: 'text/event-stream' },
    signal,
  });
  if (!response.ok || !(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
    throw new ApiError(response.status, `no event stream (HTTP ${response.status})`);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { event: 'message', id: undefined, data: [] };
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const field = line.slice(0, colon);
        const text = line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event.event = text;
        else if (field === 'id') event.id = text;
        else if (field === 'data') event.data.push(text);
      }
      if (event.data.length) onEvent({ ...event, data: JSON.parse(event.data.join('\n')) });
    }
  }
}

function stopFollowing() {
  feed?.controller.abort();
  feed = null;
}

/** Follows a running release's changes over SSE; falls back to polling if the stream fails. */
function followRelease(id) {
  if (feed?.id === id) return;
  stopFollowing();
  const controller = new AbortController();
  const current = { id, controller };
  feed = current;
  const here = () => location.hash === `#/releases/${id}`;
  readEvents(`/v1/releases/${encodeURIComponent(id)}/events`, controller.signal, (event) => {
    if (event.event === 'release' && here()) renderRelease(id, event.data).catch((err) => show(failure(err)));
  })
    .then(() => {
      // The server closes the stream when the release ends, or after a while: reconnect if it still runs.
      if (feed === current) feed = null;
      if (here()) renderRelease(id).catch((err) => show(failure(err)));
    })
    .catch(() => {
      if (controller.signal.aborted) return;
      if (feed === current) feed = null;
      feedFailed.add(id);
      if (here()) renderRelease(id).catch((err) => show(failure(err)));
    });
}

const can = {
  rollback: () => me && ['deployer', 'admin'].includes(me.role),
  approve: () => me && ['approver', 'admin'].includes(me.role),
  cancel: () => me && ['deployer', 'admin'].includes(me.role),
  promote: () => me && ['deployer', 'approver', 'admin'].includes(me.role),
};

const badge = (status) => h('span', { class: `badge s-${status}` }, String(status).replace('_', ' '));
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');
const releaseLink = (id, text) => h('a', { href: `#/releases/${encodeURIComponent(id)}` }, text ?? id);

function show(...nodes) {
  main.replaceChildren(...nodes.flat(Infinity).filter((node) => node !== null && node !== undefined && node !== false));
}

function failure(error) {
  return h('p', { class: 'error', role: 'alert' }, error.message);
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  renderSignIn(message);
}

function renderHeader() {
  document.getElementById('nav').hidden = !me;
  const who = document.getElementById('who');
  who.replaceChildren(
    ...(me ? [`${me.name} (${me.role}) `, h('button', { type: 'button', onclick: () => signOut() }, 'Sign out')] : []),
  );
}

function renderSignIn(message) {
  renderHeader();
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', required: true });
  const error = h('p', { class: 'error', role: 'alert' }, message ?? '');
  const form = h(
    'form',
    {
      class: 'card signin',
      onsubmit: async (event) => {
        event.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, input.value.trim());
        try {
          me = await api('GET', '/v1/me', undefined, { signOutOn401: false });
          route();
        } catch (err) {
          sessionStorage.removeItem(TOKEN_KEY);
          error.textContent = err.status === 401 ? 'That token is not known.' : err.message;
        }
      },
    },
    h('h1', {}, 'Sign in'),
    h('label', { for: 'token' }, 'API token', input),
    h('p', { class: 'muted' }, 'The token stays in this browser tab only.'),
    h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Sign in')),
    error,
  );
  show(form);
  input.focus();
}

/**
 * One environment's hosts against the releases they keep: a row per host, a column per release
 * (newest first); ● where `current` points, ○ a release folder kept. A drifting host's row is red.
 */
function hostGrid(app, envName, hosts, onScan) {
  const expected = hosts[0]?.expected ?? null;
  const named = hosts.flatMap((host) => [host.current?.releaseId, ...host.retained, host.expected].filter(Boolean));
  const releases = [...new Set(named)].sort().reverse();
  const versions = new Map(hosts.filter((host) => host.current).map((host) => [host.current.releaseId, host.current.version]));
  const drifting = hosts.filter((host) => host.drift).length;
  const summary = drifting ? `${drifting} of ${hosts.length} hosts drift` : `${hosts.length} hosts, none drifts`;
  const status = h('p', { class: drifting ? 'error' : 'muted', role: 'status' }, summary);
  return h(
    'div',
    { class: 'host-grid', 'data-environment': envName },
    h(
      'h3',
      {},
      `${envName} hosts `,
      can.rollback() && onScan
        ? h('button', { type: 'button', onclick: (event) => onScan(event.target, status) }, 'Scan hosts')
        : null,
    ),
    status,
    hosts.length === 0
      ? null
      : h(
          'table',
          {},
          h('thead', {}, h('tr', {}, h('th', {}, 'Host'), releases.map((id) => h('th', { class: id === expected ? 'live' : null, title: id }, versions.get(id) ?? id.slice(-6), id === expected ? ' (live)' : '')), h('th', {}, 'Seen'))),
          h(
            'tbody',
            {},
            hosts.map((host) =>
              h(
                'tr',
                { 'data-host': host.host, class: host.drift ? 'drift' : null },
                h('td', {}, host.host, host.drift ? h('span', { class: 'badge s-failed' }, 'drift') : null),
                releases.map((id) => h('td', { class: 'cell' }, host.current?.releaseId === id ? '●' : host.retained.includes(id) ? '○' : '')),
                h('td', { class: 'muted' }, host.checkedAt ? `${when(host.checkedAt)} (${host.source})` : 'never', host.unreachable ? h('div', { class: 'error' }, host.unreachable) : null),
              ),
            ),
          ),
        ),
  );
}

async function hostGrids(view) {
  const app = view.config.name;
  const grids = await Promise.all(
    view.environments.map(async (env) => {
      const path = `/v1/apps/${encodeURIComponent(app)}/environments/${encodeURIComponent(env.name)}/hosts`;
      const listed = await api('GET', path).catch(() => null);
      if (!listed) return null;
      const scan = async (button, status) => {
        button.disabled = true;
        status.textContent = 'Scanning…';
        try {
          const scanned = await api('POST', `${path}/scan`);
          grid.replaceWith(hostGrid(app, env.name, scanned.items, scan));
        } catch (err) {
          status.textContent = err.message;
          button.disabled = false;
        }
      };
      const grid = hostGrid(app, env.name, listed.items, scan);
      return grid;
    }),
  );
  return grids.filter(Boolean);
}

async function renderApps() {
  const { items } = await api('GET', '/v1/apps');
  const views = await Promise.all(items.map((name) => api('GET', `/v1/apps/${encodeURIComponent(name)}`)));
  const grids = new Map(await Promise.all(views.map(async (view) => [view.config.name, await hostGrids(view)])));
  show(
    h('h1', {}, 'Apps'),
    ...views.map((view) =>
      h(
        'section',
        { class: 'card', 'aria-label': view.config.name },
        h('h2', {}, view.config.name, ' ', h('a', { href: `#/releases?app=${encodeURIComponent(view.config.name)}`, class: 'muted' }, 'releases')),
        h(
          'table',
          {},
          h('thead', {}, h('tr', {}, h('th', {}, 'Environment'), h('th', {}, 'Live'), h('th', {}, 'Lock'), h('th', {}, 'Retained'), h('th', {}, ''))),
          h(
            'tbody',
            {},
            view.environments.map((env) =>
              h(
                'tr',
                { 'data-environment': env.name },
                h('td', {}, env.name),
                h('td', {}, env.live ? [releaseLink(env.live.id, env.live.version), h('div', { class: 'muted' }, `since ${when(env.live.since)}`)] : h('span', { class: 'muted' }, 'nothing yet')),
                h('td', {}, env.lock ? ['held by ', releaseLink(env.lock.holder)] : h('span', { class: 'muted' }, 'free')),
                h('td', {}, env.retained.map((r, i) => [i ? ', ' : '', releaseLink(r.id, r.version)])),
                h(
                  'td',
                  {},
                  can.rollback() && env.live && env.retained.some((r) => r.id !== env.live.id)
                    ? h('button', { type: 'button', onclick: () => openRollback(view, env) }, 'Roll back…')
                    : null,
                ),
              ),
            ),
          ),
        ),
        grids.get(view.config.name),
      ),
    ),
  );
}

function openRollback(view, env) {
  const config = view.config.environments.find((e) => e.name === env.name);
  const candidates = env.retained.filter((r) => r.id !== env.live.id);
  const select = h('select', { id: 'rollback-target' }, candidates.map((r) => h('option', { value: r.id }, `${r.version} (${r.id})`)));
  const moves = h('ul', { id: 'rollback-moves' });
  const error = h('p', { class: 'error', role: 'alert' });
  const describe = () => {
    const target = candidates.find((r) => r.id === select.value);
    const hosts = 'hosts' in config.targets ? config.targets.hosts : null;
    moves.replaceChildren(
      ...(hosts
        ? hosts.map((host) => h('li', {}, `${host}: ${env.live.version} → ${target.version}`))
        : [h('li', {}, `every host tagged ${Object.entries(config.targets.tags).map(([k, v]) => `${k}=${v}`).join(', ')}: ${env.live.version} → ${target.version}`)]),
    );
  };
  select.addEventListener('change', describe);
  describe();
  const confirm = h(
    'button',
    {
      class: 'danger',
      type: 'button',
      onclick: async () => {
        confirm.disabled = true;
        try {
          const started = await api('POST', `/v1/apps/${encodeURIComponent(view.config.name)}/environments/${encodeURIComponent(env.name)}/rollback`, {
            toRelease: select.value,
          });
          dialog.close();
          location.hash = `#/releases/${started.id}`;
        } catch (err) {
          error.textContent = err.message;
          confirm.disabled = false;
        }
      },
    },
    'Roll back now',
  );
  dialog.replaceChildren(
    h('h2', { id: 'confirm-title' }, `Roll back ${view.config.name} ${env.name}`),
    h('label', { for: 'rollback-target' }, 'Switch back to', select),
    h('p', {}, 'These hosts will move, batch by batch, with health checks:'),
    moves,
    error,
    h('div', { class: 'actions' }, confirm, h('button', { type: 'button', onclick: () => dialog.close() }, 'Keep it as it is')),
  );
  dialog.showModal();
}

async function renderReleases(params) {
  const query = new URLSearchParams();
  for (const key of ['app', 'environment', 'cursor']) if (params.get(key)) query.set(key, params.get(key));
  query.set('limit', '25');
  const [{ items: apps }, page] = await Promise.all([api('GET', '/v1/apps'), api('GET', `/v1/releases?${query}`)]);
  const appSelect = h('select', { name: 'app', id: 'filter-app' }, h('option', { value: '' }, 'all apps'), apps.map((a) => h('option', { value: a, selected: a === params.get('app') }, a)));
  const envInput = h('input', { name: 'environment', id: 'filter-environment', value: params.get('environment') ?? '', placeholder: 'any' });
  const filters = h(
    'form',
    {
      class: 'inline',
      onsubmit: (event) => {
        event.preventDefault();
        const next = new URLSearchParams();
        if (appSelect.value) next.set('app', appSelect.value);
        if (envInput.value.trim()) next.set('environment', envInput.value.trim());
        location.hash = `#/releases?${next}`;
      },
    },
    h('label', { for: 'filter-app' }, 'App', appSelect),
    h('label', { for: 'filter-environment' }, 'Environment', envInput),
    h('button', { type: 'submit' }, 'Filter'),
  );
  const next = new URLSearchParams(query);
  if (page.nextCursor) next.set('cursor', page.nextCursor);
  show(
    h('h1', {}, 'Releases'),
    filters,
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, ['Release', 'App', 'Version', 'Status', 'Opened by', 'Opened'].map((t) => h('th', {}, t)))),
      h(
        'tbody',
        {},
        page.items.length
          ? page.items.map((r) =>
              h(
                'tr',
                {},
                h('td', { class: 'mono' }, releaseLink(r.id), r.rollback ? h('span', { class: 'muted' }, ' rollback') : null),
                h('td', {}, r.app),
                h('td', {}, r.version),
                h('td', {}, badge(r.status)),
                h('td', {}, r.openedBy),
                h('td', {}, when(r.createdAt)),
              ),
            )
          : h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No releases.')),
      ),
    ),
    page.nextCursor ? h('p', {}, h('a', { href: `#/releases?${next}` }, 'Older releases →')) : null,
  );
}

function timeline(release, env) {
  const events = release.events.filter((e) => e.data?.environment === env.environment);
  const has = (type, extra = () => true) => events.some((e) => e.type === type && extra(e));
  const step = (label, state) => h('span', { class: `step s-${state}` }, label);
  const steps = [step('Enter', has('environment.entered') ? 'done' : 'pending')];
  if (!release.rollback) {
    steps.push(step('Distribute', has('distribute.failed') ? 'failed' : has('distribute.succeeded') ? 'done' : has('distribute.started') ? 'running' : 'pending'));
  }
  const config = release.config.environments.find((e) => e.name === env.environment);
  if (config?.approval) {
    const gate = release.approvals.find((a) => a.environment === env.environment);
    const state = !gate ? 'pending' : gate.status === 'approved' ? 'done' : gate.status === 'pending' ? 'running' : 'failed';
    steps.push(step(`Approval${gate ? ` (${gate.status.replace('_', ' ')})` : ''}`, state));
  }
  const batches = [...new Set(events.filter((e) => e.type.startsWith('switch.')).map((e) => e.data.batchIndex))].sort((a, b) => a - b);
  for (const index of batches) {
    const on = (type) => has(type, (e) => e.data.batchIndex === index);
    steps.push(step(`Batch ${index + 1}`, on('switch.failed') ? 'failed' : on('switch.succeeded') ? 'done' : 'running'));
  }
  if (has('revert.planned')) steps.push(step('Revert', has('revert.succeeded') || has('revert.failed') ? 'done' : 'running'));
  steps.push(step('Live', has('environment.live') ? 'done' : env.status === 'failed' || env.status === 'rejected' ? 'failed' : 'pending'));
  return h('div', { class: 'timeline', 'aria-label': `${env.environment} progress` }, steps.flatMap((s, i) => (i ? [h('span', { class: 'arrow', 'aria-hidden': 'true' }, '→'), s] : [s])));
}

// What a host prints, for each host whose "Live output" is open: kept across the page's re-renders
// (every release update redraws it), dropped when the page changes.
const LIVE_LINES_KEPT = 2000;
const liveOutput = new Map();

function stopLiveOutput() {
  for (const entry of liveOutput.values()) entry.controller.abort();
  liveOutput.clear();
}

function liveText(key) {
  const entry = liveOutput.get(key);
  if (!entry) return '';
  return entry.lines.join('\n') || (entry.done ? 'Nothing was printed.' : 'Waiting for the host to print…');
}

function showLiveOutput(key) {
  const pre = [...main.querySelectorAll('pre[data-live]')].find((node) => node.dataset.live === key);
  if (!pre) return;
  pre.textContent = liveText(key);
  pre.scrollTop = pre.scrollHeight;
}

/**
 * Follows a host's output over SSE (GET /v1/releases/{id}/hosts/{host}/output); where the answer is
 * not a stream (API Gateway buffers), by long polls of the same route.
 */
function followHostOutput(releaseId, host) {
  const key = `${releaseId}/${host}`;
  if (liveOutput.has(key)) return;
  const entry = { lines: [], controller: new AbortController(), done: false };
  liveOutput.set(key, entry);
  const path = `/v1/releases/${encodeURIComponent(releaseId)}/hosts/${encodeURIComponent(host)}/output`;
  const add = (line) => {
    entry.lines.push(`${line.step} ${line.stream === 'stderr' ? '!' : '|'} ${line.text}`);
    if (entry.lines.length > LIVE_LINES_KEPT) entry.lines.splice(0, entry.lines.length - LIVE_LINES_KEPT);
  };
  const longPoll = async () => {
    let after = '';
    while (!entry.controller.signal.aborted) {
      const view = await api('GET', `${path}?waitSeconds=20${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      view.lines.forEach(add);
      after = view.next;
      entry.done = view.ended;
      showLiveOutput(key);
      if (view.ended) return;
    }
  };
  readEvents(path, entry.controller.signal, (event) => {
    if (event.event === 'line') add(event.data);
    if (event.event === 'cut') entry.lines.push(`[${event.data.bytes} earlier bytes cut]`);
    if (event.event === 'end') entry.done = true;
    showLiveOutput(key);
  })
    .catch((error) => (entry.controller.signal.aborted ? undefined : error instanceof ApiError ? longPoll() : Promise.reject(error)))
    .catch((error) => {
      entry.lines.push(`[the output could not be followed: ${error.message}]`);
      showLiveOutput(key);
    });
}

function hostTable(release, env, open) {
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, h('th', {}, 'Host'), h('th', {}, 'Status'), h('th', {}, 'Steps'))),
    h(
      'tbody',
      {},
      env.hosts.map((host) =>
        h(
          'tr',
          { 'data-host': host.host },
          h('td', {}, host.host),
          h('td', {}, badge(host.status)),
          h(
            'td',
            {},
            Object.entries(host.steps).map(([name, output]) => {
              const key = `${env.environment}/${host.host}/${name}`;
              return h(
                'details',
                { 'data-key': key, open: open.has(key) },
                h('summary', {}, `${name}: exit ${output.exitCode ?? '—'}`),
                output.stdout ? h('pre', {}, output.stdout) : null,
                output.stderr ? h('pre', {}, output.stderr) : null,
              );
            }),
            liveSection(release, env, host, open),
          ),
        ),
      ),
    ),
  );
}

/** The host's output as it is printed, while the section is open. */
function liveSection(release, env, host, open) {
  const key = `${env.environment}/${host.host}/live`;
  const liveKey = `${release.id}/${host.host}`;
  if (open.has(key)) followHostOutput(release.id, host.host);
  return h(
    'details',
    {
      'data-key': key,
      open: open.has(key),
      ontoggle: (event) => {
        if (!event.target.open) return;
        followHostOutput(release.id, host.host);
        showLiveOutput(liveKey);
      },
    },
    h('summary', {}, 'Live output'),
    h('pre', { 'data-live': liveKey, class: 'live' }, liveText(liveKey)),
  );
}

function approvalSection(release) {
  if (!release.approvals.length) return null;
  return [
    h('h2', {}, 'Approvals'),
    ...release.approvals.map((gate) => {
      const reason = h('input', { id: `reason-${gate.environment}`, maxlength: 2000 });
      const error = h('p', { class: 'error', role: 'alert' });
      const decide = (decision) => async () => {
        try {
          await api('POST', `/v1/releases/${release.id}/approvals`, { environment: gate.environment, decision, reason: reason.value });
          route();
        } catch (err) {
          error.textContent = err.message;
        }
      };
      return h(
        'div',
        { class: 'card', 'data-gate': gate.environment },
        h('p', {}, `${gate.environment}: `, badge(gate.status), ` — ${gate.required} of ${gate.approvers.length} needed (${gate.approvers.join(', ')}); expires ${when(gate.expiresAt)}`),
        gate.decisions.length
          ? h('ul', {}, gate.decisions.map((d) => h('li', {}, `${d.approver} ${d.decision === 'approve' ? 'approved' : 'rejected'} at ${when(d.at)} via ${d.via}${d.reason ? `: ${d.reason}` : ''}`)))
          : h('p', { class: 'muted' }, 'No decision yet.'),
        gate.status === 'pending' && can.approve()
          ? h(
              'div',
              { class: 'actions' },
              h('label', { for: `reason-${gate.environment}` }, 'Reason (optional)', reason),
              h('button', { class: 'approve', type: 'button', onclick: decide('approve') }, 'Approve'),
              h('button', { class: 'danger', type: 'button', onclick: decide('reject') }, 'Reject'),
            )
          : null,
        error,
      );
    }),
  ];
}

async function workflowHistory(id, running) {
  const fresh = historyCache?.id === id && (!running || Date.now() - historyCache.at < HISTORY_REFRESH_MS);
  // The promise is cached, not its answer: renders running at once (a click and a live update) share one read.
  if (!fresh) historyCache = { id, at: Date.now(), data: api('GET', `/v1/releases/${encodeURIComponent(id)}/history`).catch(() => null) };
  return historyCache.data;
}

async function renderRelease(id, pushed) {
  const open = new Set([...main.querySelectorAll('details[open]')].map((d) => d.dataset.key));
  const release = pushed ?? (await api('GET', `/v1/releases/${encodeURIComponent(id)}`));
  const running = !TERMINAL.has(release.status);
  const history = open.has('history') ? await workflowHistory(id, running) : null;
  const cancelError = h('p', { class: 'error', role: 'alert' });
  const promoteError = h('p', { class: 'error', role: 'alert' });
  const promote = (full) => async () => {
    const what = full ? 'Promote and skip every pause still ahead? The release then runs to its end.' : 'Promote this release to its next canary step?';
    if (!window.confirm(what)) return;
    try {
      await api('POST', `/v1/releases/${release.id}/promote`, full ? { full: true } : {});
      route();
    } catch (err) {
      promoteError.textContent = err.message;
    }
  };
  show(
    h('h1', {}, `${release.app} ${release.version} `, badge(release.status)),
    h(
      'div',
      { class: 'card' },
      release.rollback ? h('p', {}, `Rollback of ${release.rollback.environment} from ${release.rollback.from.version} to ${release.version}.`) : null,
      h('p', {}, `Opened by ${release.openedBy} at ${when(release.createdAt)}. Release `, h('span', { class: 'mono' }, release.id), '.'),
      release.description ? h('pre', {}, release.description) : null,
      release.reason ? h('p', { class: 'error' }, `Reason: ${release.reason}`) : null,
      release.queuePosition
        ? h('p', { class: 'queue-position' }, `Waiting in line for ${release.queuedFor}: position ${release.queuePosition} (1 is next).`)
        : null,
      release.pause
        ? h(
            'div',
            { class: 'pause' },
            h(
              'p',
              {},
              `Paused in ${release.pause.environment} after batch ${release.pause.batch} since ${when(release.pause.pausedAt)}`,
              release.pause.resumeAt ? `; goes on by itself at ${when(release.pause.resumeAt)}.` : '; waits for someone to promote it.',
            ),
            can.promote()
              ? h(
                  'div',
                  { class: 'actions' },
                  h('button', { type: 'button', onclick: promote(false) }, 'Promote'),
                  h('button', { type: 'button', onclick: promote(true) }, 'Promote to the end'),
                  promoteError,
                )
              : null,
          )
        : null,
      running && can.cancel()
        ? h(
            'div',
            { class: 'actions' },
            h(
              'button',
              {
                class: 'danger',
                type: 'button',
                onclick: async () => {
                  if (!window.confirm('Cancel this release? Hosts already switched in the current environment are put back.')) return;
                  try {
                    await api('POST', `/v1/releases/${release.id}/cancel`);
                    route();
                  } catch (err) {
                    cancelError.textContent = err.message;
                  }
                },
              },
              'Cancel release',
            ),
            cancelError,
          )
        : null,
      running ? h('p', { class: 'muted' }, 'Updating live…') : null,
    ),
    approvalSection(release),
    ...release.environments.flatMap((env) => [
      h('h2', {}, `${env.environment} `, badge(env.status), ' ', h('a', { class: 'small', href: `#/releases/${encodeURIComponent(release.id)}/diff/${encodeURIComponent(env.environment)}` }, 'What changes')),
      timeline(release, env),
      env.hosts.length ? hostTable(release, env, open) : h('p', { class: 'muted' }, 'No host has started yet.'),
    ]),
    h('h2', {}, 'Events'),
    h(
      'table',
      {},
      h('tbody', {}, release.events.map((e) => h('tr', {}, h('td', {}, when(e.at)), h('td', { class: 'mono' }, e.type), h('td', {}, e.actor), h('td', { class: 'mono' }, e.data ? JSON.stringify(e.data) : '')))),
    ),
    h(
      'details',
      {
        'data-key': 'history',
        open: open.has('history'),
        ontoggle: (event) => event.target.open && !history && renderRelease(id).catch((err) => show(failure(err))),
      },
      h('summary', {}, history ? `Workflow history (${history.status}, ${history.events.length} events)` : 'Workflow history'),
      history
        ? h('table', {}, h('tbody', {}, history.events.map((e) => h('tr', {}, h('td', {}, when(e.at)), h('td', { class: 'mono' }, e.type), h('td', {}, e.state ?? ''), h('td', {}, e.index ?? ''), h('td', { class: 'mono' }, e.error ?? '')))))
        : h('p', { class: 'muted' }, open.has('history') ? 'The workflow history is not available.' : 'Loading…'),
    ),
  );
  if (!running) stopFollowing();
  else if (!feedFailed.has(id)) followRelease(id);
  else {
    clearTimeout(poll);
    poll = setTimeout(() => location.hash === `#/releases/${id}` && renderRelease(id).catch((err) => show(failure(err))), FALLBACK_POLL_MS);
  }
}

/** Every file a release adds, removes and changes in one environment (the approval mail links here). */
async function renderDiff(id, environment) {
  const diff = await api('GET', `/v1/releases/${encodeURIComponent(id)}/diff?environment=${encodeURIComponent(environment)}`);
  const from = diff.from ? diff.from.version : 'nothing (first release here)';
  const list = (title, paths) =>
    h('section', { 'aria-label': title, class: 'card' }, h('h2', {}, `${title} (${paths.length})`), paths.length ? h('ul', { class: 'paths mono' }, paths.map((path) => h('li', {}, path))) : h('p', { class: 'muted' }, 'none'));
  show(
    h('h1', {}, `${diff.to.version} in ${diff.environment}: what changes`),
    h('p', {}, `From ${from} to ${diff.to.version}: ${diff.files.added.length} added, ${diff.files.removed.length} removed, ${diff.files.changed.length} changed. `, releaseLink(id, 'Back to the release'), '.'),
    diff.complete ? null : h('p', { class: 'error', role: 'alert' }, `Incomplete: ${diff.reason}`),
    list('Added', diff.files.added),
    list('Removed', diff.files.removed),
    list('Changed', diff.files.changed),
  );
}

async function route() {
  clearTimeout(poll);
  if (feed && location.hash !== `#/releases/${feed.id}`) stopFollowing();
  if (![...liveOutput.keys()].some((key) => location.hash === `#/releases/${key.split('/')[0]}`)) stopLiveOutput();
  if (!sessionStorage.getItem(TOKEN_KEY)) return renderSignIn();
  try {
    me ??= await api('GET', '/v1/me');
    renderHeader();
    const [path, search] = (location.hash.slice(1) || '/apps').split('?');
    const params = new URLSearchParams(search ?? '');
    const release = /^\/releases\/([0-9a-z-]+)$/.exec(path);
    const diff = /^\/releases\/([0-9a-z-]+)\/diff\/([^/]+)$/.exec(path);
    if (release) await renderRelease(release[1]);
    else if (diff) await renderDiff(diff[1], decodeURIComponent(diff[2]));
    else if (path === '/releases') await renderReleases(params);
    else await renderApps();
  } catch (error) {
    if (error.status !== 401) show(failure(error));
  }
}

window.addEventListener('hashchange', route);
route();
