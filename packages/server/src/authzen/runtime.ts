import { AuthzenService, type AuditAppender, type AuthzenServiceDeps, type CallRequest, type Clock, type Decision, type Hasher, type IdGenerator, type TaskTokenClaims } from '@mandate/core';
import type { OperatorAuth } from '../operators.ts';
import type { AuthzenConfig } from './config.ts';
import { AuthzenDomainHolder } from './domain.ts';
import { PepAuth } from './pep-auth.ts';

/** Everything the AuthZEN endpoints need, built once by compose.ts. */
export interface AuthzenRuntime {
  readonly config: AuthzenConfig;
  /** the generic policy domain in force (policies, schema, entity store) */
  readonly domain: AuthzenDomainHolder;
  readonly service: AuthzenService;
  readonly auth: PepAuth;
}

export interface AuthzenDeps {
  readonly dataDir: string;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly hasher: Hasher;
  readonly audit: AuditAppender;
  readonly engine: { decide(req: CallRequest): Promise<Decision> };
  readonly tokens: { verify(token: string): Promise<TaskTokenClaims> };
  /** verifies an agent's DPoP proof forwarded by the PEP (issue 13) */
  readonly proofs?: AuthzenServiceDeps['proofs'];
  readonly operators: OperatorAuth;
}

/** Loads the generic domain (throws CONFIG_INVALID / POLICY_INVALID, as the policy folder does). */
export function createAuthzen(config: AuthzenConfig, deps: AuthzenDeps): AuthzenRuntime {
  const domain = new AuthzenDomainHolder(config, deps.dataDir, deps.hasher);
  const service = new AuthzenService({
    clock: deps.clock,
    ids: deps.ids,
    hasher: deps.hasher,
    audit: deps.audit,
    domain: () => domain.current,
    engine: deps.engine,
    tokens: deps.tokens,
    proofs: deps.proofs,
    agentType: config.agent_type,
    pause: () => new Promise<void>((resolve) => setImmediate(resolve)),
  });
  return { config, domain, service, auth: new PepAuth(config.clients, config.operator_keys, deps.operators, deps.hasher) };
}
