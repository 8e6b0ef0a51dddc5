import { describe, expect, it } from 'vitest';
import { agent, CEILING, T0, withCode, type GetStore } from './fixtures.ts';

export function agentSuite(store: GetStore): void {
  describe('agents', () => {
    it('returns an agent exactly as it was created', async () => {
      const a = agent();
      await store().agents.createAgent(a);
      expect(await store().agents.getAgent(a.id)).toEqual(a);
    });

    it('returns undefined for an unknown agent', async () => {
      expect(await store().agents.getAgent('spiffe://acme.test/nobody')).toBeUndefined();
    });

    it('refuses to create an agent whose id exists, with CONFLICT, and keeps the original', async () => {
      const a = agent();
      await store().agents.createAgent(a);
      await expect(store().agents.createAgent({ ...a, owner: 'someone-else' })).rejects.toMatchObject(withCode('CONFLICT'));
      expect(await store().agents.getAgent(a.id)).toEqual(a);
    });

    it('updates only the patched fields, stamps updatedAt and returns the stored agent', async () => {
      const a = agent();
      await store().agents.createAgent(a);
      const updated = await store().agents.updateAgent(a.id, { status: 'disabled' }, T0 + 5000);
      expect(updated).toEqual({ ...a, status: 'disabled', updatedAt: T0 + 5000 });
      expect(await store().agents.getAgent(a.id)).toEqual(updated);
    });

    it('replaces owner, type and ceiling when they are patched', async () => {
      const a = agent();
      await store().agents.createAgent(a);
      const ceiling = { tools: ['fs.read_file'], max_calls: 10 };
      const updated = await store().agents.updateAgent(a.id, { owner: 'team-b', type: 'workflow', ceiling }, T0 + 1);
      expect(updated).toEqual({ ...a, owner: 'team-b', type: 'workflow', ceiling, updatedAt: T0 + 1 });
      expect(await store().agents.getAgent(a.id)).toEqual(updated);
      expect(updated.ceiling).not.toHaveProperty('data_classes');
      expect(CEILING).toHaveProperty('data_classes');
    });

    it('refuses to update an unknown agent with NOT_FOUND', async () => {
      await expect(store().agents.updateAgent('spiffe://acme.test/nobody', { status: 'disabled' }, T0)).rejects.toMatchObject(
        withCode('NOT_FOUND'),
      );
      expect(await store().agents.getAgent('spiffe://acme.test/nobody')).toBeUndefined();
    });

    it('lists agents ordered by id and pages with the after cursor', async () => {
      const ids = ['spiffe://acme.test/c', 'spiffe://acme.test/a', 'spiffe://acme.test/d', 'spiffe://acme.test/b'];
      for (const id of ids) await store().agents.createAgent(agent(id));
      const first = await store().agents.listAgents({ limit: 2 });
      expect(first.map((a) => a.id)).toEqual(['spiffe://acme.test/a', 'spiffe://acme.test/b']);
      const second = await store().agents.listAgents({ limit: 2, after: 'spiffe://acme.test/b' });
      expect(second.map((a) => a.id)).toEqual(['spiffe://acme.test/c', 'spiffe://acme.test/d']);
      expect(await store().agents.listAgents({ limit: 2, after: 'spiffe://acme.test/d' })).toEqual([]);
      expect(second[0]).toEqual(agent('spiffe://acme.test/c'));
    });

    it('lists nothing when there are no agents or the limit is zero', async () => {
      expect(await store().agents.listAgents({ limit: 10 })).toEqual([]);
      await store().agents.createAgent(agent());
      expect(await store().agents.listAgents({ limit: 0 })).toEqual([]);
      expect(await store().agents.listAgents({ limit: 10, after: undefined })).toHaveLength(1);
    });
  });
}
