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
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { TASK_TOKEN_TYPE } from '@mandate/core';
import { buildHttpApp, createRuntime, parseConfig } from '@mandate/server';
import { type BenchResult, type Figure, emitResult, figure, newResult, parseBenchArgs, startInfo } from './lib/report.ts';
import { REPO_ROOT, settle, timeConcurrent, timeSequential, type LoopOptions } from './lib/stats.ts';

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
  readonly start: LoopOptions;
  readonly startConcurrent: LoopOptions;
  /** distinct tokens minted up front for first-seen verification (also the mint measurement) */
  readonly fresh: number;
  readonly verify: LoopOptions;
}

const FULL: Plan = {
  start: { warmup: 50, iterations: 3000, maxMs: 4000 },
  startConcurrent: { warmup: 64, iterations: 20_000, maxMs: 4000 },
  fresh: 20_000,
  verify: { warmup: 500, iterations: 20_000, maxMs: 4000 },
};

/** a smoke run: proves the benchmark works; its numbers are rough */
const QUICK: Plan = {
  start: { warmup: 10, iterations: 300, maxMs: 400, minIterations: 20 },
  startConcurrent: { warmup: 32, iterations: 2000, maxMs: 400, minIterations: 64 },
  fresh: 2000,
  verify: { warmup: 100, iterations: 1500, maxMs: 400, minIterations: 50 },
};

export async function runTokensBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const plan = args.quick ? QUICK : FULL;
  const say = (m: string) => (args.jsonOnly ? process.stderr : process.stdout).write(m + '\n');
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
    say(`tokens benchmark: TaskService.start c1 and c${CONCURRENCY}, TaskTokens.mint, verify first-seen ${plan.fresh} tokens and cached; floor: jose EdDSA SignJWT / jwtVerify; ${args.quick ? 'quick' : 'full'} run`);

    // --- task start, the product path (one workload token, reused: it is valid for 10 minutes)
    const startTask = async () => {
      const t = await rt.tasks.start(svid, MANDATE);
      if (t.task.state !== 'active') throw new Error('task did not start');
    };
    await settle();
    const startC1 = await timeSequential(startTask, plan.start);
    await settle();
    const startC32 = await timeConcurrent(startTask, CONCURRENCY, plan.startConcurrent);

    // --- mint and verify: tokens on one real task's claims
    const task = await rt.tasks.start(svid, MANDATE);
    const mintInput = { agentId: AGENT, taskId: task.task.id, mandateHash: task.task.mandateHash, txn: task.task.txn, expiresAt: task.task.expiresAt };
    const fresh: string[] = [];
    await settle();
    const mint = await timeSequential(
      async () => {
        fresh.push((await rt.tokens.mint(mintInput)).token);
      },
      { warmup: 0, iterations: plan.fresh, maxMs: Number.POSITIVE_INFINITY },
    );
    let next = 0;
    await settle();
    const verifyFirst = await timeSequential(
      async () => {
        const c = await rt.tokens.verify(fresh[next++ % fresh.length] as string);
        if (c.task_id !== task.task.id) throw new Error('verify returned other claims');
      },
      { ...plan.verify, warmup: Math.min(plan.verify.warmup, plan.fresh / 10), iterations: Math.min(plan.verify.iterations, plan.fresh - Math.min(plan.verify.warmup, plan.fresh / 10)) },
    );
    await settle();
    const verifyCached = await timeSequential(async () => {
      const c = await rt.tokens.verify(task.token);
      if (c.task_id !== task.task.id) throw new Error('verify returned other claims');
    }, plan.verify);

    // --- the floor: raw jose, Ed25519, the same claims and header, the same verify options
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const claims = { ...task.claims };
    const rawTokens: string[] = [];
    await settle();
    const rawSign = await timeSequential(
      async () => {
        rawTokens.push(await new SignJWT({ ...claims, jti: `jti_${rawTokens.length}` }).setProtectedHeader({ alg: 'EdDSA', kid: 'bench', typ: TASK_TOKEN_TYPE }).sign(privateKey));
      },
      { warmup: 0, iterations: plan.fresh, maxMs: Number.POSITIVE_INFINITY },
    );
    let rawNext = 0;
    await settle();
    const rawVerify = await timeSequential(async () => {
      const { payload } = await jwtVerify(rawTokens[rawNext++ % rawTokens.length] as string, publicKey, {
        algorithms: ['EdDSA'],
        issuer: claims.iss,
        audience: claims.aud,
        typ: TASK_TOKEN_TYPE,
        requiredClaims: ['exp', 'iat', 'jti', 'sub'],
        clockTolerance: 0,
      });
      if (payload['task_id'] !== task.task.id) throw new Error('raw verify returned other claims');
    }, plan.verify);

    const figures: Record<string, Figure> = {
      start_c1: figure('TaskService.start', startC1.samples, { concurrency: 1, elapsedMs: startC1.elapsedMs, opsBasis: 'wall' }),
      start_c32: figure('TaskService.start', startC32.samples, { concurrency: CONCURRENCY, elapsedMs: startC32.elapsedMs, opsBasis: 'wall' }),
      mint: figure('TaskTokens.mint', mint.samples, { concurrency: 1, elapsedMs: mint.elapsedMs, opsBasis: 'wall' }),
      raw_sign: figure('jose SignJWT EdDSA (floor)', rawSign.samples, { concurrency: 1, elapsedMs: rawSign.elapsedMs, opsBasis: 'wall' }),
      verify_first: figure('TaskTokens.verify first-seen', verifyFirst.samples, { concurrency: 1, elapsedMs: verifyFirst.elapsedMs, opsBasis: 'wall' }),
      verify_cached: figure('TaskTokens.verify cached', verifyCached.samples, { concurrency: 1, elapsedMs: verifyCached.elapsedMs, opsBasis: 'wall' }),
      raw_verify: figure('jose jwtVerify EdDSA (floor)', rawVerify.samples, { concurrency: 1, elapsedMs: rawVerify.elapsedMs, opsBasis: 'wall' }),
    };
    const ops = (k: string) => (figures[k] as Figure).opsPerSec;

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
            freshTokens: plan.fresh,
            concurrency: [1, CONCURRENCY],
            plan,
            loadavg_end: loadavg().map((l) => Math.round(l * 100) / 100),
          },
        },
        start,
      ),
      figures,
      derived: {
        'tasks/s start c1': ops('start_c1'),
        [`tasks/s start c${CONCURRENCY}`]: ops('start_c32'),
        'ratio mint / raw sign': ops('mint') / ops('raw_sign'),
        'ratio verify first-seen / raw verify': ops('verify_first') / ops('raw_verify'),
        'ratio verify cached / raw verify': ops('verify_cached') / ops('raw_verify'),
        'ratio start c1 / raw sign': ops('start_c1') / ops('raw_sign'),
      },
      notes: [
        'start = TaskService.start from createRuntime(): dev workload token (ES256) verified, mandate parsed and admitted, start_task policy, task row + task.started audit record durably committed, token minted',
        'first-seen = each token verified once (header checks, key lookup, jose jwtVerify, claim checks, cache insert); cached = the same token again (one map lookup)',
        'raw = jose SignJWT / jwtVerify with an Ed25519 key, same claims, header and verify options: the floor of any EdDSA JWT check',
      ],
    };
    return emitResult(result, args, say);
  } finally {
    await rt.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  await runTokensBenchmark(process.argv.slice(2));
}
