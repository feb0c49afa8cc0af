// End-to-end test of the web dashboard in headless Chromium.
//
//   SQUADRON_URL=http://127.0.0.1:PORT      a running server
//   SQUADRON_TOKEN=pk_...                   an admin organization token
//   SQUADRON_UPSTREAM=http://127.0.0.1:PORT/v1   OpenAI-compatible fake (tests/api/upstream.rs):
//                                           chat model `slow` streams, embedding model `embed-words`
//   SCREENSHOTS=/some/dir                   where the PNGs go (made if missing)
//   node tests/npm/dashboard.mjs
//
// It sets up through the API (a squad with two agents, tasks, a provider, models, a gateway
// agent, a vector store with a file), then drives the dashboard: sign in, watch a squad while
// agents heartbeat and comment through the API, resume after a dropped connection, drag a card,
// comment with @mention completion, watch a completion stream, search knowledge, generate and
// revoke a token. Every view is shot at desktop (1280x800) and phone (390x844) width. Exits 0
// with a summary, or 1 naming the step that failed.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = (process.env.SQUADRON_URL || '').replace(/\/$/, '');
const ADMIN = process.env.SQUADRON_TOKEN || '';
const UPSTREAM = process.env.SQUADRON_UPSTREAM || '';
const SHOTS = process.env.SCREENSHOTS || 'target/dashboard-screenshots';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 10_000; // default for any wait on the page, and for any API call
const DEADLINE = 50_000; // the whole run
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

if (!BASE || !ADMIN || !UPSTREAM) {
  console.error('dashboard.mjs needs SQUADRON_URL, SQUADRON_TOKEN and SQUADRON_UPSTREAM');
  process.exit(2);
}
mkdirSync(SHOTS, { recursive: true });

const run = Date.now().toString(36); // names unique per run, so a server can be reused
const started = Date.now();
const done = [];
let step = 'start';
let browser;
let page;

/** Names the step that runs next (printed if it fails). */
function begin(name) {
  step = name;
}
function passed(note) {
  done.push(`${step}${note ? `: ${note}` : ''}`);
}

// ---- the API, as a test client ----

async function call(method, path, { token = ADMIN, body, squad, agent, form } = {}) {
  const headers = { authorization: `Bearer ${token}` };
  if (squad) headers['x-squad-id'] = squad;
  if (agent) headers['x-agent-name'] = agent;
  let payload = form;
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(BASE + path, { method, headers, body: payload, signal: AbortSignal.timeout(WAIT) });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: res.status, json, data: json?.data };
}

async function ok(method, path, opts, want = [200, 201]) {
  const res = await call(method, path, opts);
  if (!want.includes(res.status)) {
    throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(res.json).slice(0, 300)}`);
  }
  return res;
}

/** Polls `check` (async, truthy when satisfied) until it holds or `timeout` ms pass. */
async function until(what, check, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last?.message || JSON.stringify(last)})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function setup() {
  begin('setup: provider, models and a gateway agent');
  const provider = `e2e-${run}`;
  await ok('POST', '/v1/core/add/provider', { body: { name: provider, base_url: UPSTREAM, api_key: 'sk-e2e-0123456789' } });
  const chatModel = `e2e-slow-${run}`;
  const embedModel = `e2e-words-${run}`;
  await ok('POST', '/v1/core/add/model', { body: { name: chatModel, provider, model: 'slow', kind: 'chat' } });
  await ok('POST', '/v1/core/add/model', { body: { name: embedModel, provider, model: 'embed-words', kind: 'embedding', dimensions: 64 } });
  const writer = `Scribe-${run}`;
  await ok('POST', '/v1/core/add/agent', { body: { name: writer, model: chatModel, system_prompt: 'Answer briefly.' } });
  passed();

  begin('setup: a squad with two agents, set up, and two tasks');
  const squadName = `Apollo ${run}`;
  const created = (await ok('POST', '/api/squads', { body: {
    name: squadName,
    description: 'End-to-end test squad',
    agents: [
      { name: 'Atlas', role: 'Navigator', heartbeat_interval_secs: 30 },
      { name: 'Vega', role: 'Engineer', heartbeat_interval_secs: 30 },
    ],
  } })).data;
  if (!created.setup_url) throw new Error('squad create gave no setup_url');
  const setupRes = await fetch(`${BASE}/api/setup/${created.id}`, {
    headers: { 'x-setup-token': created.setup_token },
    signal: AbortSignal.timeout(WAIT),
  });
  if (setupRes.status !== 200) throw new Error(`setup redeem answered ${setupRes.status}`);
  const setup = (await setupRes.json()).data;
  const keys = Object.fromEntries(setup.agents.map((a) => [a.name, a.api_key]));
  const squad = created.id;
  const route = (await ok('POST', '/api/tasks', { squad, body: { title: 'Chart the route', priority: 'high', assignees: ['Atlas'] } })).data;
  const fuel = (await ok('POST', '/api/tasks', { squad, body: { title: 'Check the fuel' } })).data;
  passed(squadName);

  begin('setup: a vector store with an uploaded file');
  const form = new FormData();
  form.append('purpose', 'assistants');
  form.append('file', new Blob(['Hohmann transfer orbits save fuel between planets. The burn happens at periapsis.'], { type: 'text/plain' }), 'orbits.txt');
  const file = (await ok('POST', '/v1/files', { form })).json;
  const storeName = `Manuals ${run}`;
  const store = (await ok('POST', '/v1/vector_stores', { body: { name: storeName, embedding_model: embedModel, file_ids: [file.id] } })).json;
  passed(store.id);

  return { squad, squadName, keys, route, fuel, writer, store, storeName };
}

// ---- the page ----

/** A PNG of the whole page; of the viewport only when a modal dialog covers it. */
const shot = (name, fullPage = true) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });

/** Fails if the page is wider than the viewport (a phone layout that overflows). */
async function noOverflow(view) {
  const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  if (scroll > width + 1) throw new Error(`${view} overflows the ${width}px viewport: ${scroll}px wide`);
}

const nav = (name) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true });
const card = (title) => page.locator('.task-card', { has: page.getByRole('link', { name: title, exact: true }) });
const column = (status) => page.locator(`.column[data-status="${status}"]`);
const agentItem = (name) => page.locator('.agent', { has: page.locator('.agent-name', { hasText: name }) });

async function main() {
  const s = await setup();

  begin('launch Chromium');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: DESKTOP, colorScheme: 'light' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  passed();

  begin('sign in with the org token; the live connection comes up');
  await page.goto(`${BASE}/`);
  await page.getByLabel('Organization token').waitFor();
  await shot('signin-desktop');
  await page.getByLabel('Organization token').fill(ADMIN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Squads', level: 1 }).waitFor();
  await page.locator('#conn[data-state="live"]').waitFor();
  const stored = await page.evaluate(() => [sessionStorage.getItem('squadron.token'), localStorage.length]);
  if (stored[0] !== ADMIN || stored[1] !== 0) throw new Error('the token should be in sessionStorage only');
  await page.getByRole('link', { name: s.squadName }).waitFor();
  passed();

  begin('create a squad with two agent specs; the setup URL is shown once');
  const formSquad = `Gemini ${run}`;
  await page.getByLabel('Name', { exact: true }).fill(formSquad);
  await page.getByLabel('Description (optional)').fill('Made in the dashboard');
  await page.getByLabel('Agent name').nth(0).fill('Castor');
  await page.getByLabel('Role').nth(0).fill('Pilot');
  await page.getByRole('button', { name: 'Add an agent' }).click();
  await page.getByLabel('Agent name').nth(1).fill('Pollux');
  await page.getByLabel('Heartbeat (s)').nth(1).fill('45');
  await page.getByRole('button', { name: 'Create squad' }).click();
  const setupUrl = await page.getByLabel('Setup URL').inputValue();
  const madeId = /\/api\/setup\/([0-9a-f-]{36})\?token=st_/.exec(setupUrl)?.[1];
  if (!madeId) throw new Error(`unexpected setup URL ${setupUrl}`);
  await page.getByRole('button', { name: 'Copy' }).waitFor();
  const made = (await ok('GET', `/api/squads/${madeId}`)).data;
  const specs = made.agents.map((a) => `${a.name}/${a.role}/${a.heartbeat_interval_secs}`).sort().join(' ');
  if (made.name !== formSquad || specs !== 'Castor/Pilot/60 Pollux//45') throw new Error(`the API shows ${made.name}: ${specs}`);
  await page.getByRole('link', { name: formSquad }).first().waitFor();
  await shot('squads-desktop');
  await page.getByRole('button', { name: 'Done' }).click();
  if ((await page.content()).includes(setupUrl)) throw new Error('the setup URL is still on the page after Done');
  passed();

  begin('open the squad: agents and board');
  await page.getByRole('link', { name: s.squadName }).click();
  await page.getByRole('heading', { name: s.squadName, level: 1 }).waitFor();
  await agentItem('Vega').waitFor();
  await card('Check the fuel').waitFor();
  if (!(await agentItem('Vega').locator('.badge', { hasText: 'Offline' }).isVisible())) {
    throw new Error('an agent that never heartbeat should show as offline');
  }
  passed();

  begin('a heartbeat through the API shows without a reload, and its age ticks');
  await ok('POST', '/api/heartbeat', { token: s.keys.Vega, agent: 'Vega', body: { status: 'busy', current_task_id: s.fuel.id } });
  const vega = agentItem('Vega');
  await page.locator('.agent[data-status="busy"]', { has: page.locator('.agent-name', { hasText: 'Vega' }) }).waitFor();
  await vega.getByRole('link', { name: 'Check the fuel' }).waitFor();
  const age = vega.locator('time[data-ago]');
  const firstAge = await age.textContent();
  await page.waitForFunction(([el, before]) => el.textContent !== before, [await age.elementHandle(), firstAge], { timeout: 4000 });
  passed(`${firstAge} → ${await age.textContent()}`);

  begin('a comment through the API shows without a reload');
  const liveComment = `Route plotted via Mars (${run})`;
  await ok('POST', `/api/tasks/${s.route.id}/comments`, { token: s.keys.Atlas, agent: 'Atlas', body: { content: liveComment } });
  await page.locator('.feed-panel').getByText(liveComment).waitFor();
  passed();

  begin('after a dropped connection, what was missed is replayed (since)');
  await page.evaluate(() => window.squadron.live.stop());
  await page.locator('#conn[data-state="offline"]').waitFor();
  const missed = `Said while the dashboard was away (${run})`;
  await ok('POST', `/api/tasks/${s.fuel.id}/comments`, { token: s.keys.Vega, agent: 'Vega', body: { content: missed } });
  await page.evaluate(() => window.squadron.live.start());
  await page.locator('#conn[data-state="live"]').waitFor();
  await page.locator('.feed-panel').getByText(missed).waitFor();
  passed();

  begin('drag a card to another column; the API shows the new status');
  await card('Check the fuel').dragTo(column('review'));
  await column('review').locator('.task-card', { hasText: 'Check the fuel' }).waitFor();
  await until('the dragged task to be in review', async () =>
    (await call('GET', `/api/tasks/${s.fuel.id}`, { squad: s.squad })).data?.status === 'review');
  passed();

  begin('move a card with its select (keyboard way); the API agrees');
  await page.getByLabel('Move “Chart the route” to').selectOption('in_progress');
  await until('the moved task to be in progress', async () =>
    (await call('GET', `/api/tasks/${s.route.id}`, { squad: s.squad })).data?.status === 'in_progress');
  await column('in_progress').locator('.task-card', { hasText: 'Chart the route' }).waitFor();
  await page.locator('.feed-panel').getByText(/moved ".*" to in progress/).first().waitFor();
  await shot('squad-desktop');
  passed();

  begin('open a task; post a comment with @mention completion');
  await card('Chart the route').getByRole('link', { name: 'Chart the route' }).click();
  const dialog = page.getByRole('dialog', { name: 'Chart the route' });
  await dialog.waitFor();
  await dialog.getByText(liveComment).waitFor(); // the thread so far
  const box = dialog.getByLabel('Add a comment');
  await box.click();
  await box.pressSequentially('Looks right. @Ve');
  await dialog.getByRole('option', { name: '@Vega' }).waitFor();
  await box.press('Enter');
  const afterMention = await box.inputValue();
  if (afterMention !== 'Looks right. @Vega ') throw new Error(`completion gave ${JSON.stringify(afterMention)}`);
  await box.pressSequentially('please check the fuel margins');
  await dialog.getByRole('button', { name: 'Post comment' }).click();
  const mention = 'Looks right. @Vega please check the fuel margins';
  await dialog.locator('.comment-body', { hasText: mention }).waitFor();
  await until('Vega to be notified of the mention', async () => {
    const pending = (await call('GET', '/api/notifications', { token: s.keys.Vega, agent: 'Vega' })).data || [];
    return pending.some((n) => n.kind === 'mention' && n.content.includes('fuel margins'));
  });
  await dialog.locator('.notes').getByText('Mention').first().waitFor();
  await shot('task-desktop', false);
  await dialog.getByRole('button', { name: 'Close' }).click();
  await dialog.waitFor({ state: 'detached' });
  await page.waitForFunction((hash) => location.hash === hash, `#/squads/${s.squad}`, { timeout: 2000 });
  passed();

  begin('a chat completion appears token by token while it runs');
  await nav('Streams').click();
  await page.getByRole('heading', { name: 'Streams', level: 1 }).waitFor();
  await page.getByLabel('Agent').locator(`option[value="${s.writer}"]`).waitFor({ state: 'attached' });
  const chat = new AbortController();
  const chatDone = fetch(`${BASE}/v1/chat/completions`, {
    method: 'POST',
    signal: chat.signal,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: s.writer, stream: true, messages: [{ role: 'user', content: 'count for me' }] }),
  }).then(async (res) => {
    const reader = res.body.getReader();
    while (!(await reader.read()).done);
  }).catch(() => {});
  const streaming = page.locator('.completion.state-running', { hasText: s.writer });
  await streaming.waitFor();
  const text = streaming.locator('.completion-text');
  const grown = [];
  for (let i = 0; i < 3; i++) {
    const before = (await text.textContent()).replace('…', '');
    await page.waitForFunction(([el, was]) => el.textContent.replace('…', '').length > was.length,
      [await text.elementHandle(), before], { timeout: 4000 });
    grown.push((await text.textContent()).length);
  }
  await shot('streams-desktop');
  chat.abort(); // the server cancels upstream and says so
  await chatDone;
  await page.locator('.completion', { hasText: s.writer }).locator('.badge', { hasText: 'Cancelled' }).waitFor();
  passed(`text grew ${grown.join(' → ')} characters`);

  begin('knowledge: the ingested file at 100%, an upload, and a search');
  await nav('Knowledge').click();
  await page.evaluate(() => {
    window.seenKinds = [];
    window.squadron.live.on((m) => window.seenKinds.push(m.event?.kind));
  });
  await page.getByRole('link', { name: s.storeName }).click();
  const fileRow = (name) => page.locator('tr', { has: page.locator('.filename', { hasText: name }) });
  await fileRow('orbits.txt').getByText('100%').waitFor({ timeout: 15_000 });
  await page.getByLabel('Add files').setInputFiles({
    name: 'docking.md',
    mimeType: 'text/markdown',
    buffer: Buffer.from('# Docking\n\nAlign the docking port, then close at ten centimetres per second.'),
  });
  await page.getByRole('button', { name: 'Upload' }).click();
  await fileRow('docking.md').getByText('100%').waitFor({ timeout: 15_000 });
  const kinds = await page.evaluate(() => window.seenKinds);
  if (!kinds.includes('knowledge.ingest.progress') || !kinds.includes('knowledge.ingest.finished')) {
    throw new Error(`no live ingest events reached the page (saw ${[...new Set(kinds)].join(', ')})`);
  }
  await page.getByLabel('Search this base').fill('Hohmann transfer orbits');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.locator('.results .result', { hasText: 'orbits.txt' }).first().waitFor();
  await shot('knowledge-desktop');
  passed();

  begin('tools: an MCP server that cannot be reached shows as down, with its error');
  const deadServer = `nowhere-${run}`;
  await ok('POST', '/v1/core/add/server', { body: { name: deadServer, url: 'http://127.0.0.1:9/mcp' } });
  await nav('Tools').click();
  await page.getByRole('heading', { name: 'Tools', level: 1 }).waitFor();
  await page.locator(`tr[data-server="${deadServer}"][data-status="down"]`).waitFor({ timeout: 15_000 });
  await shot('tools-desktop');
  passed();

  begin('tokens: generate one (shown once), revoke it, delete it');
  await nav('Tokens').click();
  await page.getByRole('heading', { name: 'API tokens', level: 1 }).waitFor();
  const tokenName = `e2e token ${run}`;
  await page.getByLabel('Token name').fill(tokenName);
  await page.getByRole('button', { name: 'Generate token' }).click();
  await page.getByText('This token will be shown only once.').waitFor();
  const secret = await page.getByLabel('Your new token').inputValue();
  if (!/^pk_[0-9a-f]+$/.test(secret)) throw new Error(`unexpected token ${secret.slice(0, 6)}...`);
  const row = page.locator('tr', { hasText: tokenName });
  await row.waitFor();
  await shot('tokens-desktop');
  await page.getByRole('button', { name: 'Copy' }).click();
  await page.getByText('Copied').waitFor();
  await page.getByRole('button', { name: 'Done' }).click();
  if ((await page.content()).includes(secret)) throw new Error('the full token is still on the page after Done');
  if ((await call('GET', '/api/squads', { token: secret })).status !== 200) throw new Error('the new token does not work');
  await row.getByRole('button', { name: `Revoke ${tokenName}` }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke token' }).click();
  await page.locator(`tr[data-status="revoked"]`, { hasText: tokenName }).waitFor();
  const listed = (await ok('GET', '/api/v1/tokens')).data.find((t) => t.name === tokenName);
  if (listed?.status !== 'revoked') throw new Error(`the API lists the token as ${listed?.status}`);
  if ((await call('GET', '/api/squads', { token: secret })).status !== 401) throw new Error('the revoked token still works');
  await page.locator('tr', { hasText: tokenName }).getByRole('button', { name: `Delete ${tokenName}` }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete token' }).click();
  await page.locator('tr', { hasText: tokenName }).waitFor({ state: 'detached' });
  if ((await ok('GET', '/api/v1/tokens')).data.some((t) => t.name === tokenName)) throw new Error('the deleted token is still listed');
  passed();

  begin('phone width: every view fits 390px');
  await page.setViewportSize(PHONE);
  const phoneViews = [
    ['squads', '#/squads', () => page.getByRole('link', { name: s.squadName }).waitFor()],
    ['squad', `#/squads/${s.squad}`, () => card('Check the fuel').waitFor()],
    ['task', `#/squads/${s.squad}/tasks/${s.route.id}`, () => page.getByRole('dialog').getByText(mention).waitFor()],
    ['streams', '#/streams', () => page.locator('.completion', { hasText: s.writer }).first().waitFor()],
    ['knowledge', `#/knowledge/${s.store.id}`, () => page.locator('.filename', { hasText: 'docking.md' }).waitFor()],
    ['tools', '#/tools', () => page.locator(`tr[data-server="${deadServer}"]`).waitFor()],
    ['tokens', '#/tokens', () => page.locator('tr[data-token-id]').first().waitFor()],
  ];
  for (const [name, hash, ready] of phoneViews) {
    await page.goto(`${BASE}/${hash}`);
    await ready();
    await noOverflow(name);
    await shot(`${name}-phone`, name !== 'task');
  }
  passed();

  begin('dark mode: the squad and a task, at both widths');
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(`${BASE}/#/squads/${s.squad}/tasks/${s.route.id}`);
  await page.getByRole('dialog').getByText(mention).waitFor();
  await shot('task-phone-dark', false);
  await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
  await card('Check the fuel').waitFor();
  await shot('squad-phone-dark');
  await page.setViewportSize(DESKTOP);
  await shot('squad-desktop-dark');
  passed();

  begin('sign out; a fresh page asks for the token again');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Organization token').waitFor();
  if (await page.evaluate(() => sessionStorage.getItem('squadron.token'))) throw new Error('sign-out kept the token');
  if (pageErrors.length) throw new Error(`uncaught errors in the page: ${pageErrors.join(' | ')}`);
  passed();
}

// However it hangs, the run ends: fail, close the browser, exit.
const watchdog = setTimeout(async () => {
  console.error(`dashboard e2e FAILED: still at step "${step}" after ${DEADLINE / 1000} s`);
  await Promise.race([browser?.close(), new Promise((resolve) => setTimeout(resolve, 3000))]).catch(() => {});
  process.exit(1);
}, DEADLINE);

try {
  await main();
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`dashboard e2e passed in ${secs} s (screenshots in ${SHOTS}):`);
  for (const line of done) console.log(`  ok  ${line}`);
  process.exitCode = 0;
} catch (err) {
  console.error(`dashboard e2e FAILED at step "${step}": ${err.message}`);
  for (const line of done) console.error(`  ok  ${line}`);
  if (page) await page.screenshot({ path: join(SHOTS, 'failure.png'), fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await browser?.close().catch(() => {});
}
