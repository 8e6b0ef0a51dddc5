import type { FastifyInstance } from 'fastify';
import type { MandateRuntime } from '../../compose.ts';

export function healthRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    let store = false;
    try {
      store = await rt.store.ping();
    } catch {
      store = false;
    }
    const fresh = rt.fresh();
    // answering reads is not enough: every allow waits for its audit commit
    const write = store ? await rt.writeHealth.check() : { ok: false };
    const ready = store && fresh && write.ok;
    const sharing = rt.behaviourSharing?.status();
    const body = {
      status: ready ? 'ready' : 'not_ready',
      checks: {
        store: store ? 'ok' : 'unavailable',
        commit: write.ok ? 'ok' : 'failing',
        change_feed: rt.changeFeedConnected() ? 'ok' : 'disconnected',
        policies: rt.policies.current.version,
        // several nodes with behaviour on: the exchange of per-agent counts between nodes
        ...(sharing !== undefined ? { behaviour_share: { status: sharing.fresh ? 'ok' : 'stale', node: sharing.node, rounds: sharing.rounds, failures: sharing.failures } } : {}),
      },
    };
    return reply.code(ready ? 200 : 503).send(body);
  });
}
