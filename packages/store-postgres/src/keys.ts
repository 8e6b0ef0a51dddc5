import { MandateError, type SigningKey, type KeyStore } from '@mandate/core';
import { json, mapConstraint, nullable, num, optNum, str, toJson, type Db, type Row } from './db.ts';

function toKey(r: Row): SigningKey {
  return {
    kid: str(r, 'kid'),
    purpose: str(r, 'purpose') as SigningKey['purpose'],
    alg: str(r, 'alg') as SigningKey['alg'],
    publicJwk: json(r, 'public_jwk'),
    privateJwk: json(r, 'private_jwk'),
    status: str(r, 'status') as SigningKey['status'],
    createdAt: num(r, 'created_at'),
    retiredAt: optNum(r, 'retired_at'),
  };
}

export function postgresKeys(db: Db) {
  return {
    async listKeys(purpose) {
      return (await db.rows('SELECT * FROM signing_keys WHERE purpose = $1 ORDER BY created_at, kid', [purpose])).map(toKey);
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
  } satisfies KeyStore;
}
