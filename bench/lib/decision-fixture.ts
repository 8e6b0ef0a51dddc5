/**
 * A realistic deployment for the decision benchmark: a generated policy folder (52 Cedar
 * policies over 12 tool families, validated against Mandate's schema at load), a tools.yaml
 * catalogue, a real runtime (SQLite in a temp folder, durability 'full', group-committed
 * audit), a registered agent, a started task and its mandate.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCeiling, type Agent, type CallRequest, type JsonObject, type MandateInput, type Task } from '@mandate/core';
import { createRuntime, parseConfig, type MandateConfigInput, type MandateRuntime } from '@mandate/server';

export const TRUST_DOMAIN = 'bench.mandate.local';
export const AGENT_ID = `spiffe://${TRUST_DOMAIN}/agents/support-triage`;
export const ENVIRONMENT = 'prod';

/** The call every decision benchmark makes: allowed by the mandate and by organisation policy. */
export const BENCH_TOOL = 'helpdesk.draft_reply';
export const BENCH_RESOURCE = 'ticket:T-1042';
export const BENCH_ARGS: JsonObject = {
  ticket_id: 'T-1042',
  visibility: 'internal',
  body: 'Hello Ada, thanks for the report. We reproduced the export failure on our side and a fix is being rolled out today; your next nightly export should complete normally. Kind regards, Support',
  tags: ['billing', 'export'],
};

type Row = readonly [tool: string, category: string, risk: 'low' | 'medium' | 'high' | 'critical', dataClasses: readonly string[], outputTrust: 'trusted' | 'untrusted'];

interface Family {
  readonly name: string;
  readonly tools: readonly Row[];
  /** extra condition on the family's permit (Cedar, joined with &&) */
  readonly permitIf?: string;
  /** an argument (tag) and a `like` pattern that is forbidden for this family */
  readonly guard: readonly [tag: string, pattern: string];
  /** per-task call ceiling for the family (organisation-wide rate rule) */
  readonly maxToolCalls: number;
}

/** Twelve tool families, the way an organisation classifies the tools its agents may reach. */
export const FAMILIES: readonly Family[] = [
  {
    name: 'kb',
    tools: [['kb.search', 'read', 'low', ['internal'], 'trusted'], ['kb.get_article', 'read', 'low', ['internal'], 'trusted']],
    guard: ['query', '*DROP TABLE*'],
    maxToolCalls: 100_000,
  },
  {
    name: 'helpdesk',
    tools: [
      ['helpdesk.search_tickets', 'read', 'low', ['internal'], 'untrusted'],
      ['helpdesk.get_ticket', 'read', 'medium', ['internal', 'customer-pii'], 'untrusted'],
      ['helpdesk.draft_reply', 'write', 'medium', ['internal', 'customer-pii'], 'trusted'],
      ['helpdesk.close_ticket', 'write', 'medium', ['internal'], 'trusted'],
    ],
    permitIf: 'principal.agent_type == "support"',
    guard: ['body', '*BEGIN PRIVATE KEY*'],
    maxToolCalls: 900_000,
  },
  {
    name: 'fs',
    tools: [['fs.read_file', 'read', 'low', ['internal'], 'trusted'], ['fs.write_file', 'write', 'high', ['internal'], 'trusted']],
    guard: ['path', '/etc/*'],
    maxToolCalls: 50_000,
  },
  {
    name: 'mail',
    tools: [['mail.send', 'external_sink', 'high', ['internal'], 'trusted'], ['mail.draft', 'write', 'low', ['internal'], 'trusted']],
    guard: ['to', '*@competitor.example'],
    maxToolCalls: 500,
  },
  {
    name: 'http',
    tools: [['http.get', 'network', 'medium', [], 'untrusted'], ['http.post', 'external_sink', 'high', ['internal'], 'untrusted']],
    guard: ['url', 'http://*'],
    maxToolCalls: 10_000,
  },
  {
    name: 'db',
    tools: [['db.query', 'read', 'high', ['customer-pii'], 'trusted'], ['db.execute', 'write', 'critical', ['customer-pii'], 'trusted']],
    permitIf: 'principal.agent_type != "support" || resource.category == "read"',
    guard: ['sql', '*DROP *'],
    maxToolCalls: 5_000,
  },
  {
    name: 'crm',
    tools: [['crm.get_contact', 'read', 'medium', ['customer-pii'], 'trusted'], ['crm.update_contact', 'write', 'high', ['customer-pii'], 'trusted']],
    guard: ['field', '*ssn*'],
    maxToolCalls: 2_000,
  },
  {
    name: 'calendar',
    tools: [['calendar.list', 'read', 'low', ['internal'], 'trusted'], ['calendar.create_event', 'write', 'low', ['internal'], 'trusted']],
    guard: ['attendees', '*@external.example*'],
    maxToolCalls: 1_000,
  },
  {
    name: 'git',
    tools: [['git.read_file', 'read', 'low', ['source'], 'trusted'], ['git.push', 'write', 'high', ['source'], 'trusted']],
    permitIf: 'principal.agent_type == "coder" || resource.category == "read"',
    guard: ['branch', 'main'],
    maxToolCalls: 2_000,
  },
  {
    name: 'payments',
    tools: [['payments.get_invoice', 'read', 'medium', ['financial'], 'trusted'], ['payments.refund', 'payment', 'critical', ['financial'], 'trusted']],
    permitIf: 'principal.agent_type == "finance"',
    guard: ['currency', 'XBT'],
    maxToolCalls: 100,
  },
  {
    name: 'shell',
    tools: [['shell.*', 'exec', 'critical', [], 'untrusted']],
    permitIf: 'context.environment != "prod"',
    guard: ['cmd', '*rm -rf*'],
    maxToolCalls: 200,
  },
  {
    name: 'search',
    tools: [['search.web', 'network', 'low', [], 'untrusted'], ['search.news', 'network', 'low', [], 'untrusted']],
    guard: ['q', '*site:intranet*'],
    maxToolCalls: 20_000,
  },
];

const CALL = 'action == Mandate::Action::"call_tool"';
const START = 'action == Mandate::Action::"start_task"';

function policy(id: string, effect: 'permit' | 'forbid', action: string, when: string, extra = ''): string {
  return `@id("${id}")${extra}\n${effect} (principal, ${action}, resource)\nwhen { ${when} };\n`;
}

/** Organisation-wide rules: tasks, environments, data classes, risk, time, provenance. */
function globalPolicies(): string {
  return [
    '// Organisation-wide rules (generated by bench/lib/decision-fixture.ts).\n',
    policy('org.start.bounded', 'permit', START, 'resource.ttl_seconds <= 3600 && resource.depth <= 2 && resource.calls_budget <= 1000000'),
    policy('org.start.pii-only-for-support', 'forbid', START, 'resource.data_classes.contains("customer-pii") && principal.agent_type != "support"'),
    policy('org.start.delegation-for-orchestrators', 'forbid', START, 'resource.delegation_allowed && principal.agent_type != "orchestrator"'),
    policy('org.start.no-shell-in-prod', 'forbid', START, 'resource.tools.contains("shell.exec") && resource.environment == "prod"'),
    policy('org.call.environment-matches', 'forbid', CALL, 'context.environment != context.task.environment'),
    policy('org.call.own-trust-domain', 'forbid', CALL, `principal.trust_domain != "${TRUST_DOMAIN}"`),
    policy('org.call.bounded-depth', 'forbid', CALL, 'context.task.depth > 3 || context.delegation_chain.contains("spiffe://untrusted.example/agent")'),
    policy('org.call.unknown-tools', 'forbid', CALL, 'resource.category == "unknown" || resource.risk == "unknown"'),
    policy('org.call.pii-declared', 'forbid', CALL, 'resource.data_classes.contains("customer-pii") && !context.task.data_classes.contains("customer-pii")'),
    policy('org.call.secrets-for-platform', 'forbid', CALL, 'resource.data_classes.contains("secret") && principal.agent_type != "platform"'),
    policy('org.call.critical-in-office-hours', 'forbid', CALL, 'resource.risk == "critical" && (context.time.hour < 6 || context.time.hour >= 22)'),
    policy('org.call.no-payments-at-weekends', 'forbid', CALL, 'resource.category == "payment" && (context.time.weekday == 0 || context.time.weekday == 6)'),
    policy('org.call.critical-not-delegated', 'forbid', CALL, 'resource.risk == "critical" && context.task.depth > 0'),
    policy('org.call.no-untrusted-destination', 'forbid', CALL, 'resource.category == "external_sink" && (context.provenance.untrusted_args.contains("to") || context.provenance.untrusted_args.contains("url"))'),
    policy('org.call.external-send-needs-approval', 'forbid', CALL, 'resource.category == "external_sink"', '\n@step_up("")'),
    policy(
      'org.call.high-risk-off-target-needs-approval',
      'forbid',
      CALL,
      'resource.risk == "high" && resource.category == "write" && context.has_target && !(context.target like "ticket:*")',
      '\n@step_up("")',
    ),
  ].join('\n');
}

/** Per family: a permit scoped to the family, a forbidden-argument guard, a call ceiling. */
function familyPolicies(f: Family): string {
  const scope = `resource.name like "${f.name}.*"`;
  const permit = [
    scope,
    'context.task.environment == context.environment',
    '(resource.category == "read" || context.task.data_classes.containsAll(resource.data_classes))',
    ...(f.permitIf ? [`(${f.permitIf})`] : []),
  ].join(' && ');
  const [tag, pattern] = f.guard;
  return [
    `// ${f.name}.* (generated)\n`,
    policy(`${f.name}.permit`, 'permit', CALL, permit),
    policy(`${f.name}.guard-${tag}`, 'forbid', CALL, `${scope} && resource.hasTag("${tag}") && resource.getTag("${tag}") like "${pattern}"`),
    policy(`${f.name}.call-ceiling`, 'forbid', CALL, `${scope} && context.task.tool_calls >= ${f.maxToolCalls}`),
  ].join('\n');
}

/** Families beyond the twelve, for larger policy sets: three policies and two tools each. */
function extraFamilies(policies: number): Family[] {
  const out: Family[] = [];
  for (let i = 0; 16 + (FAMILIES.length + out.length) * 3 < policies; i++) {
    out.push({
      name: `ext${i}`,
      tools: [[`ext${i}.read`, 'read', 'low', ['internal'], 'trusted'], [`ext${i}.write`, 'write', 'medium', ['internal'], 'trusted']],
      guard: ['ref', `*blocked-${i}*`],
      maxToolCalls: 1_000 + i,
    });
  }
  return out;
}

function toolsYaml(families: readonly Family[], catalogue: number): string {
  const lines = ['# Tool catalogue (generated by bench/lib/decision-fixture.ts)', 'tools:'];
  let n = 0;
  for (const f of families) {
    for (const [name, category, risk, dataClasses, outputTrust] of f.tools) {
      lines.push(`  - name: "${name}"`, `    category: ${category}`, `    risk: ${risk}`, `    data_classes: [${dataClasses.join(', ')}]`, `    output_trust: ${outputTrust}`);
      n++;
    }
  }
  // the rest of a large organisation's catalogue: tools no policy names
  for (let i = 0; n < catalogue; i++, n++) lines.push(`  - name: "misc${i}.op"`, '    category: read', '    risk: low', '    data_classes: [internal]', '    output_trust: trusted');
  return lines.join('\n') + '\n';
}

/**
 * Writes the policy folder; returns the number of policies written. `scale` grows it to at least
 * `policies` policies (more tool families) and a catalogue of at least `tools` tools.
 */
export function writePolicyDir(dir: string, scale: { policies?: number; tools?: number } = {}): number {
  mkdirSync(dir, { recursive: true });
  const families = [...FAMILIES, ...extraFamilies(scale.policies ?? 0)];
  writeFileSync(join(dir, '00-org.cedar'), globalPolicies());
  families.forEach((f, i) => writeFileSync(join(dir, `${String(i + 10)}-${f.name}.cedar`), familyPolicies(f)));
  writeFileSync(join(dir, 'tools.yaml'), toolsYaml(families, scale.tools ?? 0));
  return 16 + families.length * 3;
}

export const BENCH_MANDATE: MandateInput = {
  purpose: 'Triage new support tickets for ACME and draft replies; no customer data leaves the helpdesk.',
  environment: ENVIRONMENT,
  ttl: '1h',
  tools: [
    { name: 'helpdesk.search_tickets' },
    { name: 'helpdesk.get_ticket' },
    { name: BENCH_TOOL, args: { ticket_id: { regex: '^T-[0-9]+$' }, visibility: { one_of: ['internal', 'team'] } } },
    { name: 'kb.*' },
  ],
  resources: ['ticket:*', 'kb:*'],
  data_classes: ['internal', 'customer-pii'],
  budgets: { calls: 1_000_000, per_tool: { [BENCH_TOOL]: 1_000_000 } },
  delegation: { allowed: false },
  approvals: [{ tool: 'helpdesk.close_ticket' }],
};

export interface DecisionFixture {
  readonly dir: string;
  readonly policyDir: string;
  readonly policyCount: number;
  readonly runtime: MandateRuntime;
  readonly agent: Agent;
  readonly task: Task;
  readonly taskToken: string;
  /** the benchmark call, ready for `runtime.engine.decide` */
  readonly call: CallRequest;
  close(): Promise<void>;
}

export interface FixtureOptions {
  /** 'full' is the product default (fsync on every commit) */
  readonly durability?: 'full' | 'normal';
  /** extra config (merged over the benchmark's) */
  readonly config?: MandateConfigInput;
  /** a larger deployment: at least this many policies and catalogue tools (writePolicyDir) */
  readonly scale?: { readonly policies?: number; readonly tools?: number };
}

export async function createDecisionFixture(opts: FixtureOptions = {}): Promise<DecisionFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-'));
  const policyDir = join(dir, 'policies');
  const policyCount = writePolicyDir(policyDir, opts.scale);
  const config = parseConfig({
    environment: ENVIRONMENT,
    data_dir: join(dir, 'data'),
    identity: { dev_issuer: { enabled: true, trust_domain: TRUST_DOMAIN } },
    audit: { durability: opts.durability ?? 'full' },
    // a long run on a busy machine outlives the default 5-minute task token; its life costs nothing per call
    tokens: { ttl: '1h' },
    ...opts.config,
    // the generated folder, with any other policy settings the caller gave
    policies: { ...opts.config?.policies, dir: policyDir },
  });
  let runtime: MandateRuntime | undefined;
  try {
    runtime = await createRuntime(config, { writeAdminKeyFile: false });
    const loaded = runtime.policies.current.policies.length;
    if (loaded !== policyCount) throw new Error(`expected ${policyCount} policies, loaded ${loaded}`);
    const now = runtime.clock.now();
    const agent: Agent = { id: AGENT_ID, owner: 'team-support', type: 'support', status: 'active', ceiling: parseCeiling({}), createdAt: now, updatedAt: now };
    await runtime.agents.createAgent(agent);
    const issuer = runtime.devIssuer;
    if (!issuer) throw new Error('the dev issuer is not enabled');
    const workloadToken = await issuer.mint(AGENT_ID, { audience: config.identity.audience, ttlMs: 60_000 });
    const { task, token } = await runtime.tasks.start(workloadToken, BENCH_MANDATE);
    const rt = runtime;
    return {
      dir,
      policyDir,
      policyCount,
      runtime: rt,
      agent,
      task,
      taskToken: token,
      call: { taskToken: token, tool: BENCH_TOOL, resource: BENCH_RESOURCE, args: BENCH_ARGS },
      async close() {
        try {
          await rt.close();
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (e) {
    await runtime?.close();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
