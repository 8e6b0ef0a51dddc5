import { parseArgs } from 'node:util';
import { heapApplied, installSafetyNet, keepYoungGenerationSmall, loadConfig, maxHeapMb, reloadPolicies, restartWithHeap, scavengeOnOneThread, serve } from '@mandate/server';
import { processIO, type CliIO } from '../io.ts';

export async function serveCommand(args: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      config: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      policies: { type: 'string' },
      'dev-issuer': { type: 'boolean' },
      store: { type: 'string' },
    },
  });
  const overrides: Record<string, unknown> = {};
  if (values.port !== undefined) overrides['server.port'] = Number(values.port);
  if (values.host !== undefined) overrides['server.host'] = values.host;
  if (values['data-dir'] !== undefined) overrides['data_dir'] = values['data-dir'];
  if (values.policies !== undefined) overrides['policies.dir'] = values.policies;
  if (values['dev-issuer']) overrides['identity.dev_issuer.enabled'] = true;
  if (values.store !== undefined) overrides['store'] = values.store;
  const config = loadConfig(values.config ?? io.env['MANDATE_CONFIG'], io.env, overrides);
  // this command owns the process (heap.ts): its heap's limits are set when V8 creates it, so a
  // process started without them starts again in place (bin/mandate.js did, with the defaults)
  const heap = { maxHeapMb: maxHeapMb(config), youngGenerationGrowth: config.server.young_generation_growth, parallelScavenge: config.server.parallel_scavenge };
  if (!heapApplied(heap)) {
    // only the command run as a process of its own (bin/mandate.js) starts it again; run inside
    // another program (a test, an embedding), that program owns the heap
    if (io === processIO) {
      restartWithHeap(heap);
      io.err(`warning: server.max_heap_mb (${heap.maxHeapMb} MiB) is not applied: this Node has no process.execve (Node >= 23.11); start it with node --max-old-space-size=${heap.maxHeapMb}`);
    }
    if (!heap.youngGenerationGrowth) keepYoungGenerationSmall();
    if (!heap.parallelScavenge) scavengeOnOneThread();
  }
  const server = await serve(config, { bootstrapAdminKey: io.env['MANDATE_BOOTSTRAP_ADMIN_KEY'], env: io.env });
  // this command owns the process: a database error that escaped every listener must not end it
  const removeSafetyNet = installSafetyNet(server.app.log);
  io.out(`mandate listening on ${server.url} (environment ${config.environment}, data ${config.data_dir}, policies ${server.runtime.policies.current.version})`);
  const ke = server.runtime.keyEncryption;
  if (ke.generated) io.err(`warning: generated the key encryption key ${ke.source} next to the store; in production keep it elsewhere (keys.kek_file or MANDATE_KEK)`);
  if (ke.encrypted > 0) io.err(`warning: encrypted ${ke.encrypted} private signing key(s) that were stored in plain text; rotate them (POST /v1/keys/rotate), since earlier copies of the store hold them`);
  if (server.runtime.bootstrapAdminKey) io.out(`bootstrap admin API key written to ${config.data_dir}/admin.key`);
  const log = server.app.log;
  // SIGHUP re-reads the policy folder (policy-reload.ts); a refusal keeps the set in force, and
  // never ends the process (Node's default for SIGHUP)
  let reloading: Promise<unknown> = Promise.resolve();
  const onHangup = () => {
    reloading = reloading.then(() => reloadPolicies(server.runtime, { by: 'signal:SIGHUP', via: 'signal' }, log).catch(() => undefined));
  };
  process.on('SIGHUP', onHangup);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  process.off('SIGHUP', onHangup);
  log.info({ event: 'server.stopping', signal }, 'mandate stopping');
  io.out('mandate stopping');
  await reloading;
  await server.close();
  log.info({ event: 'server.stopped' }, 'mandate stopped');
  removeSafetyNet();
  return 0;
}
