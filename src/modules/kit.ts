import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Server } from 'socket.io';
import type { EntitySchema } from 'typeorm';
import type { JobDefinition } from '../infra/jobs.js';

/** A TypeORM entity class (or schema) a module owns. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- TypeORM's own entity type is Function
export type EntityClass = Function | EntitySchema;

/**
 * What a module hands the server once built. Everything is optional but the service: a
 * module that only serves pages has no socket handlers, a module without background work
 * has no jobs.
 */
export interface ModuleParts<S> {
  /** What other modules and the tests use; its type is the module's public interface. */
  service: S;
  /**
   * The module's HTTP routes, registered by buildApp as one encapsulated plugin: the content
   * type parsers, decorators and hooks it adds apply to its own routes only.
   */
  http?: FastifyPluginAsyncZod;
  /** Socket.io handlers; the returned function stops them on shutdown (before the sockets close). */
  sockets?: (io: Server) => () => Promise<void>;
  /** Its background work (queue consumers and scheduled jobs), run by the job runtime. */
  jobs?: ReadonlyArray<JobDefinition<never>>;
  /** Releases what the module holds (timers, connections) before the database and Redis close. */
  close?: () => Promise<void>;
}

export interface ModuleDefinition<D, S> {
  name: string;
  /** The tables the module owns: collected for the DataSource, the migrations CLI and the tests. */
  entities: EntityClass[];
  /** OpenAPI tags its routes use. */
  tags?: Array<{ name: string; description: string }>;
  create(deps: D): ModuleParts<S>;
}

/** Keeps a module definition's types (its dependencies and its service) for the container. */
export function defineModule<D, S>(definition: ModuleDefinition<D, S>): ModuleDefinition<D, S> {
  return definition;
}
