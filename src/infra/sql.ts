import type { Pool } from 'pg';
import { QueryFailedError, type DataSource } from 'typeorm';

/**
 * Named (prepared) statements straight on the pg pool, for hot read paths where TypeORM's
 * query runner and entity hydration cost more than the query itself.
 */
export interface PreparedReader {
  one<T>(name: string, text: string, values: unknown[]): Promise<T | undefined>;
}

export function createPreparedReader(dataSource: DataSource): PreparedReader {
  const pool = (dataSource.driver as unknown as { master: Pool }).master;
  return {
    one: async <T>(name: string, text: string, values: unknown[]) => {
      const result = await pool.query({ name, text, values });
      return result.rows[0] as T | undefined;
    },
  };
}

interface Queryable {
  query(sql: string, parameters?: unknown[]): Promise<unknown>;
}

/** Runs an UPDATE or DELETE ... RETURNING (TypeORM answers both as [rows, rowCount]) and returns the rows. */
export async function updateReturning<T>(manager: Queryable, sql: string, parameters: unknown[]): Promise<T[]> {
  const [rows] = (await manager.query(sql, parameters)) as [T[], number];
  return rows;
}

/** Whether `error` is PostgreSQL's unique violation (23505), of `constraint` when one is named. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  if (!(error instanceof QueryFailedError)) return false;
  const { code, constraint: violated } = error.driverError as { code?: string; constraint?: string };
  return code === '23505' && (constraint === undefined || violated === constraint);
}
