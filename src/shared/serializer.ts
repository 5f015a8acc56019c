import fastJson from 'fast-json-stringify';
import type { FastifySerializerCompiler } from 'fastify';
import { toJSONSchema, type $ZodType } from 'zod/v4/core';

/**
 * Responses are serialized by fast-json-stringify compiled from each route's zod response
 * schema (Fastify's own approach): only declared fields are written, so an entity's extra
 * columns can never leak, and it is several times cheaper than parsing every response with
 * zod before JSON.stringify. Inputs are still validated by zod.
 */
export const serializerCompiler: FastifySerializerCompiler<$ZodType> = ({ schema }) => {
  const jsonSchema = toJSONSchema(schema, { io: 'output', target: 'draft-07', unrepresentable: 'any' });
  return fastJson(jsonSchema as Parameters<typeof fastJson>[0]);
};
