import type { BudgetLedger, BudgetLimits, BudgetUsage } from '@mandate/core';
import { num, type Sql } from './sql.ts';

export function readBudget(sql: Sql, taskId: string, tool: string): BudgetUsage {
  const total = sql.get('SELECT calls FROM budget_calls WHERE task_id = ?', taskId);
  const perTool = sql.get('SELECT calls FROM budget_tool_calls WHERE task_id = ? AND tool = ?', taskId, tool);
  return {
    calls: total === undefined ? 0 : num(total, 'calls'),
    toolCalls: perTool === undefined ? 0 : num(perTool, 'calls'),
  };
}

/**
 * Checks and counts one call. Must run inside a write transaction (BEGIN IMMEDIATE), so no other
 * writer can slip in between the check and the increment.
 */
export function spendBudget(
  sql: Sql,
  taskId: string,
  tool: string,
  limits: BudgetLimits,
): { ok: boolean; usage: BudgetUsage; exhausted?: 'calls' | 'tool' } {
  const usage = readBudget(sql, taskId, tool);
  if (limits.calls !== undefined && usage.calls >= limits.calls) return { ok: false, usage, exhausted: 'calls' };
  if (limits.toolCalls !== undefined && usage.toolCalls >= limits.toolCalls) return { ok: false, usage, exhausted: 'tool' };
  sql.run('INSERT INTO budget_calls (task_id, calls) VALUES (?, 1) ON CONFLICT (task_id) DO UPDATE SET calls = calls + 1', taskId);
  sql.run(
    `INSERT INTO budget_tool_calls (task_id, tool, calls) VALUES (?, ?, 1)
     ON CONFLICT (task_id, tool) DO UPDATE SET calls = calls + 1`,
    taskId, tool,
  );
  return { ok: true, usage: { calls: usage.calls + 1, toolCalls: usage.toolCalls + 1 } };
}

export function sqliteBudgets(sql: Sql) {
  return {
    async consume(taskId, tool, limits) {
      return sql.tx(() => spendBudget(sql, taskId, tool, limits));
    },

    async usage(taskId, tool) {
      return readBudget(sql, taskId, tool);
    },

    async carve(taskId, calls, limit) {
      return sql.tx(() => {
        const used = readBudget(sql, taskId, '').calls;
        if (used + calls > limit) return false;
        sql.run('INSERT INTO budget_calls (task_id, calls) VALUES (?, ?) ON CONFLICT (task_id) DO UPDATE SET calls = calls + excluded.calls', taskId, calls);
        return true;
      });
    },
  } satisfies BudgetLedger;
}
