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
    // A handler is a property, not a listener, so that patching a page in place hands over the new render's handlers.
    if (key.startsWith('on')) element[key] = value;
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

const present = (nodes) => nodes.flat(Infinity).filter((node) => node !== null && node !== undefined && node !== false);

/** Shows a new page: everything in `main` is replaced. */
function show(...nodes) {
  delete main.dataset.page;
  main.replaceChildren(...present(nodes));
}

/**
 * Redraws the page `page` already on screen from a fresh render, in place: a node that is already
 * there stays there (same tag and, where it has one, same key) and only what differs changes. So what
 * the operator is doing on the page survives a live update: a typed value, the focus and selection, a
 * mouse button pressed on a button, an open section, a scroll position. Another page is replaced.
 */
function showInPlace(page, ...nodes) {
  if (main.dataset.page !== page) {
    show(...nodes);
    main.dataset.page = page;
    return;
  }
  patchChildren(main, present(nodes));
}

// Where siblings may come and go (hosts, steps, events, gates, sections), they are matched by these:
// an unkeyed node is matched by its place, so a section that appears would otherwise take the place
// (and the node) of the one after it.
const KEY_ATTRIBUTES = ['id', 'data-key', 'data-gate', 'data-host', 'data-node', 'data-environment'];
const HANDLERS = ['onclick', 'onsubmit', 'ontoggle', 'onchange'];

function keyOf(node) {
  if (node.nodeType !== Node.ELEMENT_NODE) return null;
  for (const name of KEY_ATTRIBUTES) if (node.hasAttribute(name)) return `${name}=${node.getAttribute(name)}`;
  return null;
}

const sameKind = (a, b) => a.nodeType === b.nodeType && a.nodeName === b.nodeName && keyOf(a) === keyOf(b);
// Whether a section is open is the operator's to say once it is on the page: a redraw never closes it.
const ownedByUser = (element, attribute) => attribute === 'open' && element.nodeName === 'DETAILS';

function patchChildren(parent, wanted) {
  const keyed = new Map();
  for (const node of parent.childNodes) if (keyOf(node)) keyed.set(keyOf(node), node);
  let cursor = parent.firstChild;
  const drop = (node) => {
    const next = node.nextSibling;
    node.remove();
    return next;
  };
  for (const next of wanted) {
    const key = keyOf(next);
    let old = key ? keyed.get(key) : cursor && !keyOf(cursor) && sameKind(cursor, next) ? cursor : null;
    if (key) keyed.delete(key);
    if (old && !sameKind(old, next)) old = null;
    if (!old) {
      parent.insertBefore(next, cursor);
      continue;
    }
    // The unkeyed nodes before a kept one go rather than it moving: a moved node loses the focus and a press.
    while (cursor && cursor !== old && !keyOf(cursor)) cursor = drop(cursor);
    if (cursor === old) cursor = old.nextSibling;
    else parent.insertBefore(old, cursor);
    patch(old, next);
  }
  while (cursor) cursor = drop(cursor);
}

function patch(old, next) {
  if (old.nodeType !== Node.ELEMENT_NODE) {
    if (old.nodeValue !== next.nodeValue) old.nodeValue = next.nodeValue;
    return;
  }
  for (const { name, value } of [...next.attributes]) {
    if (old.getAttribute(name) !== value && !ownedByUser(old, name)) old.setAttribute(name, value);
  }
  for (const { name } of [...old.attributes]) if (!next.hasAttribute(name) && !ownedByUser(old, name)) old.removeAttribute(name);
  for (const handler of HANDLERS) if (old[handler] !== next[handler]) old[handler] = next[handler];
  patchChildren(old, [...next.childNodes]);
}

// An action's failure (approve, cancel, promote) by release and action: kept across live updates,
// which would otherwise wipe it, until the action is tried again.
const actionErrors = new Map();

function actionError(key) {
  return h('p', { class: 'error', role: 'alert', 'data-key': `error/${key}` }, actionErrors.get(key) ?? '');
}

function reportActionError(key, message) {
  if (message) actionErrors.set(key, message);
  else actionErrors.delete(key);
  const node = [...main.querySelectorAll('p[data-key]')].find((p) => p.dataset.key === `error/${key}`);
  if (node) node.textContent = message ?? '';
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
                h('td', {}, releaseLink(r.id, releaseTitle(r)), h('div', { class: 'mono muted' }, r.id)),
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

/** "Rollback of web production to 1.0.0" for a rollback, "web 1.1.0" for a release. */
function releaseTitle(release) {
  return release.rollback ? `Rollback of ${release.app} ${release.rollback.environment} to ${release.version}` : `${release.app} ${release.version}`;
}

const ENDED = new Set(['succeeded', 'failed', 'rejected', 'cancelled']);

/** "0.4 s", "12 s", "3 min 4 s", "10 min", "2 h 5 min". */
function duration(ms) {
  if (!(ms >= 0)) return '';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const [big, small] = seconds < 3600 ? [`${Math.floor(seconds / 60)} min`, `${seconds % 60} s`] : [`${Math.floor(seconds / 3600)} h`, `${Math.floor((seconds % 3600) / 60)} min`];
  return small.startsWith('0 ') ? big : `${big} ${small}`;
}

/** A configured length: "6 s", "10 min", "1 h". */
const span = (seconds) => (seconds < 60 ? `${seconds} s` : duration(seconds * 1000));

const clockTime = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');

/**
 * The start and duration of a node: ended nodes say how long they took; a running one says for how
 * long it has run, and a bake or timed pause how long it has left (both kept current by the page's one timer).
 */
function nodeTime({ startedAt, endedAt, until, at }) {
  if (at) return h('div', { class: 'node-time' }, `at ${clockTime(at)}`);
  if (!startedAt) return null;
  const parts = [`started ${clockTime(startedAt)}`];
  if (endedAt) parts.push(`took ${duration(Date.parse(endedAt) - Date.parse(startedAt))}`);
  return h(
    'div',
    { class: 'node-time' },
    parts.join(' · '),
    !endedAt && !until ? [' · ', h('span', { 'data-since': startedAt }, `for ${duration(Date.now() - Date.parse(startedAt))}`)] : null,
    until ? [' · ', h('span', { class: 'countdown', 'data-until': until }, countdown(until))] : null,
  );
}

function countdown(until) {
  const left = Date.parse(until) - Date.now();
  return left > 0 ? `${duration(left)} left` : 'ending…';
}

// One timer for the whole page: the countdowns and running times move between the feed's updates.
setInterval(() => {
  for (const node of document.querySelectorAll('[data-until]')) node.textContent = countdown(node.dataset.until);
  for (const node of document.querySelectorAll('[data-since]')) node.textContent = `for ${duration(Date.now() - Date.parse(node.dataset.since))}`;
}, 1000);

/** One box of the graph: what it is, its state, when it started and for how long, and any detail. */
function graphNode(key, title, state, time = {}, ...detail) {
  return h(
    'li',
    { class: `node s-${state.state}`, 'data-node': key, 'data-state': state.state },
    h('div', { class: 'node-title' }, title),
    h('div', { class: 'node-state' }, h('span', { class: `badge s-${state.state}` }, state.state), state.also ? h('span', { class: `badge s-${state.also}` }, state.also.replace('_', ' ')) : null, state.note ? ` ${state.note}` : ''),
    nodeTime(time),
    ...detail,
  );
}

/**
 * One environment's path as a flow of boxes: enter (and its line), distribute, the approval gate,
 * every planned batch (from the start: the plan is known before any batch runs), each batch's bake
 * and canary pause, and live. A node never reached once the environment ended is `skipped`.
 */
function environmentGraph(release, env) {
  const events = release.events.filter((e) => e.data?.environment === env.environment);
  const find = (type, match = () => true) => events.find((e) => e.type === type && match(e));
  const last = (type, match = () => true) => events.findLast((e) => e.type === type && match(e));
  const ended = ENDED.has(env.status) || TERMINAL.has(release.status);
  const notRun = () => ({ state: ended ? 'skipped' : 'pending' });
  const plan = release.plan?.find((p) => p.name === env.environment);
  const config = release.config.environments.find((e) => e.name === env.environment);
  const nodes = [];

  // Enter: at once, or after waiting in the environment's line.
  const queued = find('environment.queued');
  const entered = find('environment.entered');
  const enterState = entered ? { state: 'succeeded' } : queued && !ended ? { state: 'waiting', note: `in line, position ${last('environment.queued').data.position}` } : notRun();
  nodes.push(graphNode('enter', 'Enter', enterState, { startedAt: (queued ?? entered)?.at, endedAt: entered?.at }));

  if (!release.rollback) {
    const started = find('distribute.started');
    const done = find('distribute.succeeded') ?? find('distribute.failed');
    const state = done ? { state: done.type === 'distribute.failed' ? 'failed' : 'succeeded' } : started ? (ended ? { state: 'skipped' } : { state: 'running' }) : notRun();
    nodes.push(graphNode('distribute', 'Distribute', state, { startedAt: started?.at, endedAt: done?.at }, started ? h('div', { class: 'node-detail' }, `${started.data.hosts} ${started.data.hosts === 1 ? 'host' : 'hosts'}`) : null));
  }

  if (plan?.approval ?? config?.approval) {
    const gate = release.approvals.find((a) => a.environment === env.environment);
    const settled = gate && gate.status !== 'pending' ? last(`approval.${gate.status}`) : undefined;
    const state = !gate
      ? notRun()
      : { pending: { state: ended ? 'skipped' : 'waiting' }, approved: { state: 'succeeded' }, rejected: { state: 'failed', note: 'rejected' }, timed_out: { state: 'failed', note: 'timed out' } }[gate.status] ?? { state: 'skipped' };
    nodes.push(
      graphNode(
        'approval',
        'Approval',
        state,
        { startedAt: gate?.requestedAt, endedAt: settled?.at },
        gate ? h('div', { class: 'node-detail' }, `${gate.required} of ${gate.approvers.length}: ${gate.approvers.join(', ')}`) : null,
      ),
    );
  }

  if (!plan) {
    nodes.push(graphNode('batches', 'Batches', { state: ended ? 'skipped' : 'pending', note: ended ? '' : 'being planned' }));
  } else {
    const hostStatus = new Map(env.hosts.map((host) => [host.host, host.status]));
    const count = plan.batches.length;
    const live = find('environment.live');
    // Whether anything after batch `index` has started: what follows it ran (or was skipped).
    const laterStarted = (index) => events.some((e) => e.type === 'switch.started' && e.data.batchIndex > index) || Boolean(live);
    plan.batches.forEach((hosts, index) => {
      const on = (type) => find(type, (e) => e.data.batchIndex === index);
      const started = on('switch.started');
      const done = on('switch.succeeded') ?? on('switch.failed');
      const reverting = on('revert.started');
      const reverted = on('revert.succeeded');
      const putBack = reverted ? 'reverted' : on('revert.failed') ? 'revert_failed' : reverting && !ended ? 'reverting' : undefined;
      let state;
      if (done?.type === 'switch.failed') state = { state: 'failed', also: putBack };
      else if (reverted) state = { state: 'reverted' };
      else if (done) state = { state: 'succeeded', also: putBack };
      else if (started) state = { state: ended ? 'skipped' : 'running' };
      else state = notRun();
      const shown = hosts.slice(0, 12);
      nodes.push(
        graphNode(
          `batch-${index + 1}`,
          `Batch ${index + 1} of ${count}`,
          state,
          { startedAt: started?.at, endedAt: done?.at },
          h(
            'div',
            { class: 'node-hosts' },
            shown.map((host) => h('span', { class: `host s-${hostStatus.get(host) ?? 'pending'}`, title: hostStatus.get(host) ?? 'pending' }, host)),
            hosts.length > shown.length ? h('span', { class: 'muted' }, ` +${hosts.length - shown.length} more`) : null,
          ),
        ),
      );

      if (plan.bakeSeconds > 0) {
        const bake = release.bakes?.find((b) => b.environment === env.environment && b.batch === index + 1);
        let bakeState;
        if (!bake) bakeState = done?.type === 'switch.failed' ? { state: 'skipped' } : notRun();
        else if (laterStarted(index)) bakeState = { state: 'succeeded' };
        else if (ended) bakeState = { state: env.status === 'failed' ? 'failed' : 'skipped' };
        else bakeState = { state: 'running', note: 'baking' };
        const baking = bakeState.state === 'running';
        nodes.push(
          graphNode(`bake-${index + 1}`, `Bake ${span(plan.bakeSeconds)}`, bakeState, {
            startedAt: bake?.startedAt,
            // A bake runs its whole time (a promote does not cut it); one that failed ended with its environment.
            endedAt: !bake || baking ? undefined : bakeState.state === 'succeeded' ? bake.until : env.endedAt,
            until: baking ? bake.until : undefined,
          }),
        );
      }

      const pause = plan.pauses?.find((p) => p.afterBatch === index);
      if (pause) {
        const paused = find('release.paused', (e) => e.data.batch === index + 1);
        const goneOn = find('release.resumed', (e) => e.data.batch === index + 1) ?? find('release.promoted', (e) => e.data.batch === index + 1);
        let pauseState;
        if (goneOn) pauseState = { state: 'succeeded', note: goneOn.type === 'release.promoted' ? `promoted by ${goneOn.actor}` : '' };
        else if (paused && !ended) pauseState = { state: 'waiting', note: pause.seconds ? '' : 'for a promote' };
        else if (laterStarted(index)) pauseState = { state: 'skipped' };
        else pauseState = notRun();
        const resumeAt = pauseState.state === 'waiting' && release.pause?.environment === env.environment ? release.pause.resumeAt : undefined;
        nodes.push(
          graphNode(`pause-${index + 1}`, pause.seconds ? `Pause ${span(pause.seconds)}` : 'Pause', pauseState, {
            startedAt: paused?.at,
            endedAt: goneOn?.at,
            until: resumeAt,
          }),
        );
      }
    });
    const liveState = live ? { state: 'succeeded' } : ended ? { state: env.status === 'succeeded' ? 'succeeded' : 'skipped' } : { state: 'pending' };
    nodes.push(graphNode('live', 'Live', liveState, { at: live?.at }));
  }

  return h(
    'section',
    { class: 'lane', 'data-environment': env.environment, 'aria-label': `${env.environment} workflow` },
    h('h3', {}, env.environment, ' ', badge(env.status)),
    h('ol', { class: 'flow' }, nodes),
  );
}

/**
 * An event as a sentence: "Batch 2 of 3 in production switched 4 hosts", "alice approved production",
 * "host web-3 failed at switch: exit 24 …". Unknown types still read: "<type> by <actor>".
 */
function sentence(event, release) {
  const d = event.data ?? {};
  const env = d.environment;
  const plan = release.plan?.find((p) => p.name === env);
  const batchCount = plan?.batches.length ?? release.events.find((e) => e.type === 'release.planned')?.data?.environments?.find((e) => e.name === env)?.batches;
  const batch = (index) => `Batch ${index + 1}${batchCount ? ` of ${batchCount}` : ''} in ${env}`;
  const hostsIn = (index) => plan?.batches[index]?.length ?? release.events.find((e) => e.type.endsWith('.started') && e.data?.environment === env && e.data?.batchIndex === index)?.data?.hosts;
  const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
  const failedHosts = (kind) => {
    const hosts = d.failedHosts ?? [];
    const described = hosts.map((name, index) => {
      const step = release.environments.find((e) => e.environment === env)?.hosts.find((host) => host.host === name)?.steps?.[kind];
      // What the host printed is not in the release: the first few hosts' output is read for their last word.
      const printed = index < FAILED_HOSTS_EXPLAINED ? printedBy(release.id, name, env, kind) : [];
      // The host's own last word on stderr says more than slipway's summary line after it.
      const stream = printed.some((line) => line.stream === 'stderr') ? 'stderr' : 'stdout';
      const lines = printed.filter((line) => line.stream === stream).map((line) => line.text.trim()).filter(Boolean);
      const own = lines.filter((line) => !/^\S+Z slipway: /.test(line));
      const last = (own.at(-1) ?? lines.at(-1) ?? '').replace(/^\S+Z slipway: /, '');
      const why = last ? `: ${last.slice(0, 160)}` : '';
      return `host ${name} failed at ${kind}${step?.exitCode === undefined || step?.exitCode === null ? '' : `: exit ${step.exitCode}`}${why}`;
    });
    const more = d.failedCount && d.failedCount > hosts.length ? `, and ${d.failedCount - hosts.length} more` : '';
    return described.length ? `${described.join('; ')}${more}` : 'a host failed';
  };
  const [noun, verb] = event.type.split('.');
  switch (event.type) {
    case 'release.opened':
      return `${event.actor} opened ${release.app} ${d.version ?? release.version}`;
    case 'rollback.opened':
      return `${event.actor} opened a rollback of ${release.app} ${env} from ${d.from?.version} to ${d.to?.version}`;
    case 'workflow.started':
      return d.recovered ? 'The workflow started (the release had been left waiting)' : 'The workflow started';
    case 'workflow.start_deferred':
      return `The workflow could not start yet (${d.reason}); the sweep starts it`;
    case 'release.planned':
      return `Planned: ${(d.environments ?? []).map((e) => `${e.name} ${plural(e.hosts, 'host')} in ${plural(e.batches, 'batch', 'batches')}`).join(', ')}`;
    case 'environment.queued':
      return `Waiting in line for ${env}, position ${d.position}${d.holder ? ` (held by release ${d.holder})` : ''}`;
    case 'environment.left_line':
      return `Left the line for ${env}`;
    case 'environment.entered':
      return `Entered ${env}`;
    case 'environment.live':
      return `${d.version} is live in ${env}`;
    case 'distribute.started':
      return `Distributing to ${plural(d.hosts, 'host')} in ${env}`;
    case 'distribute.succeeded':
      return `Distributed to every host in ${env}`;
    case 'distribute.failed':
      return `Distribution in ${env} failed: ${failedHosts('distribute')}`;
    case 'switch.started':
      return `${batch(d.batchIndex)} started switching ${plural(d.hosts, 'host')}`;
    case 'switch.succeeded':
      return `${batch(d.batchIndex)} switched ${plural(hostsIn(d.batchIndex) ?? 0, 'host')}`;
    case 'switch.failed':
      return `${batch(d.batchIndex)} failed: ${failedHosts('switch')}`;
    case 'revert.planned':
      return `Putting back ${plural(d.batches, 'switched batch', 'switched batches')} in ${env}`;
    case 'revert.started':
      return `${batch(d.batchIndex)}: putting back ${plural(d.hosts, 'host')}`;
    case 'revert.succeeded':
      return `${batch(d.batchIndex)} put back on ${plural(hostsIn(d.batchIndex) ?? 0, 'host')}`;
    case 'revert.failed':
      return `${batch(d.batchIndex)} could not be put back: ${failedHosts('revert')}`;
    case 'prune.started':
      return `Pruning old releases on ${plural(d.hosts, 'host')}`;
    case 'prune.succeeded':
      return 'Old releases pruned';
    case 'prune.failed':
      return `Pruning old releases failed: ${failedHosts('prune')}`;
    case 'approval.requested':
      return `Approval for ${env} asked of ${(d.approvers ?? []).join(', ')} (${d.required} needed), until ${when(d.expiresAt)}`;
    case 'approval.mailed':
      return `Approval mail for ${env} sent to ${d.to}`;
    case 'approval.mail_failed':
    case 'notification.mail_failed':
      return `A mail to ${d.to} could not be sent (attempt ${d.attempt}); trying again at ${when(d.retryAt)}: ${d.error}`;
    case 'approval.viewed':
      return `${event.actor}'s approval page for ${env} was opened${d.method === 'HEAD' ? ' (HEAD, a link checker)' : ''}`;
    case 'approval.decided':
      return `${event.actor} ${d.decision === 'approve' ? 'approved' : 'rejected'} ${env}${d.via && d.via !== 'api' ? ` (via ${d.via})` : ''}${d.reason ? `: ${d.reason}` : ''}`;
    case 'approval.approved':
    case 'approval.rejected':
    case 'approval.timed_out':
    case 'approval.cancelled':
      return `The approval gate of ${env} ${verb === 'timed_out' ? 'timed out' : `is ${verb}`}${d.why ? ` (${d.why})` : ''}`;
    case 'notification.mailed':
      return `Told ${d.to} by mail that the release ${String(d.status ?? '').replace('_', ' ')}${d.status === 'paused' ? ` in ${env}` : ''}`;
    case 'notification.webhook':
      return `The webhook heard that the release ${d.status} (HTTP ${d.httpStatus}, ${plural(d.attempts, 'attempt')})`;
    case 'notification.webhook_failed':
      return `The webhook could not be told that the release ${d.status} after ${plural(d.attempts, 'attempt')}: ${d.error}`;
    case 'release.paused':
      return `Paused in ${env} after batch ${d.batch}${d.resumeAt ? `; goes on by itself at ${when(d.resumeAt)}` : '; waits for a promote'}`;
    case 'release.resumed':
      return `Went on in ${env} after batch ${d.batch}`;
    case 'release.promoted':
      return `${event.actor} promoted ${env} after batch ${d.batch}${d.full ? ', skipping every pause still ahead' : ''}`;
    case 'analysis.probe':
      return `Analysis after batch ${d.batch} in ${env}: ${d.check} ${d.ok ? 'healthy' : 'unhealthy'}${d.status === undefined ? '' : ` (${d.status})`}`;
    case 'release.succeeded':
      return release.rollback ? `Rolled back: ${release.app} ${release.rollback.environment} runs ${release.version}` : `${release.app} ${d.version ?? release.version} is live everywhere`;
    case 'release.failed':
      return `The release failed${env ? ` in ${env}` : ''}: ${String(d.reason ?? '').split('\n')[0]}`;
    case 'release.failed_while_cancelled':
      return `A failure in ${env} came while the release was being cancelled: ${String(d.reason ?? '').split('\n')[0]}`;
    case 'release.cancelled':
      return `${event.actor} cancelled the release (it was ${String(d.from ?? '').replace('_', ' ')})`;
    default:
      return `${noun} ${(verb ?? '').replace('_', ' ')}${event.actor && event.actor !== 'slipway' ? ` by ${event.actor}` : ''}${env ? ` in ${env}` : ''}`;
  }
}

// A value under such a key, or a string of such a shape, is never shown, not even in the raw JSON:
// approval links, API tokens, presigned URLs, task tokens.
const SECRET_KEY = /token|link|url|secret|password|signature|credential/i;
const SECRET_TEXT = /\/approvals\/|slw_|X-Amz-|taskToken/i;

function redact(value, key = '') {
  if (SECRET_KEY.test(key)) return '[hidden]';
  if (typeof value === 'string') return SECRET_TEXT.test(value) ? '[hidden]' : value;
  if (Array.isArray(value)) return value.map((item) => redact(item));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, k)]));
  return value;
}

/** An event's sentence as the page shows it: one that would show a secret says so instead. */
function eventText(event, release) {
  const text = sentence(event, release);
  return SECRET_TEXT.test(text) ? `${event.type} (details hidden: they hold a secret)` : text;
}

/** Rewrites the events' sentences of the release on the page (a failed host's output came in), nothing else. */
function refreshSentences(releaseId) {
  const release = shownRelease;
  if (release?.id !== releaseId || main.dataset.page !== `release/${releaseId}`) return;
  const rows = new Map([...main.querySelectorAll('tr[data-event]')].map((row) => [row.dataset.key, row]));
  for (const event of release.events) {
    const cell = rows.get(`event-row-${event.id}`)?.querySelector('td.sentence');
    const text = eventText(event, release);
    if (cell && cell.textContent !== text) cell.textContent = text;
  }
}

function eventList(release, open) {
  return h(
    'table',
    { class: 'events', 'data-key': 'events' },
    h(
      'tbody',
      {},
      release.events.map((e) => {
        const key = `event-${e.id}`;
        return h(
          'tr',
          { 'data-event': e.type, 'data-key': `event-row-${e.id}` },
          h('td', { class: 'muted' }, when(e.at)),
          h('td', { class: 'sentence' }, eventText(e, release)),
          h(
            'td',
            {},
            h('details', { 'data-key': key, open: open.has(key) }, h('summary', {}, 'JSON'), h('pre', { class: 'mono' }, JSON.stringify(redact({ type: e.type, actor: e.actor, at: e.at, data: e.data }), null, 2))),
          ),
        );
      }),
    ),
  );
}

function workflowGraph(release) {
  return h('div', { class: 'graph', 'aria-label': 'Workflow', 'data-key': 'graph' }, release.environments.map((env) => environmentGraph(release, env)));
}

// What hosts print, by `<release>/<host>`: the release read leaves it out (500 hosts' output in
// every live update), so it is read from the host's output route when a step or "Live output" is
// opened, and followed while the release runs. Kept across the page's re-renders (every release
// update redraws it), dropped when the page changes.
const LIVE_LINES_KEPT = 2000;
const hostOutputs = new Map();
// The output of hosts a failure event names, read once for the sentence's last word: the first few
// hosts of an event only (each read costs the API the host's steps, and CloudWatch reads on AWS).
const FAILED_HOSTS_EXPLAINED = 5;
const failureOutputs = new Map();
// The release on the page, for sentences rewritten when a failed host's output arrives.
let shownRelease = null;

const hostOutputPath = (releaseId, host) => `/v1/releases/${encodeURIComponent(releaseId)}/hosts/${encodeURIComponent(host)}/output`;

function stopHostOutputs() {
  for (const entry of hostOutputs.values()) entry.controller.abort();
  hostOutputs.clear();
  failureOutputs.clear();
}

/** What one step printed on one stream, as read so far (a note, like a cut, has no step). */
function stepLines(entry, environment, step, stream) {
  return (entry?.lines ?? [])
    .filter((line) => line.environment === environment && line.step === step && line.stream === stream)
    .map((line) => line.text);
}

/** The text of a `pre` that shows output: the host's whole output (live), or one step's stream. */
function outputText(pre) {
  const entry = hostOutputs.get(pre.dataset.output);
  if (pre.dataset.outputStep === undefined) {
    if (!entry) return '';
    const text = entry.lines.map((line) => (line.note ? line.note : `${line.step} ${line.stream === 'stderr' ? '!' : '|'} ${line.text}`)).join('\n');
    return text || (entry.done ? 'Nothing was printed.' : 'Waiting for the host to print…');
  }
  const [environment, step, stream] = pre.dataset.outputStep.split('/');
  const text = stepLines(entry, environment, step, stream).join('\n');
  if (text || stream === 'stderr') return text;
  const failure = entry?.lines.find((line) => line.note && line.failed);
  if (failure) return failure.note;
  // Nothing on stdout: say so only once there is nothing on stderr either.
  if (stepLines(entry, environment, step, 'stderr').length) return '';
  return !entry ? '' : entry.done ? 'Nothing was printed.' : 'Reading the output…';
}

/** A `pre` for output: its text is drawn from the cache at every render, and updated as lines arrive. */
function outputPre(releaseId, host, attrs) {
  const pre = h('pre', { 'data-output': `${releaseId}/${host}`, ...attrs });
  const text = outputText(pre);
  pre.textContent = text;
  if (!text) pre.hidden = true;
  return pre;
}

function showHostOutput(key) {
  for (const pre of main.querySelectorAll('pre[data-output]')) {
    if (pre.dataset.output !== key) continue;
    // It follows the end only for a reader at the end: one who scrolled up to read a line keeps it.
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    const text = outputText(pre);
    if (pre.textContent !== text) pre.textContent = text;
    pre.hidden = !text;
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }
}

/**
 * Follows a host's output over SSE (GET /v1/releases/{id}/hosts/{host}/output); where the answer is
 * not a stream (API Gateway buffers), by long polls of the same route.
 */
function followHostOutput(releaseId, host) {
  const key = `${releaseId}/${host}`;
  if (hostOutputs.has(key)) return;
  const entry = { lines: [], controller: new AbortController(), done: false };
  hostOutputs.set(key, entry);
  const path = hostOutputPath(releaseId, host);
  const add = (line) => {
    entry.lines.push(line);
    if (entry.lines.length > LIVE_LINES_KEPT) entry.lines.splice(0, entry.lines.length - LIVE_LINES_KEPT);
  };
  const longPoll = async () => {
    let after = '';
    while (!entry.controller.signal.aborted) {
      const view = await api('GET', `${path}?waitSeconds=20${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      view.lines.forEach(add);
      after = view.next;
      entry.done = view.ended;
      showHostOutput(key);
      if (view.ended) return;
    }
  };
  readEvents(path, entry.controller.signal, (event) => {
    if (event.event === 'line') add(event.data);
    if (event.event === 'cut') add({ note: `[${event.data.bytes} earlier bytes cut]` });
    if (event.event === 'end') entry.done = true;
    showHostOutput(key);
  })
    .catch((error) => (entry.controller.signal.aborted ? undefined : error instanceof ApiError ? longPoll() : Promise.reject(error)))
    .catch((error) => {
      add({ note: `[the output could not be followed: ${error.message}]`, failed: true });
      showHostOutput(key);
    });
}

/**
 * The lines one step of a failed host printed, for its event's sentence: read once (every page
 * there is now: the step has ended), and the sentences rewritten when it arrives. Empty until
 * then, and if it cannot be read.
 */
function printedBy(releaseId, host, environment, step) {
  const key = `${releaseId}/${host}`;
  const entry = failureOutputs.get(key);
  if (entry) return entry.lines.filter((line) => line.environment === environment && line.step === step);
  const read = { lines: [] };
  failureOutputs.set(key, read);
  (async () => {
    let after = '';
    for (let page = 0; page < 20; page++) {
      const view = await api('GET', `${hostOutputPath(releaseId, host)}${after ? `?after=${encodeURIComponent(after)}` : ''}`);
      read.lines.push(...view.lines);
      if (view.ended || view.lines.length === 0 || view.next === after) break;
      after = view.next;
    }
  })()
    .catch(() => undefined)
    .then(() => {
      if (failureOutputs.get(key) === read) refreshSentences(releaseId);
    });
  return [];
}

function hostTable(release, env, open) {
  return h(
    'table',
    { 'data-key': `hosts/${env.environment}` },
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
            // In the order they ran (a revert comes after the switch it undoes).
            Object.entries(host.steps)
              .sort(([, a], [, b]) => String(a.startedAt ?? '').localeCompare(String(b.startedAt ?? '')))
              .map(([name, step]) => {
                const key = `${env.environment}/${host.host}/${name}`;
                const took = step.startedAt && step.endedAt ? ` · ${clockTime(step.startedAt)} · ${duration(Date.parse(step.endedAt) - Date.parse(step.startedAt))}` : '';
                // What it printed is read when the step is opened (and followed while the release runs).
                const printed = (stream) => outputPre(release.id, host.host, { 'data-output-step': `${env.environment}/${name}/${stream}`, class: stream });
                return outputSection(
                  release,
                  host,
                  key,
                  open,
                  { 'data-step': name },
                  h('summary', {}, `${name}: exit ${step.exitCode ?? '—'}${took}`),
                  printed('stdout'),
                  printed('stderr'),
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
  return outputSection(release, host, key, open, {}, h('summary', {}, 'Live output'), outputPre(release.id, host.host, { class: 'live' }));
}

/** A section showing a host's output: the output is read and followed while it is open, from the moment it opens. */
function outputSection(release, host, key, open, attributes, ...children) {
  if (open.has(key)) followHostOutput(release.id, host.host);
  return h(
    'details',
    {
      'data-key': key,
      ...attributes,
      open: open.has(key),
      ontoggle: (event) => {
        if (!event.target.open) return;
        followHostOutput(release.id, host.host);
        showHostOutput(`${release.id}/${host.host}`);
      },
    },
    ...children,
  );
}

const sameName = (a, b) => String(a ?? '').toLowerCase() === String(b ?? '').toLowerCase();
const decidedBy = (gate, name) => gate.decisions.some((d) => sameName(d.approver, name));
const isSelf = (release, gate) => !gate.allowSelfApproval && sameName(release.openedBy, me?.name);

/** The API takes a decision only from an approver the gate names (with a role that may approve), once each. */
function mayDecide(gate) {
  return can.approve() && gate.approvers.some((name) => sameName(name, me.name)) && !decidedBy(gate, me.name);
}

function approvalSection(release) {
  if (!release.approvals.length) return null;
  return [
    h('h2', {}, 'Approvals'),
    ...release.approvals.map((gate) => {
      const reasonId = `reason-${gate.environment}`;
      const errorKey = `${release.id}/approval/${gate.environment}`;
      // The reason is read from the page, not from this render's input: a live update keeps the one on the page.
      const decide = (decision) => async () => {
        reportActionError(errorKey, undefined);
        try {
          await api('POST', `/v1/releases/${release.id}/approvals`, { environment: gate.environment, decision, reason: document.getElementById(reasonId)?.value ?? '' });
          route();
        } catch (err) {
          reportActionError(errorKey, err.message);
        }
      };
      return h(
        'div',
        { class: 'card', 'data-gate': gate.environment },
        h('p', {}, `${gate.environment}: `, badge(gate.status), ` — ${gate.required} of ${gate.approvers.length} needed (${gate.approvers.join(', ')}); expires ${when(gate.expiresAt)}`),
        // The form comes before the decisions, so another approver's decision arriving does not move its buttons.
        gate.status !== 'pending'
          ? null
          : mayDecide(gate)
            ? h(
                'div',
                { class: 'actions', 'data-key': `decide/${gate.environment}` },
                h('label', { for: reasonId }, 'Reason (optional)', h('input', { id: reasonId, maxlength: 2000 })),
                isSelf(release, gate) ? null : h('button', { class: 'approve', type: 'button', onclick: decide('approve') }, 'Approve'),
                h('button', { class: 'danger', type: 'button', onclick: decide('reject') }, 'Reject'),
                isSelf(release, gate) ? h('p', { class: 'muted' }, 'You opened this release, so you may reject it but not approve it.') : null,
              )
            : h('p', { class: 'muted who-decides' }, decidedBy(gate, me?.name) ? `You have decided; the others may still: ${gate.approvers.join(', ')}.` : `Only ${gate.approvers.join(', ')} may decide here.`),
        actionError(errorKey),
        gate.decisions.length
          ? h('ul', {}, gate.decisions.map((d) => h('li', {}, `${d.approver} ${d.decision === 'approve' ? 'approved' : 'rejected'} at ${when(d.at)} via ${d.via}${d.reason ? `: ${d.reason}` : ''}`)))
          : h('p', { class: 'muted' }, 'No decision yet.'),
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

// Renders of the release page in the order they started, and the last one shown: a read that answers
// after a newer render was shown (a slow GET overtaken by the feed) would show an older release.
let releaseRenders = 0;
let releaseRenderShown = 0;

async function renderRelease(id, pushed) {
  const render = ++releaseRenders;
  const page = `release/${id}`;
  const openNow = () => new Set(main.dataset.page === page ? [...main.querySelectorAll('details[open]')].map((d) => d.dataset.key) : []);
  const release = pushed ?? (await api('GET', `/v1/releases/${encodeURIComponent(id)}`));
  const running = !TERMINAL.has(release.status);
  const history = openNow().has('history') ? await workflowHistory(id, running) : null;
  if (render < releaseRenderShown || location.hash !== `#/releases/${id}`) return;
  releaseRenderShown = render;
  shownRelease = release;
  // Read after the reads above: a section opened while they ran is open in this render too.
  const open = openNow();
  const cancelErrorKey = `${release.id}/cancel`;
  const promoteErrorKey = `${release.id}/promote`;
  const promote = (full) => async () => {
    const what = full ? 'Promote and skip every pause still ahead? The release then runs to its end.' : 'Promote this release to its next canary step?';
    if (!window.confirm(what)) return;
    reportActionError(promoteErrorKey, undefined);
    try {
      await api('POST', `/v1/releases/${release.id}/promote`, full ? { full: true } : {});
      route();
    } catch (err) {
      reportActionError(promoteErrorKey, err.message);
    }
  };
  document.title = `${releaseTitle(release)} (${release.status.replace('_', ' ')}) · Slipway`;
  showInPlace(
    page,
    h('h1', {}, `${releaseTitle(release)} `, badge(release.status)),
    h(
      'div',
      { class: 'card', 'data-key': 'summary' },
      release.rollback ? h('p', {}, `Rolls ${release.rollback.environment} back from ${release.rollback.from.version} to ${release.version}.`) : null,
      h('p', {}, `Opened by ${release.openedBy} at ${when(release.createdAt)}. Release `, h('span', { class: 'mono' }, release.id), '.'),
      release.description ? h('pre', {}, release.description) : null,
      // Cancel sits above the lines that come and go while a release runs (its place in line, a pause), so it does not move.
      running && can.cancel()
        ? h(
            'div',
            { class: 'actions', 'data-key': 'cancel' },
            h(
              'button',
              {
                class: 'danger',
                type: 'button',
                onclick: async () => {
                  if (!window.confirm('Cancel this release? Hosts already switched in the current environment are put back.')) return;
                  reportActionError(cancelErrorKey, undefined);
                  try {
                    await api('POST', `/v1/releases/${release.id}/cancel`);
                    route();
                  } catch (err) {
                    reportActionError(cancelErrorKey, err.message);
                  }
                },
              },
              'Cancel release',
            ),
            actionError(cancelErrorKey),
          )
        : null,
      release.reason ? h('p', { class: 'error' }, `Reason: ${release.reason}`) : null,
      release.queuePosition
        ? h('p', { class: 'queue-position' }, `Waiting in line for ${release.queuedFor}: position ${release.queuePosition} (1 is next).`)
        : null,
      release.pause
        ? h(
            'div',
            { class: 'pause', 'data-key': 'pause' },
            h(
              'p',
              {},
              `Paused in ${release.pause.environment} after batch ${release.pause.batch} since ${when(release.pause.pausedAt)}`,
              release.pause.resumeAt ? `; goes on by itself at ${when(release.pause.resumeAt)}.` : '; waits for someone to promote it.',
            ),
            can.promote()
              ? h(
                  'div',
                  { class: 'actions', 'data-key': 'promote' },
                  h('button', { type: 'button', onclick: promote(false) }, 'Promote'),
                  h('button', { type: 'button', onclick: promote(true) }, 'Promote to the end'),
                  actionError(promoteErrorKey),
                )
              : null,
          )
        : null,
      running ? h('p', { class: 'muted' }, 'Updating live…') : null,
    ),
    approvalSection(release),
    h('h2', {}, 'Workflow'),
    workflowGraph(release),
    ...release.environments.flatMap((env) => [
      h('h2', {}, `${env.environment} hosts `, badge(env.status), ' ', h('a', { class: 'small', href: `#/releases/${encodeURIComponent(release.id)}/diff/${encodeURIComponent(env.environment)}` }, 'What changes')),
      env.hosts.length ? hostTable(release, env, open) : h('p', { class: 'muted', 'data-key': `hosts/${env.environment}` }, 'No host has started yet.'),
    ]),
    h('h2', {}, 'Events'),
    eventList(release, open),
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
  if (![...hostOutputs.keys(), ...failureOutputs.keys()].some((key) => location.hash === `#/releases/${key.split('/')[0]}`)) stopHostOutputs();
  document.title = 'Slipway';
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
