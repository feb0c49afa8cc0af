// Agent tools: the organization's MCP servers with their connection state (a server that is
// down says why), and every tool they offer. Refreshed every few seconds while shown, since a
// server's state changes on its own (it reconnects with backoff).

import { api } from '../api.js';
import { agoTime, badge, fill, h, say } from '../dom.js';

const REFRESH_MS = 5000;

export function render(main) {
  const servers = h('tbody', {});
  const tools = h('tbody', {});
  const notice = h('p', { class: 'notice', hidden: true, role: 'alert' });

  main.append(
    h('div', { class: 'page-head' },
      h('h1', { text: 'Tools' }),
      h('p', { class: 'muted', text: 'Model Context Protocol servers whose tools your agents may use. Add them with POST /v1/core/add/server; give an agent their tools with "tools" in /v1/core/add/agent.' })),
    notice,
    h('section', { class: 'panel', 'aria-labelledby': 'servers-h' },
      h('h2', { id: 'servers-h', text: 'Servers' }),
      h('div', { class: 'table-wrap' },
        h('table', { class: 'table servers' },
          h('thead', {}, h('tr', {},
            ['Name', 'Transport', 'Status', 'Tools', 'Since'].map((t) => h('th', { scope: 'col', text: t })))),
          servers))),
    h('section', { class: 'panel', 'aria-labelledby': 'tools-h' },
      h('h2', { id: 'tools-h', text: 'Tools' }),
      h('div', { class: 'table-wrap' },
        h('table', { class: 'table tools' },
          h('thead', {}, h('tr', {},
            ['Tool', 'Server', 'Description', 'Available'].map((t) => h('th', { scope: 'col', text: t })))),
          tools))));

  const empty = (cols, text) => h('tr', {}, h('td', { colSpan: cols, class: 'empty', text }));

  async function load() {
    try {
      const [serverList, toolList] = await Promise.all([api.mcpServers(), api.tools()]);
      fill(servers, serverList.data.length ? serverList.data.map(serverRow) : empty(5, 'No MCP servers yet.'));
      fill(tools, toolList.data.length ? toolList.data.map(toolRow) : empty(4, 'No tools.'));
      say(notice, '');
    } catch (err) {
      say(notice, err, 'error');
    }
  }

  function serverRow(s) {
    const where = s.transport === 'http' ? s.url : [s.command, ...s.args].join(' ');
    const state = { connected: 'active', connecting: 'running', down: 'failed', disabled: 'offline' }[s.status];
    return h('tr', { dataset: { server: s.name, status: s.status } },
      h('td', { dataset: { label: 'Name' } },
        h('div', {}, h('strong', { text: s.name }), h('div', { class: 'small muted mono', text: where }))),
      h('td', { dataset: { label: 'Transport' }, text: s.transport }),
      h('td', { dataset: { label: 'Status' } },
        h('div', {},
          badge(state || s.status, s.status),
          s.error ? h('div', { class: 'small muted', text: s.error }) : null)),
      h('td', { dataset: { label: 'Tools' }, text: String(s.tools) }),
      h('td', { dataset: { label: 'Since' } }, agoTime(s.status_since)));
  }

  function toolRow(t) {
    return h('tr', { dataset: { tool: t.name } },
      h('td', { dataset: { label: 'Tool' } }, h('code', { text: t.name })),
      h('td', { dataset: { label: 'Server' }, text: t.server }),
      h('td', { dataset: { label: 'Description' }, text: t.description || '' }),
      h('td', { dataset: { label: 'Available' } }, badge(t.available ? 'active' : 'offline', t.available ? 'Yes' : 'No')));
  }

  load();
  const timer = setInterval(load, REFRESH_MS);
  return () => clearInterval(timer);
}
