// Public surface of @mandate/core. Explicit named exports only.
export { REASON_CODES, isReasonCode, type ReasonCode } from './reasons.ts';
export { MandateError, isMandateError, describeError, type ErrorCode } from './errors.ts';
export {
  canonicalJson,
  sealJson,
  findDuplicateKey,
  checkJsonBounds,
  checkJsonTextBounds,
  isJsonObject,
  DEFAULT_ARG_LIMITS,
  type JsonLimits,
  type JsonObject,
  type JsonValue,
  type JsonPrimitive,
} from './json.ts';
export { parseDuration, durationSchema, formatDuration } from './duration.ts';
export { globMatch, globCovers } from './glob.ts';
export { parseSpiffeId, parseWorkloadSpiffeId, isValidTrustDomain, type SpiffeId } from './spiffe.ts';
export type {
  Agent,
  AgentStatus,
  Approval,
  ApprovalState,
  Task,
  TaskState,
  Effect,
  FinalAction,
  CallRequest,
  Decision,
  ToolInfo,
  BudgetLimits,
  BudgetUsage,
  SigningKey,
  OperatorKey,
  OperatorRole,
} from './model.ts';
export { TERMINAL_TASK_STATES, TASK_STATE_REASON } from './model.ts';
export type {
  Clock,
  IdGenerator,
  Hasher,
  AgentReader,
  AgentWriter,
  TaskReader,
  TaskWriter,
  RevocationStore,
  ApprovalStore,
  ControlStore,
  BudgetLedger,
  AuditAppender,
  AuditReader,
  DecisionCommit,
  DecisionCommitResult,
  DecisionCommitter,
  CheckpointStore,
  KeyStore,
  PrivateKeyRewriter,
  OperatorKeyStore,
  Store,
} from './ports.ts';
export {
  mandateSchema,
  ceilingSchema,
  constraintSchema,
  type Mandate,
  type MandateInput,
  type Ceiling,
  type CeilingInput,
  type Constraint,
  type ToolGrant,
  type ApprovalRule,
  type TimeWindow,
} from './mandate/schema.ts';
export { parseMandate, parseCeiling, mandateHash, zodIssues } from './mandate/parse.ts';
export { evaluateConstraint, normalisePath, extractHost, readArg, type ConstraintResult } from './mandate/constraints.ts';
export { readHost, normaliseDomainEntry, normaliseHostName, hostAllowed, type HostReading } from './mandate/hosts.ts';
export { REGEX_LIMITS, RegexWork, estimateProgramSize, matchWhole, regexCost, regexProblem, type RegexMatch, type RegexProblem } from './mandate/regex.ts';
export { checkCall, withinTimeWindow, approvalFor, approvalRuleFor, toolBudget, type ApprovalLookup, type CallFacts, type MandateVerdict } from './mandate/check.ts';
export { ceilingViolations } from './mandate/ceiling.ts';
export { CEDAR_SCHEMA } from './policy/schema.ts';
export { PolicySet, splitPolicies, validatePolicies, type PolicySource, type LoadedPolicy, type PolicyProblem, type PolicyResult, type CedarRequest } from './policy/engine.ts';
export { ToolCatalog, toolCatalogSchema, unknownTool, type ToolCatalogInput, type ToolCatalogEntry } from './policy/catalog.ts';
export { callRequest, startTaskRequest, argumentTags, NO_PROVENANCE, type ArgProvenance, type CallContextInput } from './policy/context.ts';
export {
  GENESIS_HASH,
  linkRecords,
  recordHash,
  signCheckpoint,
  verifyCheckpointSignature,
  verifyAuditLog,
  AUDIT_WALK_PAGE_SIZE,
  storedRecordMatches,
  ChainVerifier,
  type ChainSource,
  type StoredAuditRecord,
  type AuditDraft,
  type AuditRecord,
  type AuditKind,
  type Checkpoint,
  type ChainVerdict,
  type ChainProblem,
  type ChainStatus,
  type UnanchoredTail,
} from './audit/chain.ts';
export { GroupCommit, type GroupCommitOptions, type SubmitOptions } from './audit/group-commit.ts';
export { redactArgs, redactSecretsInText, isSecretName } from './audit/redact.ts';
export { KeyRing } from './tokens/keyring.ts';
export { TaskTokens, TASK_TOKEN_TYPE, mapJoseError, tokenResource, type TaskTokenClaims, type TaskTokenOptions, type ActorClaim } from './tokens/task-token.ts';
export { DecisionEngine, type DecisionEngineDeps, type DecisionLimits, type OutcomeReport, type OutcomeReceipt } from './decide.ts';
export { ShadowEvaluator, evaluateStage, stageOutcome, type Divergence, type PolicyStageInput, type ShadowOptions, type ShadowStats, type StageOutcome } from './shadow.ts';
export {
  ProvenanceLedger,
  DEFAULT_PROVENANCE_OPTIONS,
  extractTokens,
  fieldValues,
  readResult,
  namedSources,
  readsNamedSource,
  SOURCE_CATEGORIES,
  FIELD_MAX,
  significantValues,
  normaliseText,
  type ProvenanceOptions,
  type RecordOptions,
  type ResultReading,
  type Trust,
  type TokenKind,
  type SignificantValue,
  type RecordedResult,
} from './provenance.ts';
export {
  LABEL_LEVELS,
  DEFAULT_SHARED_LABEL_OPTIONS,
  READ_ONLY_CATEGORIES,
  joinLevel,
  labelStoreFull,
  levelRank,
  mergeLabel,
  planLabelWrite,
  storedLevel,
  storedTasks,
  resourceEntries,
  type LabelLevel,
  type LabelLimits,
  type LabelWritePlan,
  type LabelStore,
  type ReadLabels,
  type SharedLabelOptions,
  type SharedResource,
  type ValueLabel,
} from './provenance/labels.ts';
export { readPurposeWords, purposeReading, baseForms, type PurposeReading } from './purpose-words.ts';
export { TaskService, type TaskServiceDeps, type TaskLimits, type IssuedTask, type Actor, type WorkloadAuthenticator, type VerifiedWorkload } from './tasks.ts';
export { CachedTasks, CachedAgents, CachedRevocations, CachedBudgets, type Staleness } from './state/cache.ts';
export { PendingOutcomes, type PendingCall } from './state/pending-outcomes.ts';
export { WorkloadVerifier, WORKLOAD_TOKEN_ALGORITHMS, oidcSubjectToSpiffeId, DevIssuer, assertKeysImportable, jwtSvidKeySet, verificationKeySet, MAX_KEYS_PER_SET, MAX_TOKEN_LENGTH } from './identity/index.ts';
export type { OidcIssuer, TrustBundle, WorkloadIdentity, WorkloadVerifierOptions, MintOptions } from './identity/index.ts';
export { ApprovalService, type ApprovalServiceDeps, type ApprovalLimits, type ApprovalResolution, type StepUpCall } from './approvals.ts';
export { KillSwitch, type KillSwitchDeps, type KillTarget, type KillReport } from './kill.ts';
export { argsHash } from './decide.ts';
// AuthZEN 1.0 (issue 12): request parsing, the generic PDP and the decision service
export { parseEvaluationRequest, parseEvaluationsRequest, EVALUATIONS_SEMANTICS, type AuthzenEntity, type AuthzenAction, type AuthzenEvaluation, type AuthzenEvaluationsRequest, type AuthzenRequestLimits, type EvaluationsSemantic } from './authzen/request.ts';
export { TypeMapper, cedarValue, cedarRecord, pascalCase, type EntityUid } from './authzen/cedar-json.ts';
export { EntityStore, parseEntities, MAX_SLICE, type CedarEntityJson } from './authzen/entities.ts';
export { SchemaInfo } from './authzen/schema-info.ts';
export { evaluateGeneric, EntityShapes, type GenericDomain, type AuthzenOutcome } from './authzen/pdp.ts';
export { AuthzenService, type AuthzenServiceDeps, type AuthzenCaller, type AuthzenResult } from './authzen/service.ts';
export { type PolicySetOptions } from './policy/engine.ts';
export { type EngineInfo } from './policy/engine.ts';
export { CrossChecker, type CrossCheckStats, type CrossCheckerOptions, type Divergence as CrossCheckDivergence } from './policy/cross-check.ts';
export { delegateTask, DEFAULT_MAX_CHILDREN, workloadTokenUseKey } from './delegation.ts';
export { attenuationViolations, constraintImplicationGap, globsOverlap, type AttenuationOptions } from './mandate/attenuation.ts';
// Behaviour (issue 4): detectors, containment that only restricts, alerts
export { SEVERITIES, DETECTORS, CONTAINMENT_ACTIONS, severityRank, type Severity, type DetectorName, type Signal, type CallEvent, type TaskProfile, type DetectorInput, type ScopeView, type PastCall, type BaselineView, type VolumeTotals, type ContainmentAction, type Restriction, type Alert, type AlertState } from './behaviour/types.ts';
export { restrict, permissiveness, planActions, applyActions, foldRestrictions, isSensitive, isUncatalogued, ruleMatches, NO_CONTAINMENT, containmentRuleSchema, containmentConfigSchema, type ContainmentState, type CallContainment, type Verdict, type FinalVerdict, type PlannedAction, type ContainmentRule, type ContainmentConfig } from './behaviour/combine.ts';
export { behaviourCoreConfigSchema, detectorsConfigSchema, type BehaviourCoreConfig, type BehaviourCoreConfigInput, type DetectorsConfig } from './behaviour/config.ts';
export { BehaviourMonitor, argShape, recordsIn, type BehaviourMonitorDeps, type AlertSink, type ContainmentEnforcer, type DriftJudge, type JudgeQuery, type AssessInput, type Assessment, type MonitorLog } from './behaviour/monitor.ts';
export { BehaviourHistory, Ring, DEFAULT_HISTORY_LIMITS, type HistoryLimits } from './behaviour/history.ts';
export { runDetectors } from './behaviour/detect.ts';
export { detectDrift, driftConfigSchema, purposeWords, type DriftConfig } from './behaviour/drift.ts';
export { readPurpose, verbForms, type PurposeClause } from './behaviour/purpose.ts';
export { ContainmentLifter, CONTAINMENT_OPERATOR, LIFTABLE_ACTIONS, type ContainmentLifts, type ContainmentLifterDeps, type LiftResult, type LiftableAction } from './behaviour/lift.ts';
export { detectChains, matchChain, stepMatches, chainsConfigSchema, chainRuleSchema, chainStepSchema, type ChainsConfig, type ChainRule, type ChainStep } from './behaviour/chains.ts';
export { detectRate, callsInWindow, rateConfigSchema, type RateConfig } from './behaviour/rate.ts';
export { detectNovelty, noveltyConfigSchema, type NoveltyConfig } from './behaviour/novelty.ts';
export { detectVolume, volumeLimits, volumeConfigSchema, type VolumeConfig } from './behaviour/volume.ts';
export { detectRetry, retryConfigSchema, type RetryConfig } from './behaviour/retry.ts';
export type { AlertStore, AlertSinkStore, AlertSinkState, SequencedAlert, ContainmentStore, KillEvent, KillKind, KillOutbox, SequencedKillEvent } from './ports.ts';
export { mergeShared, type BehaviourShareStore, type SharedScope, type SharedMark } from './behaviour/share.ts';
export { detectorScopeSchema, type DetectorScope } from './behaviour/scope.ts';
// proof of possession (RFC 9449 DPoP) and supervision (issue 13)
export {
  DpopVerifier,
  DpopNonces,
  MemoryReplayCache,
  createProof,
  signTaskState,
  verifyTaskState,
  checkBinding,
  normaliseHtu,
  accessTokenHash,
  jwkThumbprint,
  isJkt,
  DPOP_JWT_TYPE,
  DPOP_ALGORITHMS,
  TASK_STATE_JWT_TYPE,
  type ProofResult,
  type ProofInput,
  type ProofKey,
  type ReplayCache,
  type DpopAlgorithm,
  type DpopVerifierOptions,
  type TaskState as SignedTaskState,
} from './tokens/dpop.ts';
export { Supervisor, suspendTask, misfit, type SupervisionSettings, type SupervisorDeps, type SupervisionActor } from './supervision.ts';
export type { SupervisionStore, TaskSupervision } from './ports.ts';
export type { RequestProof } from './tasks.ts';
export { generaliseArg, domainsOf, commonPathPrefix, shapeRegex, type Generalised, type GeneraliseOptions, type GeneraliserRule } from './suggest/generalise.ts';
export { AuditObserver, traceTask, type AuditWindow, type ObservedCall, type ObservedTask } from './suggest/observe.ts';
export { suggest, percentile, TEMPLATE_PURPOSE, type AgentSuggestion, type ArgRule, type ClusterSuggestion, type SuggestOptions } from './suggest/learn.ts';
export { clusterPurposes, clusterWords, jaccard, type PurposeCluster } from './suggest/cluster.ts';
export { evaluateSuggestions, type CallVerdicts, type DenialCount, type DenialReport } from './suggest/evaluate.ts';
export { suggestionYaml, agentFiles, agentSlug, type SuggestionDocument } from './suggest/yaml.ts';
