/**
 * How a session hands the client's messages to the SDK's Protocol: a well-formed message goes
 * straight to the handler of its kind (the SDK's own dispatch tries up to four zod schemas per
 * message first); anything else still takes the SDK's way and is refused there.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { JSONRPCErrorResponseSchema, JSONRPCNotificationSchema, JSONRPCRequestSchema, JSONRPCResultResponseSchema, ListToolsRequestSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it, vi } from 'vitest';
import { protocolDispatch } from '../src/session.ts';

function serverWithTools(): Server {
  const server = new Server({ name: 't', version: '1' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: [{ name: 'echo', inputSchema: { type: 'object' } }] }));
  return server;
}

describe('the session dispatch of client messages', () => {
  it('exists for this SDK: its Protocol has a handler per message kind', () => {
    expect(protocolDispatch(serverWithTools())).toBeTypeOf('function');
  });

  it('routes each kind as the SDK would: a request is answered, a response and a notification reach their handlers', async () => {
    const server = serverWithTools();
    const [ours, theirs] = InMemoryTransport.createLinkedPair();
    const sent: JSONRPCMessage[] = [];
    theirs.onmessage = (m) => void sent.push(m);
    await theirs.start();
    await server.connect(ours);
    const dispatch = protocolDispatch(server);
    if (dispatch === undefined) throw new Error('no dispatch');
    // none of the SDK's type guards runs for a message dispatched directly
    const guards = [JSONRPCRequestSchema, JSONRPCNotificationSchema, JSONRPCResultResponseSchema, JSONRPCErrorResponseSchema].map((s) => vi.spyOn(s, 'safeParse'));
    const notified = vi.fn();
    server.fallbackNotificationHandler = async (n) => void notified(n.method);
    try {
      dispatch({ jsonrpc: '2.0', id: 7, method: 'tools/list' });
      dispatch({ jsonrpc: '2.0', method: 'notifications/whatever' });
      const errors: Error[] = [];
      server.onerror = (e) => void errors.push(e);
      dispatch({ jsonrpc: '2.0', id: 99, result: {} });
      await vi.waitFor(() => expect(sent).toHaveLength(1));
      expect(sent[0]).toMatchObject({ jsonrpc: '2.0', id: 7, result: { tools: [{ name: 'echo' }] } });
      expect(notified).toHaveBeenCalledWith('notifications/whatever');
      // a response nobody waits for: the Protocol's own complaint, as through its dispatch
      expect(errors.map((e) => e.message).join('\n')).toMatch(/unknown message ID/);
      for (const g of guards) expect(g).not.toHaveBeenCalled();
      // (the spies do see the SDK's own dispatch)
      ours.onmessage?.({ jsonrpc: '2.0', method: 'notifications/other' });
      expect(guards.some((g) => g.mock.calls.length > 0)).toBe(true);
    } finally {
      for (const g of guards) g.mockRestore();
      await server.close();
    }
  });
});
