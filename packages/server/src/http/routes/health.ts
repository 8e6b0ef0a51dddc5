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
    // the log still holds what its newest signed checkpoint covers (checked in the background)
    const integrity = await rt.auditIntegrity.state();
    const ready = store && fresh && write.ok && integrity.ok;
    const sharing = rt.behaviourSharing?.status();
    const body = {
      status: ready ? 'ready' : 'not_ready',
      checks: {
        store: store ? 'ok' : 'unavailable',
        commit: write.ok ? 'ok' : 'failing',
        audit: integrity.ok ? 'ok' : 'broken',
        ...(integrity.problem !== undefined ? { audit_problem: integrity.problem } : {}),
        change_feed: rt.changeFeedConnected() ? 'ok' : 'disconnected',
        policies: rt.policies.current.version,
        // several nodes with behaviour on: the exchange of per-agent counts between nodes
        ...(sharing !== undefined ? { behaviour_share: { status: sharing.fresh ? 'ok' : 'stale', node: sharing.node, rounds: sharing.rounds, failures: sharing.failures } } : {}),
      },
    };
    return reply.code(ready ? 200 : 503).send(body);
  });
}
