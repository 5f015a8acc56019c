import type { DataSource, EntityManager } from 'typeorm';
import type { Sealed } from '../../infra/secret-box.js';
import type { OllamaKey } from './entities.js';

export type KeyRecord = Omit<OllamaKey, 'user'>;

const COLUMNS = `user_id AS "userId", encrypted_key AS "encryptedKey", nonce, key_version AS "keyVersion", key_hint AS "keyHint", base_url AS "baseUrl",
  created_at AS "createdAt", updated_at AS "updatedAt"`;

/** The only SQL of the ollama module. */
export class OllamaRepository {
  constructor(private readonly db: DataSource) {}

  /** Stores or replaces the user's key; returns the row as written. */
  async upsert(userId: string, sealed: Sealed, keyHint: string, baseUrl: string | null, now: Date): Promise<KeyRecord> {
    const rows: KeyRecord[] = await this.db.query(
      `INSERT INTO ollama_keys (user_id, encrypted_key, nonce, key_version, key_hint, base_url, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
       ON CONFLICT (user_id) DO UPDATE SET encrypted_key = EXCLUDED.encrypted_key, nonce = EXCLUDED.nonce, key_version = EXCLUDED.key_version,
         key_hint = EXCLUDED.key_hint, base_url = EXCLUDED.base_url, updated_at = EXCLUDED.updated_at
       RETURNING ${COLUMNS}`,
      [userId, sealed.ciphertext, sealed.nonce, sealed.version, keyHint, baseUrl, now],
    );
    return rows[0]!;
  }

  async find(userId: string): Promise<KeyRecord | null> {
    const rows: KeyRecord[] = await this.db.query(`SELECT ${COLUMNS} FROM ollama_keys WHERE user_id = $1`, [userId]);
    return rows[0] ?? null;
  }

  async delete(userId: string): Promise<boolean> {
    const [, count]: [unknown, number] = await this.db.query(`DELETE FROM ollama_keys WHERE user_id = $1`, [userId]);
    return count > 0;
  }

  /**
   * Re-seals, in one transaction, up to `limit` rows after `after` (by user id) not sealed with
   * `currentVersion`, each locked so a user's own write never meets the rotation on a row (a
   * row being written is skipped: the write seals it with the current key anyway). `reseal`
   * answers null for a row it cannot open. Returns the counts and the last user id seen (null
   * once there is nothing left).
   */
  async reseal(
    currentVersion: string,
    after: string | null,
    limit: number,
    reseal: (row: KeyRecord) => Sealed | null,
  ): Promise<{ resealed: number; unreadable: number; last: string | null }> {
    return this.db.transaction(async (manager: EntityManager) => {
      const rows: KeyRecord[] = await manager.query(
        `SELECT ${COLUMNS} FROM ollama_keys WHERE key_version <> $1 AND ($2::uuid IS NULL OR user_id > $2) ORDER BY user_id LIMIT $3 FOR UPDATE SKIP LOCKED`,
        [currentVersion, after, limit],
      );
      let resealed = 0;
      for (const row of rows) {
        const sealed = reseal(row);
        if (!sealed) continue;
        await manager.query(`UPDATE ollama_keys SET encrypted_key = $2, nonce = $3, key_version = $4 WHERE user_id = $1`, [
          row.userId,
          sealed.ciphertext,
          sealed.nonce,
          sealed.version,
        ]);
        resealed += 1;
      }
      return { resealed, unreadable: rows.length - resealed, last: rows.at(-1)?.userId ?? null };
    });
  }

  async countByVersion(): Promise<Array<{ version: string; rows: number }>> {
    const rows: Array<{ version: string; rows: string }> = await this.db.query(
      `SELECT key_version AS version, count(*) AS rows FROM ollama_keys GROUP BY key_version ORDER BY key_version`,
    );
    return rows.map((row) => ({ version: row.version, rows: Number(row.rows) }));
  }
}
