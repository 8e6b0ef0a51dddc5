/**
 * --json, wherever a command takes it, prints exactly one JSON document on stdout and every
 * message on stderr, so that `mandate … --json | jq` always parses.
 *
 * Every command's help text, apart from the commands: `mandate --help` (and `<command> --help`)
 * prints these without loading a command, its packages or their dependencies.
 */

export const agentHelp = `mandate agent add --id SPIFFE_ID --owner OWNER --type TYPE [--ceiling FILE] [--url URL] [--api-key KEY] [--json]
mandate agent list [--url URL] [--api-key KEY] [--json]
mandate agent disable|enable --id SPIFFE_ID [--url URL] [--api-key KEY] [--json]
  Registers or changes an agent through the running server (admin key from --api-key,
  MANDATE_API_KEY, or <data-dir>/admin.key). The ceiling file (YAML/JSON) bounds every mandate.`;

export const approvalsHelp = `mandate approvals list [--state pending|approved|denied|used|expired|cancelled] [--task ID] [--json]
mandate approvals approve|deny <ID> --reason TEXT [--json]
  Step-up approvals through the running server. Approving needs an operator key with the
  approver (or admin) role: --api-key, MANDATE_API_KEY, or <data-dir>/admin.key.`;

export const auditHelp = `mandate audit verify [--data-dir DIR | --db FILE | --store URL [--schema S]] [--key-file FILE] [--jwks FILE] [--anchors FILE] [--require-checkpoint] [--require-anchored] [--json]
  Walks the audit hash chain record by record, checks every signed checkpoint (those in the
  database and those in audit-checkpoints.jsonl beside it), and reports the first broken link:
  an edited, deleted or reordered record, or a cut that reaches into a signed checkpoint.
  Records after the newest checkpoint are reported as an unanchored tail (how many, since
  when): nothing signed covers them, so their deletion or rewriting could not be detected.
  --anchors FILE also checks the checkpoints anchored outside the data folder
  (audit.anchors.file): a log cut back to an older checkpoint, its newer checkpoints deleted
  with the records after them, is then detected too. Checkpoint keys come from
  audit-checkpoint-keys.json beside the database, or from --jwks (the output of
  GET /v1/audit/jwks, pinned elsewhere), never from the database itself. --jwks and
  --require-checkpoint fail a non-empty log that no checkpoint covers; --require-anchored
  fails any unanchored tail (a log whose server stopped cleanly has none).
  Exit 0 when intact (or intact with an unanchored tail), 1 when broken.
  --store postgres://… (or MANDATE_STORE) verifies a PostgreSQL store instead (--schema, default
  mandate); the key file and checkpoint copy are then read from --data-dir (a node's data_dir)
  or --key-file. An unreachable database is exit 4.`;

export const backupHelp = `mandate backup --out DIR [--data-dir DIR | --db FILE] [--json]
  Copies the embedded SQLite store while the server keeps running (SQLite's online backup API)
  into the new folder DIR: the database, the signed checkpoints that cover it, the checkpoint
  keys and a manifest (backup.json). The copy's audit chain is verified before DIR appears; a
  copy that does not verify is deleted. The key encryption key is not copied: back it up apart.
  Exit 0 when written and verified, 1 when the copy does not verify.`;

export const restoreHelp = `mandate restore --from DIR --data-dir DIR [--replace] [--json]
  Verifies the backup in DIR (written by mandate backup) and only then copies it into the data
  folder of a stopped node. A data folder that already holds a store is refused unless
  --replace, which moves that store aside (into pre-restore-<time>/), never deletes it. The
  restored folder is verified again. Exit 0 when restored and verified, 1 when the backup does
  not verify (nothing is changed).`;

export const configHelp = `mandate config schema
  Prints the JSON Schema of the configuration file.
mandate config validate FILE [--json]
  Checks a configuration file (YAML or JSON) against the schema without starting anything:
  exit 0 when valid, 3 with each problem's path inside the file when not. Environment overrides
  (MANDATE_*) are not applied: the file alone is checked.`;

export const demoHelp = `mandate demo [--keep]
  Starts Mandate on a fresh embedded SQLite store with the example policies and the development
  workload issuer, then walks a scripted support agent through allowed, denied, step-up and
  over-budget calls, printing each decision and its reason. Exits 1 if any decision differs
  from what the policies say it must be. --keep leaves the server running afterwards.`;

export const keysHelp = `mandate keys rotate-kek --new-kek-file FILE [--config FILE] [--data-dir DIR] [--store URL] [--json]
  Re-encrypts every private signing key (task tokens, the dev issuer, audit checkpoints) under
  the key encryption key in FILE, created (base64 of 32 bytes, mode 0600) when it does not exist.
  The current key comes from the configuration as at start (MANDATE_KEK, keys.kek_file or
  <data-dir>/kek.key). Stop Mandate first; afterwards set keys.kek_file (or MANDATE_KEK) to the
  new key and start it. Nothing is written unless every key decrypts with the current key
  (else exit 3, KEK_MISMATCH). A cluster rotates without stopping through keys.previous_kek_files.`;

export const killHelp = `mandate kill (--agent SPIFFE_ID | --task ID | --all) --reason TEXT [--json]
mandate unkill (--agent SPIFFE_ID | --all) --reason TEXT [--json]
  The kill switch, through the running server (admin key). A kill disables the agent, kills its
  live tasks and every task delegated below them, cancels their open approvals; --all is an
  emergency stop: every call and every new task is refused until unkill --all. It prints what it
  ended, as JSON, once all of it is durable (--json: on one line). unkill never revives a killed task or its tokens.`;

export const mcpHelp = `mandate mcp --stdio [--url URL] [--config FILE]
  The MCP gateway over stdio, for MCP hosts that launch servers ({"mcpServers": {...}}): relays
  JSON-RPC between stdin/stdout and a running Mandate's /mcp endpoint (URL: --url, MANDATE_URL,
  or server.host/port of --config; default http://127.0.0.1:8787). The task token comes from
  MANDATE_TASK_TOKEN or the file named by MANDATE_TASK_TOKEN_FILE (re-read on every request, so a
  renewed token can be written there). No token, no session. Message limits: mcp.limits of --config.
  A key-bound task token (DPoP): set MANDATE_DPOP_KEY_FILE to the agent's private JWK (Ed25519 or
  P-256); every forwarded request then carries a fresh DPoP proof for server.public_url + /mcp
  (of --config; else the URL above), and a DPoP-Nonce challenge is answered once.`;

export const policyHelp = `mandate policy validate [<DIR>] [--allow-empty] [--ceiling <file.yaml>]… [--mandate <file.yaml>]… [--json]
  Parses every *.cedar file and tools.yaml in DIR and validates the policies against Mandate's
  Cedar schema. Exit 0 when valid, 1 listing every problem otherwise. A folder with no policy
  fails (it would deny every call) unless --allow-empty.
  --ceiling <file>   an agent ceiling (YAML) to validate (repeatable)
  --mandate <file>   a mandate or mandate template (YAML) to validate (repeatable); with --ceiling,
                     each mandate must also fit within every ceiling given

mandate policy reload [--allow-empty] [--url <url>] [--api-key <key>] [--data-dir <dir>] [--json]
  Asks the running server to re-read its policy folder (as SIGHUP does). An invalid folder, or
  one with no policy (unless --allow-empty), is refused and the set in force keeps serving; both
  outcomes are audited (policy.reloaded, policy.reload_refused). Exit 0 when reloaded, 1 when
  refused, 4 when the server cannot be reached. Needs an admin key.`;

export const suggestHelp = `mandate suggest (--data-dir <dir> | --db <file> | --traces <file.jsonl[.gz]>…) [options]
  Proposes, per agent (and per purpose cluster), the smallest ceiling and mandate template that
  would have allowed the calls observed: in the audit log (allowed decisions) or in recorded
  traces (the replay format, one agent per suite). Prints one YAML document with each agent's
  ceiling, template, cluster templates, how every argument constraint was derived, and what the
  suggestion denies of the window (and of a later one). Summaries go to stderr.
  --since <t>, --until <t>   the audit window: ISO date-times or durations back from now (7d, 12h)
  --evaluate-until <t>       also judge the later window from --until to this time
  --evaluate-traces <file>   with --traces: judge these traces as the later window (repeatable)
  --agent <id>               only this agent (for traces: the suite)
  --policies <dir>           read tools.yaml there for the tools' data classes (repeatable)
  --environment <e>          environment of tasks that declared none (default prod)
  --budget-percentile <p>    budgets at this percentile of calls per task (1-100, default 99)
  --max-enum <n>             most distinct values an argument's one_of lists (default 8)
  --cluster-similarity <j>   purpose-word similarity of one cluster (0.05-1, default 0.5)
  --out <file>               write the YAML there instead of stdout
  --out-dir <dir>            also write <agent>.ceiling.yaml, <agent>.mandate.yaml and one
                             <agent>.<cluster>.mandate.yaml per cluster (policy validate reads them)`;

export const replayHelp = `mandate replay --traces <file.jsonl[.gz]> --policies <dir> [--policies <dir>…] --out <decisions.jsonl> [--shadow <dir>…] [--explain <report.jsonl>]
  Feeds each recorded trace's calls, in order, through the decision pipeline (one task per trace,
  its purpose as the declared purpose, allowed calls' results fed back for provenance) and writes
  one decision per call: {"id","step","decision","reasons","policy_ids"}. Deterministic.
  --policies <dir>   a policy folder; repeat it to load several as one set (e.g. the shipped
                     policies/agent-baseline and a folder with your tools.yaml)
  --shadow <dir>     judge a candidate policy folder (repeatable, like --policies) beside the active
                     set: every divergent call carries "shadow": {"decision","policy_ids"} in --out,
                     and is listed by trace and step
  --explain <file>   write one line per blocked or held call: the rules that decided it, the tool's
                     category and each argument's role and provenance, and print the rules that
                     blocked most
  --concurrency <n>  traces in flight at once (default 16; the output order is the input order)
  --environment <e>  the environment tasks declare (default prod)
  --json             print the summary as JSON`;

export const secretHelp = `mandate secret set NAME (--from-env VAR | --stdin) [--json]
mandate secret list | delete NAME [--json]
  Upstream credentials for the MCP gateway, stored encrypted by the running server (admin key).
  The value is never an argument (shell history, ps): it comes from an environment variable or
  stdin, and is never shown again. Upstreams refer to it as "secret:NAME" in env or headers.
  A server started without a secrets key (mcp.secrets_key_file or MANDATE_SECRETS_KEY) cannot
  store one: exit 3, SECRETS_KEY_MISSING.`;

export const serveHelp = `mandate serve [--config FILE] [--port N] [--host H] [--data-dir DIR] [--policies DIR] [--store URL] [--dev-issuer]
  Starts Mandate with the embedded SQLite store in the data folder, or on PostgreSQL with
  --store postgres://… (several nodes over one database). Environment overrides:
  MANDATE_PORT, MANDATE_HOST, MANDATE_DATA_DIR, MANDATE_POLICIES_DIR, MANDATE_ENVIRONMENT,
  MANDATE_LOG_LEVEL, MANDATE_DEV_ISSUER=1, MANDATE_KEK (the key encryption key of the private
  signing keys, base64 of 32 bytes; else keys.kek_file, else <data-dir>/kek.key, generated).
  Stops cleanly on SIGINT/SIGTERM.`;

export const taskHelp = `mandate task lift <TASK_ID> --reason TEXT [--json]
  Lifts a task's behavioural containment through the running server (admin key): step-up,
  narrowed tools, and a suspension containment made (the task resumes). Never a kill, a policy
  deny or a budget. The reason (3 to 500 characters, one line) goes into the audit chain with
  the operator and what was lifted. Exit 1 when there is nothing to lift or the task has ended.`;
