/** The `kill_hooks` section: webhooks told of every kill, durably, so systems outside Mandate can react. */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { MandateError, type KillKind } from '@mandate/core';

const DAY = 86_400_000;
const MIN_SECRET = 16;
const MAX_SECRET = 1024;

export const KILL_HOOK_KINDS = ['agent', 'task', 'emergency_stop', 'any'] as const;

const killHookSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/)
      .describe("the hook's name: its delivery cursor is kept under it in the store, and it ends every delivery id (a renamed hook starts afresh at the newest kill)"),
    url: z.url().describe('where each kill is POSTed (JSON, signed)'),
    kills: z
      .array(z.enum(KILL_HOOK_KINDS))
      .min(1)
      .max(KILL_HOOK_KINDS.length)
      .default(['any'])
      .describe('which kills this hook is told of: agent (an agent killed, with its tasks), task (a task and its subtree), emergency_stop (every agent at once), or any'),
    secret_file: z.string().min(1).optional().describe(`a file holding the HMAC-SHA256 signing key (at least ${MIN_SECRET} characters; surrounding whitespace is ignored)`),
    secret_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/)
      .optional()
      .describe(`the environment variable holding the HMAC-SHA256 signing key (at least ${MIN_SECRET} characters)`),
    max_attempts: z.number().int().min(1).max(20).default(5).describe('attempts for a delivery the receiver rejects (a 4xx other than 408, 425, 429), then it is dropped (logged with its id); an unreachable or failing receiver is retried until retention_ms'),
    backoff_ms: z.number().int().min(10).max(600_000).default(500).describe('first retry delay; doubled after each failure, up to max_backoff_ms'),
    max_backoff_ms: z.number().int().min(10).max(3_600_000).default(30_000).describe('the longest delay between two attempts'),
    timeout_ms: z.number().int().min(100).max(60_000).default(5_000).describe('one attempt is abandoned (and retried) after this long'),
    retention_ms: z
      .number()
      .int()
      .min(60_000)
      .max(90 * DAY)
      .default(7 * DAY)
      .describe('how long a kill is still owed to this hook: one older and still undelivered is dropped, logged with its id and counted'),
    poll_ms: z
      .number()
      .int()
      .min(50)
      .max(60_000)
      .default(1_000)
      .describe("how often an idle node looks at the outbox and for a free delivery lease, as a backstop: a kill is sent at once by the node holding the hook's lease, whether it was made there or on another node (the PostgreSQL change feed tells it)"),
  })
  .refine((h) => (h.secret_file === undefined) !== (h.secret_env === undefined), { message: 'give the signing key as exactly one of secret_file or secret_env' });
export type KillHookConfig = z.output<typeof killHookSchema>;

export const killHooksSchema = z
  .array(killHookSchema)
  .max(20)
  .default([])
  .refine((hooks) => new Set(hooks.map((h) => h.name)).size === hooks.length, 'two kill hooks share a name: each needs its own')
  .describe('webhooks told of every kill, durably (an outbox in the store, retried until delivered), signed with HMAC-SHA256 (docs/kill-hooks.md)');

/** Whether a hook is told of a kill of this kind. */
export function hookWants(hook: Pick<KillHookConfig, 'kills'>, kind: KillKind): boolean {
  return hook.kills.includes('any') || hook.kills.includes(kind);
}

/** The hook's signing key, from its file or its environment variable; CONFIG_INVALID when missing or short. */
export function killHookSecret(hook: KillHookConfig, env: Record<string, string | undefined>): string {
  let secret: string | undefined;
  let from: string;
  if (hook.secret_file !== undefined) {
    from = `secret_file ${hook.secret_file}`;
    try {
      secret = readFileSync(hook.secret_file, 'utf8').trim();
    } catch (e) {
      throw new MandateError('CONFIG_INVALID', `kill hook ${hook.name}: cannot read its ${from}: ${(e as Error).message}`);
    }
  } else {
    from = `secret_env ${hook.secret_env ?? ''}`;
    secret = env[hook.secret_env ?? '']?.trim();
    if (secret === undefined || secret === '') throw new MandateError('CONFIG_INVALID', `kill hook ${hook.name}: its ${from} is not set`);
  }
  if (secret.length < MIN_SECRET || secret.length > MAX_SECRET) {
    throw new MandateError('CONFIG_INVALID', `kill hook ${hook.name}: the signing key in its ${from} is ${secret.length} characters; it must be ${MIN_SECRET} to ${MAX_SECRET}`);
  }
  return secret;
}
