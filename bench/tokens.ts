/**
 * Task tokens: starting a task (TaskService.start over a real runtime: workload token check,
 * mandate admission, start_task policy, durable task row and audit record, token mint) and
 * verifying task tokens (TaskTokens.verify) the first time a token is seen (signature check)
 * and again (cache hit), against raw jose SignJWT / jwtVerify with an Ed25519 key on the same
 * claims, in the same run.
 *
 *   node bench/tokens.ts [--quick] [--json-only] [--out DIR]
 *
 * No target: the ratios are the result.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { TASK_TOKEN_TYPE } from '@mandate/core';
import { buildHttpApp, createRuntime, parseConfig } from '@mandate/server';
import { armFigures, interleave, metrics, of, ratio, runParams, spreadEntries, timeConcurrentCpu, timeSequentialCpu, warmConcurrent, warmSequential, type Arm, type Budget } from './lib/interleave.ts';
import { type BenchResult, emitResult, newResult, parseBenchArgs, startInfo, printer } from './lib/report.ts';
import { REPO_ROOT } from './lib/stats.ts';
import { heapInUse, shippedHeap } from './lib/shipped-heap.ts';

const TRUST_DOMAIN = 'bench.mandate.local';
const AGENT = `spiffe://${TRUST_DOMAIN}/agents/token-bench`;
const CONCURRENCY = 32;
const MANDATE = {
  purpose: 'token benchmark',
  environment: 'prod',
  ttl: '30m',
  tools: [{ name: 'helpdesk.search_tickets' }],
  data_classes: ['internal'],
};

interface Plan {
  readonly rounds: number;
  readonly start: Budget;
  readonly startConcurrent: Budget;
  readonly mint: Budget;
  readonly verify: Budget;
  /** untimed calls per arm before the first round */
  readonly warmup: number;
}

const FULL: Plan = {
  rounds: 3,
  start: { iterations: 1000, maxMs: 1500 },
  startConcurrent: { iterations: 7000, maxMs: 1500 },
  mint: { iterations: 5000, maxMs: 1500 },
  verify: { iterations: 5000, maxMs: 1500 },
  warmup: 300,
};

/** a smoke run: proves the benchmark works; its numbers are rough */
const QUICK: Plan = {
  rounds: 3,
  start: { iterations: 100, maxMs: 150, min: 10 },
  startConcurrent: { iterations: 700, maxMs: 150, min: 64 },
  mint: { iterations: 300, maxMs: 150 },
  verify: { iterations: 300, maxMs: 150 },
  warmup: 30,
};

export async function runTokensBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const plan = args.quick ? QUICK : FULL;
  const say = printer(args);
  const start = startInfo();
  const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-tokens-'));
  const rt = await createRuntime(
    parseConfig({
      environment: 'prod',
      data_dir: dir,
      policies: { dir: join(REPO_ROOT, 'examples', 'policies') },
      identity: { dev_issuer: { enabled: true, trust_domain: TRUST_DOMAIN } },
      log: { level: 'silent' },
    }),
    { writeAdminKeyFile: false },
  );
  try {
    const app = buildHttpApp(rt, { logger: false });
    const reg = await app.inject({ method: 'POST', url: '/v1/agents', headers: { authorization: `Bearer ${rt.bootstrapAdminKey as string}` }, payload: { id: AGENT, owner: 'bench', type: 'support', ceiling: {} } });
    if (reg.statusCode >= 300) throw new Error(`register agent: ${reg.statusCode} ${reg.body}`);
    const issuer = rt.devIssuer as NonNullable<typeof rt.devIssuer>;
    const svid = await issuer.mint(AGENT, { audience: 'mandate', ttlMs: 600_000 });
    say(`tokens benchmark: TaskService.start c1 and c${CONCURRENCY}, TaskTokens.mint, verify first-seen and cached; floor: jose EdDSA SignJWT / jwtVerify; ${plan.rounds} interleaved rounds; ${args.quick ? 'quick' : 'full'} run`);

    // --- task start, the product path (one workload token, reused: it is valid for 10 minutes)
    const startTask = async () => {
      const t = await rt.tasks.start(svid, MANDATE);
      if (t.task.state !== 'active') throw new Error('task did not start');
    };

    // --- mint and verify: tokens on one real task's claims; first-seen tokens minted ahead, untimed
    const task = await rt.tasks.start(svid, MANDATE);
    const mintInput = { agentId: AGENT, taskId: task.task.id, mandateHash: task.task.mandateHash, txn: task.task.txn, expiresAt: task.task.expiresAt };
    const pool = plan.rounds * plan.verify.iterations + plan.warmup;
    const fresh: string[] = [];
    for (let i = 0; i < pool; i++) fresh.push((await rt.tokens.mint(mintInput)).token);
    let next = 0;
    const verifyFirst = async () => {
      const t = fresh[next++];
      if (t === undefined) throw new Error('ran out of fresh tokens');
      const c = await rt.tokens.verify(t);
      if (c.task_id !== task.task.id) throw new Error('verify returned other claims');
    };
    const verifyCached = async () => {
      const c = await rt.tokens.verify(task.token);
      if (c.task_id !== task.task.id) throw new Error('verify returned other claims');
    };
    const mint = async () => void (await rt.tokens.mint(mintInput));

    // --- the floor: raw jose, Ed25519, the same claims and header, the same verify options
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const claims = { ...task.claims };
    let signed = 0;
    const rawSign = async () => new SignJWT({ ...claims, jti: `jti_${signed++}` }).setProtectedHeader({ alg: 'EdDSA', kid: 'bench', typ: TASK_TOKEN_TYPE }).sign(privateKey);
    const rawTokens: string[] = [];
    for (let i = 0; i < pool; i++) rawTokens.push(await rawSign());
    let rawNext = 0;
    const rawVerify = async () => {
      const t = rawTokens[rawNext++];
      if (t === undefined) throw new Error('ran out of raw tokens');
      const { payload } = await jwtVerify(t, publicKey, { algorithms: ['EdDSA'], issuer: claims.iss, audience: claims.aud, typ: TASK_TOKEN_TYPE, requiredClaims: ['exp', 'iat', 'jti', 'sub'], clockTolerance: 0 });
      if (payload['task_id'] !== task.task.id) throw new Error('raw verify returned other claims');
    };

    const seq = (name: string, label: string, fn: () => Promise<unknown>, budget: Budget): Arm => ({ name, label, concurrency: 1, warmup: () => warmSequential(fn, plan.warmup), measure: () => timeSequentialCpu(fn, budget) });
    const run = await interleave(
      [
        seq('start_c1', 'TaskService.start', startTask, plan.start),
        { name: 'start_c32', label: 'TaskService.start', concurrency: CONCURRENCY, warmup: () => warmConcurrent(startTask, CONCURRENCY, plan.warmup), measure: () => timeConcurrentCpu(startTask, CONCURRENCY, plan.startConcurrent) },
        seq('mint', 'TaskTokens.mint', mint, plan.mint),
        seq('raw_sign', 'jose SignJWT EdDSA (floor)', rawSign, plan.mint),
        seq('verify_first', 'TaskTokens.verify first-seen', verifyFirst, plan.verify),
        seq('verify_cached', 'TaskTokens.verify cached', verifyCached, plan.verify),
        seq('raw_verify', 'jose jwtVerify EdDSA (floor)', rawVerify, plan.verify),
      ],
      { rounds: plan.rounds, say },
    );
    const figures = armFigures(run);

    const result: BenchResult = {
      ...newResult(
        {
          name: 'tokens',
          title: 'Task tokens: task start and token verification vs raw jose EdDSA',
          mode: args.quick ? 'quick' : 'full',
          params: {
            store: 'sqlite (node:sqlite, WAL)',
            durability: rt.config.audit.durability,
            group_commit: true,
            policies: 'examples/policies',
            alg: 'EdDSA (Ed25519)',
            tokenBytes: task.token.length,
            freshTokens: pool,
            concurrency: [1, CONCURRENCY],
            plan,
            v8_heap: heapInUse(),
            ...runParams(run),
          },
        },
        start,
      ),
      figures,
      derived: {
        ...spreadEntries('tasks/s start c1', of(run, 'start_c1', metrics.opsPerSec)),
        ...spreadEntries(`tasks/s start c${CONCURRENCY}`, of(run, 'start_c32', metrics.opsPerSec)),
        ...spreadEntries('ratio mint / raw sign', ratio(run, 'mint', 'raw_sign', metrics.opsPerSec)),
        ...spreadEntries('ratio verify first-seen / raw verify', ratio(run, 'verify_first', 'raw_verify', metrics.opsPerSec)),
        ...spreadEntries('ratio verify cached / raw verify', ratio(run, 'verify_cached', 'raw_verify', metrics.opsPerSec)),
        ...spreadEntries('ratio start c1 / raw sign', ratio(run, 'start_c1', 'raw_sign', metrics.opsPerSec)),
        ...spreadEntries('per-core ratio verify first-seen / raw verify (CPU time)', ratio(run, 'verify_first', 'raw_verify', metrics.perCore)),
        ...spreadEntries('per-core ratio mint / raw sign (CPU time)', ratio(run, 'mint', 'raw_sign', metrics.perCore)),
      },
      notes: [
        'start = TaskService.start from createRuntime(): dev workload token (ES256) verified, mandate parsed and admitted, start_task policy, task row + task.started audit record durably committed, token minted',
        'first-seen = each token verified once (header checks, key lookup, jose jwtVerify, claim checks, cache insert); cached = the same token again (one map lookup)',
        'raw = jose SignJWT / jwtVerify with an Ed25519 key, same claims, header and verify options: the floor of any EdDSA JWT check',
        'every arm runs in each round, the order rotated every round; ratios are within a round, median [min–max] over the rounds; per core = CPU time of this process over the arm',
      ],
    };
    return emitResult(result, args, say);
  } finally {
    await rt.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  shippedHeap();
  await runTokensBenchmark(process.argv.slice(2));
}
