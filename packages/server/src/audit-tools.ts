/**
 * What a verifier of the audit log needs outside the server (`mandate audit verify`), without
 * loading the server itself (HTTP, policies, gateway, metrics): a walk of a large log then
 * starts sooner and holds less memory.
 */
export { verifyAudit, type AuditReport, type AuditVerifyInput } from './audit-verify.ts';
export { AUDIT_KEY_FILE, mergeCheckpoints, readAuditPublicKeys, readCheckpointFile } from './audit-files.ts';
export { readAnchorFile } from './anchor-file.ts';
export { sha256Hasher } from './node-ports.ts';
export { keepYoungGenerationSmall } from './heap.ts';
