import { z } from 'zod';

const CEDAR_TYPE = /^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$/;

/**
 * The `authzen` section: the AuthZEN 1.0 endpoints, who may call them, and the generic policy
 * domain (users, services and their resources) beside Mandate's agent policies.
 */
export const authzenConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('serve /access/v1/evaluation(s) and /.well-known/authzen-configuration'),
    /** the PDP identifier published in discovery (https, no query or fragment); default: server.public_url. Neither: no metadata is published (in development: the request's origin, not cacheable) */
    pdp_url: z
      .url()
      .refine((u) => !u.includes('?') && !u.includes('#'), 'must have no query or fragment')
      .optional().describe('the PDP identifier published in discovery (https, no query or fragment); default: server.public_url. Neither: no metadata is published (in development: the request\'s origin, not cacheable)'),
    /** enforcement points that authenticate with a bearer token: its SHA-256 (hex), never the token itself */
    clients: z
      .array(z.strictObject({ name: z.string().regex(/^[A-Za-z0-9._:@-]{1,100}$/).describe('the enforcement point\'s name, in the audit and the logs'), token_sha256: z.string().regex(/^[0-9a-f]{64}$/, 'lowercase hex SHA-256').describe('SHA-256 (lowercase hex) of its bearer token; the token itself is never configured') }))
      .max(1000)
      .default([]).describe('enforcement points that authenticate with a bearer token: its SHA-256 (hex), never the token itself'),
    operator_keys: z.boolean().default(true).describe('also accept operator API keys (any role) as enforcement-point credentials'),
    policies_dir: z.string().min(1).optional().describe('folder of *.cedar policies for the generic domain; absent = no policies = every generic request denied'),
    schema_file: z.string().min(1).optional().describe('Cedar schema (text, or JSON when the name ends in .json); when given, policies are validated strictly and requests checked'),
    entities_file: z.string().min(1).optional().describe('Cedar entities JSON (users, groups, resources and their attributes); the API adds to it'),
    namespace: z.string().regex(CEDAR_TYPE).default('App').describe('Cedar namespace of mapped types and actions: `user` -> App::User, action `read` -> App::Action::"read"'),
    types: z.record(z.string().min(1).max(256), z.string().regex(CEDAR_TYPE)).default({}).describe('explicit AuthZEN type -> Cedar entity type mappings, e.g. { identity: App::User }'),
    agent_type: z.string().min(1).max(256).default('agent').describe('the subject type decided by Mandate\'s agent pipeline (properties.task_token)'),
    max_evaluations: z.number().int().min(1).max(10_000).default(1000).describe('most items in one evaluations request'),
    max_api_entities: z.number().int().min(0).max(1_000_000).default(100_000).describe('most entities the API layer may hold'),
  })
  .prefault({});

export type AuthzenConfig = z.output<typeof authzenConfigSchema>;
