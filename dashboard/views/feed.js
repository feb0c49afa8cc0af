// The squad's activity feed and its notifications, both newest first. Entries come from
// /api/squad/activities on load and from stored live events after; `fromActivity` and
// `fromEvent` make them one shape.

import { agoTime, fill, h, label, plain } from '../dom.js';

/** An entry from /api/squad/activities. */
export function fromActivity(a) {
  return {
    seq: a.seq,
    kind: a.type.replace('_', '.'),
    message: a.message || label(a.type),
    task: a.task,
    quote: null,
    at: a.created_at,
  };
}

/** An entry from a stored live event (`{seq, created_at, event: {kind, message, ...}}`). */
export function fromEvent(message) {
  const event = message.event;
  return {
    seq: message.seq,
    kind: event.kind,
    message: event.message || label(event.kind),
    task: event.task || null,
    quote: event.comment?.content || null,
    at: message.created_at,
  };
}

export function renderFeed(list, entries, taskHref) {
  if (!entries.length) {
    fill(list, h('li', { class: 'empty', text: 'Nothing has happened yet.' }));
    return;
  }
  fill(list, entries.map((e) => h('li', { class: `activity kind-${e.kind.replace(/\W/g, '-')}`, dataset: { seq: e.seq } },
    h('p', {},
      h('span', { text: plain(e.message) }),
      e.task?.id && e.kind !== 'task.deleted'
        ? [' ', h('a', { href: taskHref(e.task.id), class: 'small', text: 'Open task', 'aria-label': `Open task ${e.task.title || ''}` })]
        : null),
    e.quote ? h('blockquote', { text: plain(e.quote) }) : null,
    h('p', { class: 'small muted' }, agoTime(e.at)))));
}

/** A notification from an activity entry (REST: who and why only) or a live event (all). */
export function noteFromActivity(a) {
  const [, agent, kind] = /^(.*) was notified \((\w+)\)$/.exec(a.message || '') || [];
  return { seq: a.seq, agent: agent || null, kind: kind || 'notified', content: null, taskId: a.task?.id, taskTitle: a.task?.title, at: a.created_at };
}

export function noteFromEvent(message) {
  const e = message.event;
  return {
    seq: message.seq,
    agent: e.agent?.name,
    kind: e.notification?.kind || 'notified',
    content: e.notification?.content || null,
    taskId: e.task?.id,
    taskTitle: e.task?.title,
    at: message.created_at,
  };
}

export function renderNotes(list, notes, taskHref) {
  if (!notes.length) {
    fill(list, h('li', { class: 'empty', text: 'No notifications yet.' }));
    return;
  }
  fill(list, notes.map((n) => h('li', { class: 'note' },
    h('p', {},
      h('strong', { text: n.agent || 'An agent' }), ` · ${label(n.kind)}`,
      n.taskId ? [' · ', h('a', { href: taskHref(n.taskId), text: n.taskTitle || 'task' })] : null),
    n.content ? h('p', { class: 'small', text: plain(n.content) }) : null,
    h('p', { class: 'small muted' }, agoTime(n.at)))));
}
