// A small MCP server (stdio, on the official SDK) whose tool list grows: it starts with
// `add_tool`, and each call of it registers one more tool (`extra_1`, `extra_2`, ...), which
// makes the SDK send `notifications/tools/list_changed`. The test suite uses it to check that
// a client's tool list follows a server's announcements.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';

const server = new McpServer({ name: 'growing', version: '1.0.0' });
let added = 0;
server.registerTool('add_tool', { description: 'Adds a tool to this server' }, async () => {
  added += 1;
  const name = `extra_${added}`;
  server.registerTool(name, { description: `Extra tool ${added}` }, async () => ({
    content: [{ type: 'text', text: `${name} ran` }],
  }));
  return { content: [{ type: 'text', text: `added ${name}` }] };
});
await server.connect(new StdioServerTransport());
