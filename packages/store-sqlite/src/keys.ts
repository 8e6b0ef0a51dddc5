import { MandateError, type KeyStore, type PrivateKeyRewriter } from '@mandate/core';
import { mapConstraint, nullable, toJson, type Sql } from './sql.ts';
import { toSigningKey } from '@mandate/store-sql';

export function sqliteKeys(sql: Sql) {
  return {
    async listKeys(purpose) {
      return sql.all('SELECT * FROM signing_keys WHERE purpose = ? ORDER BY created_at, kid', purpose).map(toSigningKey);
    },

    async addKey(k) {
      try {
        sql.run(
          `INSERT INTO signing_keys (kid, purpose, alg, public_jwk, private_jwk, status, created_at, retired_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          k.kid, k.purpose, k.alg, toJson(k.publicJwk), toJson(k.privateJwk), k.status, k.createdAt, nullable(k.retiredAt),
        );
      } catch (error) {
        mapConstraint(error, `signing key ${k.kid}`);
      }
    },

    async retireKey(kid, at) {
      sql.tx(() => {
        if (sql.get('SELECT 1 AS found FROM signing_keys WHERE kid = ?', kid) === undefined) {
          throw new MandateError('NOT_FOUND', `signing key ${kid} does not exist`);
        }
        // retiring twice keeps the first retirement time
        sql.run(`UPDATE signing_keys SET status = 'retired', retired_at = ? WHERE kid = ? AND status <> 'retired'`, at, kid);
      });
    },

    async replacePrivateKey(kid, privateJwk) {
      if (sql.run('UPDATE signing_keys SET private_jwk = ? WHERE kid = ?', toJson(privateJwk), kid) === 0) {
        throw new MandateError('NOT_FOUND', `signing key ${kid} does not exist`);
      }
    },
  } satisfies KeyStore & PrivateKeyRewriter;
}
