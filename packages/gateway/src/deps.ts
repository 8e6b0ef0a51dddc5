import type { AuditAppender, Clock, DecisionEngine, Hasher, IdGenerator, TaskReader, TaskTokens } from '@mandate/core';
import type { McpConfig } from './config.ts';
import type { PinRegistry } from './pins.ts';
import type { SecretVault } from './secrets.ts';

/** The server's logger (pino under `mandate serve`); `debug` carries upstream stderr lines. */
export interface GatewayLog {
  debug?(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What the gateway needs from the runtime; it decides nothing itself. */
export interface GatewayDeps {
  readonly config: McpConfig;
  readonly engine: Pick<DecisionEngine, 'decide' | 'recordOutcome'>;
  readonly tokens: Pick<TaskTokens, 'verify'>;
  readonly tasks: Pick<TaskReader, 'getTask'>;
  readonly audit: AuditAppender;
  readonly pins: PinRegistry;
  readonly vault: SecretVault;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly hasher: Hasher;
  readonly log: GatewayLog;
}
