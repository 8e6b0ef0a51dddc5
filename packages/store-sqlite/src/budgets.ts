import type { BudgetUsage, BudgetLedger } from '@mandate/core';
import { num, type Sql } from './sql.ts';

export function sqliteBudgets(sql: Sql) {
  const read = (taskId: string, tool: string): BudgetUsage => {
    const total = sql.get('SELECT calls FROM budget_calls WHERE task_id = ?', taskId);
    const perTool = sql.get('SELECT calls FROM budget_tool_calls WHERE task_id = ? AND tool = ?', taskId, tool);
    return {
      calls: total === undefined ? 0 : num(total, 'calls'),
      toolCalls: perTool === undefined ? 0 : num(perTool, 'calls'),
    };
  };

  return {
    async consume(taskId, tool, limits) {
      // check and increment in one IMMEDIATE transaction: no other writer can slip in between
      return sql.tx(() => {
        const usage = read(taskId, tool);
        if (limits.calls !== undefined && usage.calls >= limits.calls) return { ok: false, usage, exhausted: 'calls' as const };
        if (limits.toolCalls !== undefined && usage.toolCalls >= limits.toolCalls) return { ok: false, usage, exhausted: 'tool' as const };
        sql.run(
          'INSERT INTO budget_calls (task_id, calls) VALUES (?, 1) ON CONFLICT (task_id) DO UPDATE SET calls = calls + 1',
          taskId,
        );
        sql.run(
          `INSERT INTO budget_tool_calls (task_id, tool, calls) VALUES (?, ?, 1)
           ON CONFLICT (task_id, tool) DO UPDATE SET calls = calls + 1`,
          taskId, tool,
        );
        return { ok: true, usage: { calls: usage.calls + 1, toolCalls: usage.toolCalls + 1 } };
      });
    },

    async usage(taskId, tool) {
      return read(taskId, tool);
    },
  } satisfies BudgetLedger;
}
