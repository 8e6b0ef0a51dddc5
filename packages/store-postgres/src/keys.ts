import { MandateError, type KeyStore, type PrivateKeyRewriter } from '@mandate/core';
import { mapConstraint, nullable, num, toJson, type Db } from './db.ts';
import { toSigningKey } from '@mandate/store-sql';

export function postgresKeys(db: Db) {
  return {
    async listKeys(purpose) {
      return (await db.rows('SELECT * FROM signing_keys WHERE purpose = $1 ORDER BY created_at, kid', [purpose])).map(toSigningKey);
    },

    async addKey(k) {
      try {
        await db.run(
          `INSERT INTO signing_keys (kid, purpose, alg, public_jwk, private_jwk, status, created_at, retired_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [k.kid, k.purpose, k.alg, toJson(k.publicJwk), toJson(k.privateJwk), k.status, k.createdAt, nullable(k.retiredAt)],
        );
      } catch (error) {
        mapConstraint(error, `signing key ${k.kid}`);
      }
    },

    async retireKey(kid, at) {
      // retiring twice keeps the first retirement time; one statement tells "unknown" from "already retired"
      const r = await db.row(
        `WITH k AS (SELECT kid FROM signing_keys WHERE kid = $1),
              u AS (UPDATE signing_keys SET status = 'retired', retired_at = $2 WHERE kid = $1 AND status <> 'retired' RETURNING kid)
         SELECT (SELECT count(*) FROM k) AS found`,
        [kid, at],
      );
      if (r === undefined || num(r, 'found') === 0) throw new MandateError('NOT_FOUND', `signing key ${kid} does not exist`);
    },

    async replacePrivateKey(kid, privateJwk) {
      if ((await db.row('UPDATE signing_keys SET private_jwk = $2 WHERE kid = $1 RETURNING kid', [kid, toJson(privateJwk)])) === undefined) {
        throw new MandateError('NOT_FOUND', `signing key ${kid} does not exist`);
      }
    },
  } satisfies KeyStore & PrivateKeyRewriter;
}
