import { adminModule } from './admin/index.js';
import { auditModule } from './audit/index.js';
import { authModule } from './auth/index.js';
import { betaModule } from './beta/index.js';
import { callsModule } from './calls/index.js';
import { chatModule } from './chat/index.js';
import { demoModule } from './demo/index.js';
import { lmsModule } from './lms/index.js';
import { matchmakingModule } from './matchmaking/index.js';
import { notificationsModule } from './notifications/index.js';
import { ollamaModule } from './ollama/index.js';
import { opsModule } from './ops/index.js';
import { paymentsModule } from './payments/index.js';
import { pagesModule } from './pages/index.js';
import { reportsModule } from './reports/index.js';
import { signalingModule } from './signaling/index.js';
import { storageModule } from './storage/index.js';
import { usersModule } from './users/index.js';

/**
 * Every module, in dependency order (routes register in this order). The container must
 * build each one: its `CreatedModules` type makes a missing block a compile error.
 */
export const modules = {
  audit: auditModule,
  users: usersModule,
  beta: betaModule,
  auth: authModule,
  calls: callsModule,
  matchmaking: matchmakingModule,
  signaling: signalingModule,
  reports: reportsModule,
  notifications: notificationsModule,
  lms: lmsModule,
  payments: paymentsModule,
  ollama: ollamaModule,
  chat: chatModule,
  admin: adminModule,
  storage: storageModule,
  pages: pagesModule,
  demo: demoModule,
  ops: opsModule,
};

type Catalogue = typeof modules;
export type ModuleName = keyof Catalogue;
type ServiceOf<K extends ModuleName> = ReturnType<Catalogue[K]['create']>['service'];

/** What the container built of every module. */
export type CreatedModules = { [K in ModuleName]: ReturnType<Catalogue[K]['create']> };

/** The services of the modules that have one, by module name. */
export type ModuleServices = { [K in ModuleName as ServiceOf<K> extends undefined ? never : K]: ServiceOf<K> };

/** The tables of every module, for the DataSource and the migrations CLI. */
export const moduleEntities = Object.values(modules).flatMap((module) => module.entities);

/** The OpenAPI tags of every module. */
export const moduleTags = Object.values(modules).flatMap((module) => module.tags ?? []);
