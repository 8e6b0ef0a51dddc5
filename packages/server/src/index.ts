export { createRuntime, type MandateRuntime, type RuntimeOptions } from './compose.ts';
export { buildHttpApp, type HttpOptions } from './http/app.ts';
export { STATUS_BY_CODE, envelope, type ErrorEnvelope } from './http/errors.ts';
export { configSchema, parseConfig, loadConfig, configJsonSchema, ENV_OVERRIDES, type MandateConfig, type MandateConfigInput } from './config.ts';
export { loadPolicyDir, readPolicyDir, readPolicyDirs, PolicyHolder } from './policies.ts';
export { OperatorAuth, roleAtLeast } from './operators.ts';
export { sha256Hasher, randomIds, systemClock } from './node-ports.ts';
export { serve, type RunningServer } from './serve.ts';
export { FileKeyStore, MirroredCheckpoints, readAuditPublicKeys, readCheckpointFile, mergeCheckpoints, AUDIT_KEY_FILE, CHECKPOINT_FILE } from './audit-files.ts';
export { createAuthzen, type AuthzenRuntime, type AuthzenDeps } from './authzen/runtime.ts';
export { AuthzenDomainHolder, AUTHZEN_ENTITIES_FILE } from './authzen/domain.ts';
export { PepAuth, PepAuthError, type Pep } from './authzen/pep-auth.ts';
export { authzenConfigSchema, type AuthzenConfig } from './authzen/config.ts';
// proof of possession at an HTTP edge (issue 13): the MCP gateway verifies its requests with it
export { verifyHttpProof, htuFor, type HttpRequestLike } from './http/dpop.ts';
export { ReplaySession, replayTraces, parseTrace, readTraceFile, frozenClock, counterIds, type ReplayTrace, type ReplayStep, type ReplayDecision, type ReplayEffect, type ReplayOptions, type ReplaySummary } from './replay.ts';
