import { canonicalJson, type JsonObject, type JsonValue } from '../json.ts';
import type { Mandate } from '../mandate/schema.ts';
import type { Agent, BudgetUsage, Task, ToolInfo } from '../model.ts';
import type { CedarRequest } from './engine.ts';
import { purposeReading } from '../purpose-words.ts';

/** Which arguments hold a value of each origin (provenance.ts defines each set). */
export interface ArgProvenance {
  readonly untrusted: readonly string[];
  readonly trusted: readonly string[];
  readonly purpose: readonly string[];
  /** arguments with a value only mentioned inside untrusted prose (see provenance.ts) */
  readonly untrustedText?: readonly string[] | undefined;
  /** arguments with a value read from a source the purpose names */
  readonly purposeSource?: readonly string[] | undefined;
  /** …of which a value is only mentioned inside that source's prose, never stated as a field */
  readonly purposeSourceText?: readonly string[] | undefined;
  /** arguments with a structured value (address, URL, IBAN…) seen nowhere the pipeline knows */
  readonly unknown?: readonly string[] | undefined;
  /** arguments with a value read back from a shared resource with a label (provenance/labels.ts) */
  readonly labelled?: readonly string[] | undefined;
  /** the other tasks that wrote those values there, with their labels */
  readonly foreignTasks?: readonly string[] | undefined;
}

export const NO_PROVENANCE: ArgProvenance = { untrusted: [], trusted: [], purpose: [], untrustedText: [], purposeSource: [], purposeSourceText: [], unknown: [] };

function timeContext(now: number): JsonObject {
  const d = new Date(now);
  return { epoch: Math.floor(now / 1000), hour: d.getUTCHours(), minute: d.getUTCMinutes(), weekday: d.getUTCDay() };
}

function trustDomainOf(spiffeId: string): string {
  const rest = spiffeId.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  return slash === -1 ? rest : rest.slice(0, slash);
}

export function agentEntity(agent: Agent): CedarRequest['entities'][number] {
  return {
    uid: { type: 'Mandate::Agent', id: agent.id },
    attrs: { owner: agent.owner, agent_type: agent.type, trust_domain: trustDomainOf(agent.id) },
    parents: [],
  };
}

/** Top-level arguments become the tool entity's tags: strings as they are, the rest as canonical JSON. */
export function argumentTags(args: JsonObject): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(args)) tags[k] = typeof v === 'string' ? v : canonicalJson(v);
  return tags;
}

export interface CallContextInput {
  readonly agent: Agent;
  readonly task: Task;
  readonly tool: ToolInfo;
  readonly args: JsonObject;
  readonly target: string | undefined;
  readonly callId: string;
  readonly environment: string;
  readonly now: number;
  readonly usage: BudgetUsage;
  readonly delegationChain: readonly string[];
  readonly provenance: ArgProvenance;
}

/**
 * no value: the absent optional lists of a classification. Not frozen, like the lists shared
 * beside it: a frozen array has elements of another kind, and the policies' list checks then
 * take a slower generic path for every list (Array.prototype.every through the builtin)
 */
const EMPTY: readonly string[] = [];

/**
 * A list the request shares instead of copying: nothing reads a request but to evaluate it
 * (compiled policies, cedar-wasm, the sampled cross-check), and every list here is one no one
 * changes (the task's mandate, the catalogue's entry, the call's classification).
 */
function shared(list: readonly string[] | undefined): string[] {
  return (list ?? EMPTY) as string[];
}

export function callRequest(i: CallContextInput): CedarRequest {
  const principal = { type: 'Mandate::Agent', id: i.agent.id };
  const resource = { type: 'Mandate::Tool', id: i.tool.name };
  const p = i.provenance;
  const context: Record<string, JsonValue> = {
    call_id: i.callId,
    target: i.target ?? '',
    has_target: i.target !== undefined,
    environment: i.environment,
    time: timeContext(i.now),
    task: {
      id: i.task.id,
      purpose: i.task.mandate.purpose,
      purpose_words: shared(purposeReading(i.task.mandate.purpose).wordList),
      environment: i.task.mandate.environment,
      data_classes: shared(i.task.mandate.data_classes),
      depth: i.task.depth,
      calls: i.usage.calls,
      tool_calls: i.usage.toolCalls,
    },
    delegation_chain: shared(i.delegationChain),
    provenance: {
      untrusted_args: shared(p.untrusted),
      trusted_args: shared(p.trusted),
      purpose_args: shared(p.purpose),
      untrusted_text_args: shared(p.untrustedText),
      purpose_source_args: shared(p.purposeSource),
      purpose_source_text_args: shared(p.purposeSourceText),
      unknown_args: shared(p.unknown),
      labelled_args: shared(p.labelled),
      foreign_tasks: shared(p.foreignTasks),
    },
  };
  return {
    principal,
    resource,
    context,
    entities: [
      agentEntity(i.agent),
      {
        uid: resource,
        attrs: {
          name: i.tool.name,
          category: i.tool.category,
          risk: i.tool.risk,
          data_classes: shared(i.tool.dataClasses),
          output_trust: i.tool.outputTrust,
          sink_args: shared(i.tool.sinkArgs),
          content_args: shared(i.tool.contentArgs),
        },
        parents: [],
        tags: argumentTags(i.args),
      },
    ],
  };
}

export function startTaskRequest(agent: Agent, taskId: string, m: Mandate, depth: number, environment: string, now: number): CedarRequest {
  const resource = { type: 'Mandate::TaskRequest', id: taskId };
  return {
    principal: { type: 'Mandate::Agent', id: agent.id },
    resource,
    context: { environment, time: timeContext(now) },
    entities: [
      agentEntity(agent),
      {
        uid: resource,
        attrs: {
          purpose: m.purpose,
          purpose_words: [...purposeReading(m.purpose).words],
          environment: m.environment,
          data_classes: [...m.data_classes],
          tools: m.tools.map((t) => t.name),
          ttl_seconds: Math.floor((m.ttl ?? 0) / 1000),
          calls_budget: m.budgets?.calls ?? -1,
          delegation_allowed: m.delegation?.allowed ?? false,
          depth,
        },
        parents: [],
      },
    ],
  };
}
