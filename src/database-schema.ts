import 'reflect-metadata';
import { migrations } from '../migrations/index.js';
import { DeviceSession, EmailVerificationToken, PasswordResetToken, RefreshToken } from './modules/auth/entities.js';
import { InviteKey } from './modules/beta/entities.js';
import { Report } from './modules/reports/entities.js';
import { Call, CallRating } from './modules/calls/entities.js';
import { Profile, User } from './modules/users/entities.js';
import { IdempotencyKey } from './http/idempotency/entity.js';

/**
 * Every entity and migration of every module, in one list shared by the server and the
 * TypeORM CLI (data-source.ts). activity_logs is partitioned, which TypeORM cannot
 * describe: the audit module reaches it with SQL.
 */
export const entities = [
  User,
  Profile,
  DeviceSession,
  RefreshToken,
  PasswordResetToken,
  EmailVerificationToken,
  InviteKey,
  Call,
  CallRating,
  Report,
  IdempotencyKey,
];

export { migrations };
