// The server's HTTP API, as the dashboard uses it. One `request` adds the organization token
// (kept in sessionStorage: this tab only), names the squad for Mission Control routes
// (`X-Squad-Id`, acting as a person), unwraps `{data, meta}` envelopes and turns both error
// shapes into an ApiError.

const TOKEN_KEY = 'squadron.token';

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Called with the ApiError when the server refuses the token (401); app.js signs out. */
let onUnauthorized = () => {};
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One API call. `body` is sent as JSON unless it is FormData; `squad` sets X-Squad-Id;
 * `token` overrides the session's (sign-in checks a token before keeping it). A 429 is
 * retried after its Retry-After, at most twice and never for more than 10 s in all.
 */
export async function request(method, path, { body, squad, token = session.token, signal } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (squad) headers['x-squad-id'] = squad;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let waited = 0;
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(path, { method, headers, body: payload, signal });
    if (res.status === 429 && attempt < 2) {
      const wait = Math.min(Number(res.headers.get('retry-after') || 1), 10 - waited);
      if (wait > 0) {
        waited += wait;
        await sleep(wait * 1000);
        continue;
      }
    }
    return read(res);
  }
}

async function read(res) {
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: an error page or plain text
  }
  if (!res.ok) {
    // Mission Control and SquadOS: {error, code}; the /v1 family: {error: {message, code}}.
    const err = json?.error;
    const message = typeof err === 'string' ? err : err?.message || text || res.statusText;
    const code = typeof err === 'string' ? json.code : err?.code || err?.type;
    const error = new ApiError(res.status, code || String(res.status), message);
    if (res.status === 401) onUnauthorized(error);
    throw error;
  }
  if (json && typeof json === 'object' && 'data' in json && 'meta' in json) return json.data;
  return json;
}

const get = (path, opts) => request('GET', path, opts);
const post = (path, body, opts = {}) => request('POST', path, { ...opts, body });
const id = encodeURIComponent;

// Every route the dashboard calls, by what it does.
export const api = {
  // Mission Control: squads, the board, comments (a person acts on a squad with X-Squad-Id)
  squads: (opts) => get('/api/squads', opts),
  squad: (squad) => get(`/api/squads/${id(squad)}`),
  createSquad: (body) => post('/api/squads', body),
  agents: (squad) => get('/api/squad/agents', { squad }),
  board: (squad) => get('/api/squad/tasks', { squad }),
  activities: (squad, limit = 50) => get(`/api/squad/activities?limit=${limit}`, { squad }),
  task: (squad, task) => get(`/api/tasks/${id(task)}`, { squad }),
  createTask: (squad, body) => post('/api/tasks', body, { squad }),
  moveTask: (squad, task, status) => request('PATCH', `/api/tasks/${id(task)}`, { squad, body: { status } }),
  comment: (squad, task, content) => post(`/api/tasks/${id(task)}/comments`, { content }, { squad }),
  ticket: () => post('/api/live/tickets'),

  // SquadOS: organization tokens (admins) and knowledge bases
  tokens: () => get('/api/v1/tokens'),
  createToken: (body) => post('/api/v1/tokens', body),
  revokeToken: (token) => post(`/api/v1/tokens/${id(token)}/revoke`),
  deleteToken: (token) => request('DELETE', `/api/v1/tokens/${id(token)}`),
  bases: () => get('/api/v1/bases'),
  createBase: (body) => post('/api/v1/bases', body),

  // The OpenAI-compatible family: gateway agents, chat, files, vector stores
  gatewayAgents: () => get('/v1/core/agents'),
  mcpServers: () => get('/v1/core/servers'),
  tools: () => get('/v1/core/tools'),
  chat: (body, signal) => fetch('/v1/chat/completions', {
    method: 'POST',
    headers: { authorization: `Bearer ${session.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  }),
  storeFiles: (store) => get(`/v1/vector_stores/${id(store)}/file-details`),
  upload: (file) => {
    const form = new FormData();
    form.append('purpose', 'assistants');
    form.append('file', file);
    return post('/v1/files', form);
  },
  addFile: (store, fileId) => post(`/v1/vector_stores/${id(store)}/files`, { file_id: fileId }),
  search: (store, query) => post(`/v1/vector_stores/${id(store)}/search`, { query, max_num_results: 5 }),
};
