/**
 * The one conformance suite every store adapter runs (SQLite now, PostgreSQL later). It speaks
 * only the ports in core, so an adapter passes by behaving, not by sharing code.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '@mandate/core';
import { agentSuite } from './agents.ts';
import { approvalSuite, controlSuite } from './approvals.ts';
import { auditSuite } from './audit.ts';
import { alertSinkSuite } from './alert-sinks.ts';
import { killOutboxSuite } from './kill-outbox.ts';
import { alertSuite, containmentSuite } from './behaviour.ts';
import { budgetSuite } from './budgets.ts';
import { checkpointSuite } from './checkpoints.ts';
import { decisionCommitSuite } from './decision-commit.ts';
import { draft } from './fixtures.ts';
import { keySuite } from './keys.ts';
import { operatorSuite } from './operators.ts';
import { revocationSuite } from './revocations.ts';
import { taskSuite } from './tasks.ts';
import { supervisionSuite } from './supervision.ts';
import { labelSuite } from './labels.ts';

// builders for adapter-specific tests, so they describe records the way the suite does
export { alert, restriction } from './behaviour.ts';
export { sha256 as testHasher, agent, task, seedTask, draft, signingKey, operatorKey, approval, T0, MINUTE } from './fixtures.ts';

export interface StoreUnderTest {
  readonly store: Store;
  /** removes what makeStore created (files, schemas); the suite has closed the store by then */
  cleanup(): Promise<void>;
}

/**
 * Registers the suite. `makeStore` must return a fresh, empty store for every test, created
 * with a hasher that computes lowercase hex SHA-256 (the suite checks record hashes itself).
 * `close()` must be idempotent: some tests close the store themselves.
 */
export function runStoreConformance(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`store conformance: ${name}`, () => {
    let current: StoreUnderTest | undefined;

    beforeEach(async () => {
      current = await makeStore();
    });

    afterEach(async () => {
      const done = current;
      current = undefined;
      if (done === undefined) return;
      try {
        await done.store.close();
      } finally {
        await done.cleanup();
      }
    });

    const store = (): Store => {
      if (current === undefined) throw new Error('no store: makeStore failed or the test ran outside the suite');
      return current.store;
    };

    agentSuite(store);
    taskSuite(store);
    revocationSuite(store);
    budgetSuite(store);
    approvalSuite(store);
    controlSuite(store);
    auditSuite(store);
    decisionCommitSuite(store);
    checkpointSuite(store);
    keySuite(store);
    operatorSuite(store);
    alertSuite(store);
    containmentSuite(store);
    alertSinkSuite(store);
    killOutboxSuite(store);
    supervisionSuite(store);
    labelSuite(store);

    describe('lifecycle', () => {
      it('answers a ping', async () => {
        expect(await store().ping()).toBe(true);
      });

      it('commits a write probe that leaves nothing behind: no audit record, no control', async () => {
        await store().audit.append([draft(1)]);
        await store().probeWrite();
        await store().probeWrite();
        expect((await store().audit.head())?.seq).toBe(1);
        expect(await store().controls.getControl('mandate.write_probe')).toBeUndefined();
      });

      it('refuses a write probe once closed, with STORE_UNAVAILABLE', async () => {
        await store().close();
        await expect(store().probeWrite()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
      });

      it('commits audit appends already accepted before it closes', async () => {
        const pending = store().audit.append([draft(1), draft(2)]);
        await store().close();
        const records = await pending;
        expect(records.map((r) => r.seq)).toEqual([1, 2]);
      });

      it('can be closed twice', async () => {
        await store().close();
        await expect(store().close()).resolves.toBeUndefined();
      });
    });
  });
}
