export { WorkloadVerifier, WORKLOAD_TOKEN_ALGORITHMS, oidcSubjectToSpiffeId } from './workload.ts';
export type { OidcIssuer, TrustBundle, WorkloadIdentity, WorkloadVerifierOptions } from './workload.ts';
export { DevIssuer } from './dev-issuer.ts';
export type { MintOptions } from './dev-issuer.ts';
export { assertKeysImportable, jwtSvidKeySet, verificationKeySet, MAX_KEYS_PER_SET } from './key-set.ts';
export { MAX_TOKEN_LENGTH } from './compact-jws.ts';
