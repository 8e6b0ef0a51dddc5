/**
 * The optional judge hook: after an allowed call, an HTTP endpoint is asked for a drift score.
 * Request: POST {purpose, call: {task_id, call_id, agent_type, tool, resource, args}} (secrets
 * redacted); answer: {score: 0..1}. Whatever it answers, late or never, it is only ever a signal.
 */
import type { DriftJudge, JudgeQuery } from '@mandate/core';

export class HttpJudge implements DriftJudge {
  private readonly url: string;
  private readonly timeoutMs: number;
  private readonly token: string | undefined;

  constructor(url: string, timeoutMs: number, token?: string) {
    this.url = url;
    this.timeoutMs = timeoutMs;
    this.token = token;
  }

  async judge(q: JudgeQuery): Promise<number> {
    const res = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(this.token !== undefined ? { authorization: `Bearer ${this.token}` } : {}) },
      body: JSON.stringify({ purpose: q.purpose, call: { task_id: q.taskId, call_id: q.callId, agent_type: q.agentType, tool: q.tool, resource: q.resource ?? null, args: q.args } }),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!res.ok) throw new Error(`judge answered ${res.status}`);
    const text = await res.text();
    if (text.length > 4096) throw new Error('judge answer too large');
    const body = JSON.parse(text) as unknown;
    const score = body !== null && typeof body === 'object' ? (body as Record<string, unknown>)['score'] : undefined;
    if (typeof score !== 'number' || !Number.isFinite(score) || score < 0 || score > 1) throw new Error('judge answer has no score in 0..1');
    return score;
  }
}
