import type { BudgetLedger, BudgetLimits, BudgetUsage } from '@mandate/core';
import { bool, num, optNum, optStr, type Db, type Queryable } from './db.ts';

export interface BudgetClaim {
  readonly taskId: string;
  readonly tool: string;
  readonly limits: BudgetLimits;
}

export interface BudgetSpend {
  ok: boolean;
  usage: BudgetUsage;
  exhausted?: 'calls' | 'tool';
}

/**
 * Checks and counts each claim, in order, under row locks (see spend_budgets in migrations.ts):
 * exact however many nodes spend the same task's budget at once. Inside the audit batch it runs
 * in that batch's transaction, so a call is counted exactly when its records commit.
 */
export async function spendBudgets(q: Queryable, claims: readonly BudgetClaim[]): Promise<BudgetSpend[]> {
  if (claims.length === 0) return [];
  const { rows } = await q.query({
    name: 'mandate_spend_budgets', // prepared once per connection: the hot path skips parsing
    text: 'SELECT * FROM spend_budgets($1::text[], $2::text[], $3::numeric[], $4::numeric[])',
    values: [claims.map((c) => c.taskId), claims.map((c) => c.tool), claims.map((c) => c.limits.calls ?? null), claims.map((c) => c.limits.toolCalls ?? null)],
  });
  if (rows.length !== claims.length) throw new Error(`spend_budgets answered ${rows.length} of ${claims.length} claims`);
  return rows.map((r): BudgetSpend => {
    const usage = { calls: num(r, 'r_calls'), toolCalls: num(r, 'r_tool_calls') };
    if (bool(r, 'r_ok')) return { ok: true, usage };
    return { ok: false, usage, exhausted: optStr(r, 'r_exhausted') === 'tool' ? 'tool' : 'calls' };
  });
}

export function postgresBudgets(db: Db) {
  return {
    async consume(taskId, tool, limits) {
      const [spent] = await spendBudgets(db, [{ taskId, tool, limits }]);
      if (spent === undefined) throw new Error('spend_budgets answered nothing');
      return spent;
    },

    async usage(taskId, tool) {
      const r = await db.row(
        `SELECT (SELECT calls FROM budget_calls WHERE task_id = $1) AS calls,
                (SELECT calls FROM budget_tool_calls WHERE task_id = $1 AND tool = $2) AS tool_calls`,
        [taskId, tool],
      );
      return { calls: r === undefined ? 0 : optNum(r, 'calls') ?? 0, toolCalls: r === undefined ? 0 : optNum(r, 'tool_calls') ?? 0 };
    },

    async carve(taskId, calls, limit) {
      // one statement: the check and the increment happen under the row lock ON CONFLICT takes
      const r = await db.row(
        `INSERT INTO budget_calls AS b (task_id, calls) SELECT $1, $2::bigint WHERE $2::bigint <= $3::numeric
         ON CONFLICT (task_id) DO UPDATE SET calls = b.calls + excluded.calls WHERE b.calls + excluded.calls <= $3::numeric
         RETURNING calls`,
        [taskId, calls, limit],
      );
      return r !== undefined;
    },
  } satisfies BudgetLedger;
}
