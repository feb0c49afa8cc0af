// Agents' chat completions as they stream, gathered from live events so that any view can show
// them: `agent.completion.started`, `.delta` ({text}, coalesced by the server every 100 ms)
// and `.finished` ({outcome, usage}). The first two are ephemeral (never replayed).

const KEEP = 20;

export class Completions {
  constructor(live) {
    this.items = new Map(); // completion id -> item, oldest first
    this.listeners = new Set();
    live.on((message) => this.apply(message));
  }

  /** Calls `fn(item)` whenever a completion starts, grows or ends; returns an unsubscribe. */
  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Newest first; only the squad's when `squadId` is given. */
  list(squadId) {
    return [...this.items.values()].reverse().filter((c) => !squadId || c.squadId === squadId);
  }

  clear() {
    this.items.clear();
  }

  apply(message) {
    const event = message.event || {};
    const kind = event.kind || '';
    if (!kind.startsWith('agent.completion.')) return;
    let item = this.items.get(event.completion_id);
    if (!item) {
      // A finished event replayed after a reconnect, for a completion never seen: skip it.
      if (kind === 'agent.completion.finished') return;
      item = {
        id: event.completion_id,
        squadId: message.squad_id,
        agent: event.agent || {},
        text: '',
        state: 'running',
        outcome: null,
        usage: null,
        startedAt: message.created_at,
      };
      this.items.set(item.id, item);
      this.trim();
    }
    if (kind === 'agent.completion.delta') item.text += event.text || '';
    if (kind === 'agent.completion.finished') {
      item.state = 'finished';
      item.outcome = event.outcome || 'completed';
      item.usage = event.usage || null;
    }
    for (const fn of this.listeners) fn(item);
  }

  trim() {
    while (this.items.size > KEEP) {
      const oldest = [...this.items.values()].find((c) => c.state === 'finished')
        || this.items.values().next().value;
      this.items.delete(oldest.id);
    }
  }
}
