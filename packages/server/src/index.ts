export { createRuntime, type MandateRuntime, type RuntimeOptions } from './compose.ts';
export { buildHttpApp, type HttpOptions } from './http/app.ts';
export { STATUS_BY_CODE, envelope, type ErrorEnvelope } from './http/errors.ts';
export { configSchema, parseConfig, loadConfig, configJsonSchema, ENV_OVERRIDES, type MandateConfig, type MandateConfigInput } from './config.ts';
export { loadPolicyDir, readPolicyDir, PolicyHolder } from './policies.ts';
export { OperatorAuth, roleAtLeast } from './operators.ts';
export { sha256Hasher, randomIds, systemClock } from './node-ports.ts';
export { serve, type RunningServer } from './serve.ts';
export { FileKeyStore, MirroredCheckpoints, readAuditPublicKeys, readCheckpointFile, mergeCheckpoints, AUDIT_KEY_FILE, CHECKPOINT_FILE } from './audit-files.ts';
