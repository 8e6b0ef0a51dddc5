// Public surface of @mandate/gateway. Explicit named exports only.
export { mcpConfigSchema, upstreamSchema, UPSTREAM_NAME, SECRET_NAME, SHARING_MODES, type McpConfig, type UpstreamConfig, type SharingMode } from './config.ts';
export { McpGateway, type McpGatewayOptions, type TaskEndNotice, type TaskEndSource } from './gateway.ts';
export { GatewaySession, HALTED_ERROR_CODE } from './session.ts';
export { NAMESPACE_SEPARATOR, RESOURCE_SEPARATOR, namespacedTool, namespacedUri, resourceTool, promptTool, samplingTool, elicitationTool } from './names.ts';
export { PinRegistry, toolHash, type Pin, type PinAlert, type PinStatus } from './pins.ts';
export { SecretVault, SecretScrubber, loadSecretsKey, parseKey, checkSecretName, MAX_SECRET_BYTES, MIN_SECRET_CHARS, type SecretInfo } from './secrets.ts';
export { parseMessage, parseBounded, checkParsed, jsonRpcError, type MessageLimits, type JsonRpcErrorMessage } from './limits.ts';
export type { GatewayDeps, GatewayLog } from './deps.ts';
export { runStdioRelay, tokenSource, type StdioRelayOptions } from './stdio.ts';
export { dpopFetch, loadDpopKey, importDpopKey, dpopChallenge, PROOF_EXTRA, type DpopFetchOptions, type RequestAuth } from './dpop.ts';
