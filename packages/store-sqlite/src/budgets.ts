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
 * The budget spends of one group commit, inside its write transaction: each counter is read
 * once, checked and counted in memory for every call of the batch in order, and written back
 * once before the commit. The same answers as checking and counting each call on its own (same
 * transaction, same order), with two reads and two writes per task and tool instead of per call.
 * Must run inside a write transaction (BEGIN IMMEDIATE), so no other writer can slip in between.
 */
export class BudgetBatch {
  private readonly sql: Sql;
  private readonly calls = new Map<string, { used: number; dirty: boolean }>();
  private readonly tools = new Map<string, { taskId: string; tool: string; used: number; dirty: boolean }>();

  constructor(sql: Sql) {
    this.sql = sql;
  }

  spend(taskId: string, tool: string, limits: BudgetLimits): { ok: boolean; usage: BudgetUsage; exhausted?: 'calls' | 'tool' } {
    let total = this.calls.get(taskId);
    if (total === undefined) {
      const row = this.sql.get('SELECT calls FROM budget_calls WHERE task_id = ?', taskId);
      total = { used: row === undefined ? 0 : num(row, 'calls'), dirty: false };
      this.calls.set(taskId, total);
    }
    const key = taskId + '\u0000' + tool;
    let perTool = this.tools.get(key);
    if (perTool === undefined) {
      const row = this.sql.get('SELECT calls FROM budget_tool_calls WHERE task_id = ? AND tool = ?', taskId, tool);
      perTool = { taskId, tool, used: row === undefined ? 0 : num(row, 'calls'), dirty: false };
      this.tools.set(key, perTool);
    }
    const usage = { calls: total.used, toolCalls: perTool.used };
    if (limits.calls !== undefined && usage.calls >= limits.calls) return { ok: false, usage, exhausted: 'calls' };
    if (limits.toolCalls !== undefined && usage.toolCalls >= limits.toolCalls) return { ok: false, usage, exhausted: 'tool' };
    total.used += 1;
    total.dirty = true;
    perTool.used += 1;
    perTool.dirty = true;
    return { ok: true, usage: { calls: total.used, toolCalls: perTool.used } };
  }

  /** writes the counted spends; call once, inside the same transaction, before it commits */
  flush(): void {
    for (const [taskId, c] of this.calls) {
      if (c.dirty) this.sql.run('INSERT INTO budget_calls (task_id, calls) VALUES (?, ?) ON CONFLICT (task_id) DO UPDATE SET calls = excluded.calls', taskId, c.used);
    }
    for (const t of this.tools.values()) {
      if (t.dirty) {
        this.sql.run(
          `INSERT INTO budget_tool_calls (task_id, tool, calls) VALUES (?, ?, ?)
           ON CONFLICT (task_id, tool) DO UPDATE SET calls = excluded.calls`,
          t.taskId, t.tool, t.used,
        );
      }
    }
  }
}

export function sqliteBudgets(sql: Sql) {
  return {
    async consume(taskId, tool, limits) {
      return sql.tx(() => {
        const batch = new BudgetBatch(sql);
        const spent = batch.spend(taskId, tool, limits);
        batch.flush();
        return spent;
      });
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
