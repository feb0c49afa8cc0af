// The dashboard's entry point: sign-in state, the live connection, the hash router that picks
// a view, and the once-a-second ticker that keeps "12 s ago" labels true.
//
// A view is a module with `render(main, params, ctx)`; it returns a cleanup function, or
// `{cleanup, update}` when it can follow a route change without being drawn again (the squad
// view opening a task). `ctx` is what views share: the live connection and its completions.

import { api, session, whenUnauthorized } from './api.js';
import { Completions } from './completions.js';
import { fill, tickAges } from './dom.js';
import { Live } from './live.js';
import * as knowledge from './views/knowledge.js';
import * as signin from './views/signin.js';
import * as squad from './views/squad.js';
import * as squads from './views/squads.js';
import * as streams from './views/streams.js';
import * as tokens from './views/tokens.js';
import * as tools from './views/tools.js';

/** The live connection subscribes to at most this many squads (the server's limit). */
const MAX_SQUADS = 100;

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signoutButton = document.getElementById('signout');
const conn = document.getElementById('conn');

const live = new Live(async () => (await api.ticket()).ticket);
const completions = new Completions(live);

const ctx = {
  live,
  completions,
  /** Watches every squad of the organization (new ones too), so no view misses its news.
   *  The default squad (where gateway agents and knowledge news live) always comes first. */
  async watchAll() {
    const list = await api.squads();
    const first = [...list].sort((a, b) => Number(b.is_default) - Number(a.is_default));
    live.watch(first.slice(0, MAX_SQUADS).map((s) => s.id));
    return list;
  },
};

const routes = [
  [/^#\/squads\/([^/]+)\/tasks\/([^/]+)$/, squad, ['squadId', 'taskId']],
  [/^#\/squads\/([^/]+)$/, squad, ['squadId']],
  [/^#\/squads$/, squads, []],
  [/^#\/streams$/, streams, []],
  [/^#\/knowledge(?:\/([^/]+))?$/, knowledge, ['storeId']],
  [/^#\/tools$/, tools, []],
  [/^#\/tokens$/, tokens, []],
];

let current = null; // { view, instance }

/** Draws the view the address names; `moved` when the user went there (focus follows). */
function route(moved = false) {
  if (!session.token) return showSignIn();
  const hash = location.hash || '#/squads';
  const found = routes.find(([pattern]) => pattern.test(hash));
  if (!found) {
    location.replace('#/squads');
    return;
  }
  const [pattern, view, names] = found;
  const values = pattern.exec(hash).slice(1);
  const params = Object.fromEntries(names.map((name, i) => [name, values[i] && decodeURIComponent(values[i])]));
  markNav(hash);
  if (current?.view === view && current.instance?.update?.(params)) return;
  teardown();
  fill(main);
  if (moved) {
    // A new page for screen readers and keyboards too: start at its top.
    main.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
  const instance = view.render(main, params, ctx);
  current = { view, instance };
}

function teardown() {
  const instance = current?.instance;
  if (typeof instance === 'function') instance();
  else instance?.cleanup?.();
  current = null;
}

function markNav(hash) {
  for (const link of nav.querySelectorAll('a')) {
    const here = hash.startsWith(link.getAttribute('href'));
    if (here) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function showSignIn(message) {
  teardown();
  nav.hidden = true;
  signoutButton.hidden = true;
  conn.hidden = true;
  fill(main);
  signin.render(main, { message, onSignedIn: signedIn });
}

function signedIn(token) {
  session.set(token);
  nav.hidden = false;
  signoutButton.hidden = false;
  conn.hidden = false;
  live.start();
  ctx.watchAll().catch((err) => console.warn('could not list squads to watch', err));
  route();
}

function signOut(message) {
  session.clear();
  live.reset();
  completions.clear();
  showSignIn(message);
}

const STATES = {
  offline: 'Offline',
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
};

live.onState((state) => {
  conn.dataset.state = state;
  conn.querySelector('.conn-text').textContent = STATES[state] || state;
});

whenUnauthorized(() => {
  // Only a token we hold can be refused; sign-in checks its candidate itself.
  if (session.token) signOut('The server refused the token (revoked, deleted or invalid). Sign in again.');
});

signoutButton.addEventListener('click', () => signOut());
document.getElementById('skip').addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', () => route(true));
setInterval(() => tickAges(document), 1000);

// Handy from the devtools console (and for the end-to-end test): the live connection.
window.squadron = { live, completions };

if (session.token) signedIn(session.token);
else showSignIn();
