// A squad's agents: status, current task, and how long ago each last heartbeat was (the
// ticker in app.js keeps that age moving). Offline agents are marked and dimmed.

import { agoTime, badge, fill, h } from '../dom.js';

/**
 * Draws `agents` (from /api/squad/agents, kept current by live heartbeats) into `list`.
 * `taskTitle(id)` names a task; `taskHref(id)` links to it.
 */
export function renderAgents(list, agents, { taskTitle, taskHref }) {
  if (!agents.length) {
    fill(list, h('li', { class: 'empty', text: 'No agents yet.' }));
    return;
  }
  fill(list, agents.map((agent) => {
    const offline = agent.status === 'offline';
    const taskId = agent.current_task_id;
    const title = taskId && (taskTitle(taskId) || agent.current_task?.title);
    return h('li', { class: `agent${offline ? ' is-offline' : ''}`, dataset: { agentId: agent.id, status: agent.status } },
      h('div', { class: 'agent-head' },
        h('strong', { class: 'agent-name', text: agent.name }),
        badge(agent.status, offline ? 'Offline' : undefined)),
      agent.role ? h('p', { class: 'small muted', text: agent.role }) : null,
      h('p', { class: 'small agent-task' }, title
        ? ['Working on ', h('a', { href: taskHref(taskId), text: title })]
        : h('span', { class: 'muted', text: 'No current task' })),
      h('p', { class: 'small muted' }, agent.last_heartbeat_at
        ? agoTime(agent.last_heartbeat_at, 'Last heartbeat ')
        : 'No heartbeat yet',
      ` · every ${agent.heartbeat_interval_secs} s`));
  }));
}
