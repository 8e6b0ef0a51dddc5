/**
 * Reloading the policy set while serving: by SIGHUP, by `mandate policy reload` and by
 * `POST /v1/policies/reload`, all through `reloadPolicies`. A reload is an admin act with an
 * audit record either way: `policy.reloaded` (the new version, the one it replaced, how many
 * policies) once the new set is in force, `policy.reload_refused` (why) when it is not. A
 * folder that fails to read or validate, or that holds no policy at all, is refused and the set
 * in force keeps serving: an empty set denies every call, which is never what a reload meant
 * unless the operator says so (`allowEmpty`).
 */
import { MandateError, describeError, isMandateError, type PolicySet } from '@mandate/core';
import type { MandateRuntime } from './compose.ts';

export type ReloadVia = 'api' | 'signal';

export interface ReloadRequest {
  /** who asked: an operator key id, or `signal:SIGHUP` */
  readonly by: string;
  readonly via: ReloadVia;
  /** put an empty set (deny everything) in force; refused otherwise */
  readonly allowEmpty?: boolean | undefined;
}

export interface ReloadResult {
  readonly version: string;
  readonly previousVersion: string;
  readonly policies: number;
  /** live tasks whose mandate no longer fits the new set */
  readonly suspendedTasks: readonly string[];
  readonly shadowVersion: string | undefined;
}

export interface ReloadLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export async function reloadPolicies(rt: MandateRuntime, req: ReloadRequest, log: ReloadLog): Promise<ReloadResult> {
  const previous = rt.policies.current.version;
  let next: PolicySet;
  try {
    if (rt.policies.folder === undefined) throw new MandateError('CONFLICT', 'no policy folder is configured (policies.dir)');
    next = rt.policies.read();
    if (next.policies.length === 0 && req.allowEmpty !== true) {
      next.dispose();
      throw new MandateError('POLICY_INVALID', 'the policy folder holds no policy: an empty set would deny every call (reload with allow_empty to mean it)', { reason: 'empty' });
    }
  } catch (e) {
    await refuse(rt, req, previous, e, log);
    throw e;
  }
  // audit before act: the record of the change is durable before the change takes effect
  try {
    await rt.audit.append([{ kind: 'policy.reloaded', ts: rt.clock.now(), data: { version: next.version, previous_version: previous, policies: next.policies.length, by: req.by, via: req.via } }]);
  } catch (e) {
    next.dispose();
    log.error({ event: 'policy.reload_refused', via: req.via, by: req.by, version: previous, cause: describeError(e) }, 'policy reload refused: its audit record could not be committed; the policy set in force is unchanged');
    throw e;
  }
  rt.policies.swap(next);
  // live tasks were admitted by the old set: re-check them against the new one
  const suspendedTasks = await rt.supervisor.reevaluate(`policy set ${next.version} loaded`);
  const shadow = rt.shadowPolicies?.reload();
  log.info(
    { event: 'policy.reloaded', via: req.via, by: req.by, version: next.version, previousVersion: previous, policies: next.policies.length, suspendedTasks: suspendedTasks.length, taskIds: suspendedTasks.slice(0, 100) },
    next.policies.length === 0 ? 'policy set reloaded: it is EMPTY, every call is denied' : 'policy set reloaded',
  );
  return { version: next.version, previousVersion: previous, policies: next.policies.length, suspendedTasks, shadowVersion: shadow?.version };
}

async function refuse(rt: MandateRuntime, req: ReloadRequest, current: string, e: unknown, log: ReloadLog): Promise<void> {
  const reason = isMandateError(e) ? e.message : describeError(e);
  const problems = isMandateError(e) && Array.isArray(e.details?.['problems']) ? (e.details['problems'] as unknown[]).length : undefined;
  log.warn({ event: 'policy.reload_refused', via: req.via, by: req.by, version: current, reason: reason.slice(0, 2000), ...(problems !== undefined ? { problems } : {}) }, 'policy reload refused; the policy set in force keeps serving');
  try {
    await rt.audit.append([
      { kind: 'policy.reload_refused', ts: rt.clock.now(), data: { reason: reason.slice(0, 2000), current_version: current, by: req.by, via: req.via, ...(problems !== undefined ? { problems } : {}) } },
    ]);
  } catch (err) {
    log.error({ event: 'policy.reload_refused', cause: describeError(err) }, 'the refused policy reload could not be audited');
  }
}
