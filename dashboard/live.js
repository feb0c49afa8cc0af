// The live connection: one WebSocket to /api/live for the whole tab, opened with a single-use
// ticket (a browser cannot put the token in a WebSocket header). It subscribes to squads and
// remembers the last sequence number seen per squad; after a drop it reconnects with a fresh
// ticket and subscribes again with `since`, so the server replays whatever was missed.
//
// States: "offline" (not started, or signed out), "connecting", "live", "reconnecting".

const PING_EVERY_MS = 25_000;
const MAX_BACKOFF_MS = 10_000;

export class Live {
  /** `ticket` is an async function returning a fresh ticket string. */
  constructor(ticket) {
    this.ticket = ticket;
    this.state = 'offline';
    this.squads = new Set(); // squads to be subscribed to
    this.seqs = new Map(); // squad id -> last sequence number seen
    this.listeners = new Set();
    this.stateListeners = new Set();
    this.socket = null;
    this.attempts = 0;
    this.running = false;
    this.timer = null;
    this.pinger = null;
    this.wasLive = false;
    this.confirmed = new Set(); // squads whose subscription this socket has confirmed
    this.waiters = new Map(); // squad id -> resolvers waiting for that confirmation
  }

  /** Calls `fn(message)` for every event (stored or ephemeral); returns an unsubscribe. */
  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Calls `fn(state)` now and on every change of state; returns an unsubscribe. */
  onState(fn) {
    this.stateListeners.add(fn);
    fn(this.state);
    return () => this.stateListeners.delete(fn);
  }

  /**
   * Subscribes to these squads (added to those already watched). Resolves once the server has
   * confirmed each subscription, so that what a view loads afterwards cannot miss an event;
   * or after `wait` ms when the connection is down (the view then loads anyway).
   */
  watch(squadIds, wait = 2000) {
    const pending = [];
    for (const id of squadIds) {
      if (!this.squads.has(id)) {
        this.squads.add(id);
        this.subscribe(id);
      }
      if (!this.confirmed.has(id)) {
        pending.push(new Promise((resolve) => {
          if (!this.waiters.has(id)) this.waiters.set(id, []);
          this.waiters.get(id).push(resolve);
        }));
      }
    }
    if (!pending.length) return Promise.resolve();
    return Promise.race([Promise.all(pending), new Promise((resolve) => setTimeout(resolve, wait))]);
  }

  /**
   * Tells where a view's own load of a squad ended (its newest event), in case no subscription
   * has started yet: the first one then asks for what came after it.
   */
  seed(squadId, seq) {
    if (!this.seqs.has(squadId) && Number.isInteger(seq)) this.seqs.set(squadId, seq);
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  /** Closes the connection and stays closed (sign-out). What was seen is kept for `start`. */
  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.closeSocket();
    this.setState('offline');
  }

  /** Forgets everything (another token signs in next). */
  reset() {
    this.stop();
    this.squads.clear();
    this.seqs.clear();
    this.wasLive = false;
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    for (const fn of this.stateListeners) fn(state);
  }

  async connect() {
    this.setState(this.wasLive ? 'reconnecting' : 'connecting');
    let ticket;
    try {
      ticket = await this.ticket();
    } catch (err) {
      if (err.status === 401) return this.stop();
      return this.retry();
    }
    if (!this.running) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}/api/live?ticket=${encodeURIComponent(ticket)}`);
    this.socket = socket;
    socket.addEventListener('open', () => {
      if (socket !== this.socket) return;
      this.attempts = 0;
      this.wasLive = true;
      this.setState('live');
      for (const id of this.squads) this.subscribe(id);
      this.pinger = setInterval(() => this.send({ op: 'ping' }), PING_EVERY_MS);
    });
    socket.addEventListener('message', (e) => {
      if (socket === this.socket) this.receive(e.data);
    });
    socket.addEventListener('close', () => {
      if (socket !== this.socket) return;
      this.closeSocket();
      if (this.running) this.retry();
    });
  }

  retry() {
    this.setState('reconnecting');
    // 0.5 s, 1 s, 2 s... up to 10 s, with jitter so many tabs do not come back at once.
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempts) * (0.75 + Math.random() / 2);
    this.attempts += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.running && this.connect(), delay);
  }

  closeSocket() {
    clearInterval(this.pinger);
    this.confirmed.clear();
    const socket = this.socket;
    this.socket = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close();
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  /** Asks for the squad's events after the last one seen (all new ones if none seen yet). */
  subscribe(squadId) {
    const since = this.seqs.get(squadId);
    this.send(since === undefined
      ? { op: 'subscribe', squad_id: squadId }
      : { op: 'subscribe', squad_id: squadId, since });
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    switch (message.type) {
      case 'subscribed': {
        // Without `since` the stream starts after `last_seq`; with it, replay follows.
        const id = message.squad_id;
        if (!this.seqs.has(id)) this.seqs.set(id, message.last_seq);
        this.confirmed.add(id);
        for (const resolve of this.waiters.get(id) || []) resolve();
        this.waiters.delete(id);
        break;
      }
      case 'resync':
        // We fell behind: everything up to last_seq came; fetch the rest from the store.
        this.seqs.set(message.squad_id, message.last_seq);
        this.subscribe(message.squad_id);
        break;
      case 'event': {
        const seq = message.seq;
        if (seq !== null && seq !== undefined) {
          const last = this.seqs.get(message.squad_id);
          if (last !== undefined && seq <= last) return; // seen already
          this.seqs.set(message.squad_id, seq);
        }
        for (const fn of this.listeners) {
          try {
            fn(message);
          } catch (err) {
            console.error('live listener failed', err);
          }
        }
        break;
      }
      case 'error':
        console.warn('live:', message.code, message.message);
        break;
      default:
        break; // pong, unsubscribed
    }
  }
}
