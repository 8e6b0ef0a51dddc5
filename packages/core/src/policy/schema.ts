/**
 * Mandate's Cedar schema: the one vocabulary organisation policies are written and validated in.
 * Kept small on purpose: every entity costs conversion time on every call (DESIGN.md, Technology).
 *
 * - principal: the agent (`Mandate::Agent`, id = SPIFFE ID)
 * - resource:  the tool being called (`Mandate::Tool`, id = tool name); the call's top-level
 *              arguments are the entity's tags (strings as they are, other values as canonical JSON)
 * - context:   the task, the call's target resource, time, delegation and argument provenance
 */
export const CEDAR_SCHEMA = `
namespace Mandate {
  entity Agent = {
    owner: String,
    agent_type: String,
    trust_domain: String,
  };

  entity Tool = {
    name: String,
    category: String,
    risk: String,
    data_classes: Set<String>,
    output_trust: String,
    sink_args: Set<String>,
    content_args: Set<String>,
  } tags String;

  entity TaskRequest = {
    purpose: String,
    purpose_words: Set<String>,
    environment: String,
    data_classes: Set<String>,
    tools: Set<String>,
    ttl_seconds: Long,
    calls_budget: Long,
    delegation_allowed: Bool,
    depth: Long,
  };

  type Time = { epoch: Long, hour: Long, minute: Long, weekday: Long };

  type TaskContext = {
    id: String,
    purpose: String,
    purpose_words: Set<String>,
    environment: String,
    data_classes: Set<String>,
    depth: Long,
    calls: Long,
    tool_calls: Long,
  };

  type Provenance = {
    untrusted_args: Set<String>,
    trusted_args: Set<String>,
    purpose_args: Set<String>,
    untrusted_text_args: Set<String>,
    purpose_source_args: Set<String>,
    purpose_source_text_args: Set<String>,
    unknown_args: Set<String>,
    labelled_args: Set<String>,
    foreign_tasks: Set<String>,
  };

  action call_tool appliesTo {
    principal: Agent,
    resource: Tool,
    context: {
      call_id: String,
      target: String,
      has_target: Bool,
      environment: String,
      time: Time,
      task: TaskContext,
      delegation_chain: Set<String>,
      provenance: Provenance,
    },
  };

  action start_task appliesTo {
    principal: Agent,
    resource: TaskRequest,
    context: {
      environment: String,
      time: Time,
    },
  };
}
`;

export const ACTION_CALL_TOOL = { type: 'Mandate::Action', id: 'call_tool' } as const;
export const ACTION_START_TASK = { type: 'Mandate::Action', id: 'start_task' } as const;
