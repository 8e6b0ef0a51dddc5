/**
 * Enforcement-point authentication for the AuthZEN endpoints (AuthZEN §11: the PDP SHOULD
 * authenticate the PEP; a failure MUST be a 401 and SHOULD carry WWW-Authenticate).
 *
 * A PEP presents `Authorization: Bearer <credential>`, or the credential alone (the AuthZEN
 * interop PEPs send their API key as the whole header). Accepted credentials:
 *   - a token configured in `authzen.clients` (only its SHA-256 is in the config); such a
 *     credential can do nothing but ask for decisions;
 *   - an operator API key of any role, when `authzen.operator_keys` is on (the default).
 * An agent's JWT is never a PEP credential: an agent's task token travels in the subject.
 */
import { MandateError, type Hasher } from '@mandate/core';
import type { OperatorAuth } from '../operators.ts';

export const REALM = 'mandate';

export interface Pep {
  /** for the audit records: `client:<name>` or `operator:<key name>` */
  readonly name: string;
}

/** A failed authentication: the 401 and the challenge to send with it. */
export class PepAuthError extends MandateError {
  readonly challenge: string;

  constructor(message: string, invalidToken: boolean) {
    super('UNAUTHENTICATED', message);
    this.challenge = invalidToken ? `Bearer realm="${REALM}", error="invalid_token"` : `Bearer realm="${REALM}"`;
  }
}

export class PepAuth {
  private readonly clients: ReadonlyMap<string, string>;
  private readonly operatorKeys: boolean;
  private readonly operators: OperatorAuth;
  private readonly hasher: Hasher;

  constructor(clients: readonly { name: string; token_sha256: string }[], operatorKeys: boolean, operators: OperatorAuth, hasher: Hasher) {
    this.clients = new Map(clients.map((c) => [c.token_sha256, c.name]));
    this.operatorKeys = operatorKeys;
    this.operators = operators;
    this.hasher = hasher;
  }

  async authenticate(header: string | undefined): Promise<Pep> {
    if (header === undefined || header.trim() === '') throw new PepAuthError('an enforcement-point credential is required (Authorization: Bearer <token>)', false);
    const m = /^(?:Bearer\s+)?([^\s]+)$/i.exec(header.trim());
    const credential = m?.[1];
    if (credential === undefined || /^(basic|bearer)$/i.test(credential)) throw new PepAuthError('Authorization must be "Bearer <token>"', true);
    const digest = this.hasher.sha256Hex(credential);
    const client = this.clients.get(digest);
    if (client !== undefined) return { name: `client:${client}` };
    if (this.operatorKeys && this.operators.isKeyShaped(credential)) {
      try {
        const key = await this.operators.authenticate(credential, digest);
        return { name: `operator:${key.name}` };
      } catch (e) {
        if (!(e instanceof MandateError) || (e.code !== 'UNAUTHENTICATED' && e.code !== 'FORBIDDEN')) throw e;
      }
    }
    throw new PepAuthError('invalid enforcement-point credential', true);
  }
}
