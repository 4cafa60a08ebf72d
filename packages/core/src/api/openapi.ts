import { z } from 'zod';
import { PERMISSIONS } from '../auth.ts';
import { IDEMPOTENCY_HEADER } from '../idempotency.ts';
import { ApprovalForm } from '../schemas.ts';
import type { ApiRoute } from './routes.ts';
import { ApprovalLinkPath, ErrorBody, Health } from './schemas.ts';

/**
 * The OpenAPI 3.1 document of the API, derived from the route table and the zod schemas the router
 * validates with (zod 4's own JSON Schema output, which is OpenAPI 3.1's dialect). Nothing here
 * restates a field: a changed schema changes the document.
 */

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

const ERROR_REF = { $ref: '#/components/schemas/Error' };

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'invalid_request: details names each field (body field, path or query parameter) and what to fix',
  401: 'unauthorized: no token ("Authorization: Bearer <token>"), or an unknown, expired or revoked one',
  403: 'forbidden: the token\'s role may not do this',
  404: 'not_found',
  409: 'a conflict with the current state (environment_locked, illegal_transition, conflict, ...)',
  410: 'gone',
  413: 'payload_too_large: bodies may be at most 1 MiB',
  415: 'unsupported_media_type: send application/json',
  422: 'unprocessable: well-formed, but not allowed now (artifact_missing, artifact_mismatch, ...)',
  500: 'internal: quote the x-request-id to the operators',
  503: 'unavailable or overloaded: a dependency failed, or the API is at capacity and did nothing; try again after Retry-After seconds',
};

const errorResponse = (status: number) => ({
  description: ERROR_DESCRIPTIONS[status] ?? 'error',
  ...(status === 503
    ? { headers: { 'retry-after': { description: 'seconds to wait before trying again', schema: { type: 'integer' } } } }
    : {}),
  content: { 'application/json': { schema: ERROR_REF } },
});

const IDEMPOTENCY_PARAMETER = {
  name: IDEMPOTENCY_HEADER,
  in: 'header',
  required: false,
  description:
    'A key of the client\'s choosing (a UUID, say) naming this request: a retry with the same key and body answers the first ' +
    'answer (with Idempotent-Replayed: true) and changes nothing; the same key with another body answers 422 ' +
    'idempotency_key_reused, and while the first request runs, 409 idempotency_in_progress. Kept a day.',
  schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$' },
};

function parameters(where: 'path' | 'query', schema: z.ZodObject | undefined) {
  if (!schema) return [];
  const object = jsonSchema(schema, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(object.properties ?? {}).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || (object.required ?? []).includes(name),
    schema: property,
  }));
}

function operation(route: ApiRoute) {
  const { success } = route;
  // Every token-protected route may be refused at capacity (503 with Retry-After).
  const errors = new Set<number>([401, 403, 500, 503, ...route.errors]);
  if (route.idempotent) [409, 422].forEach((status) => errors.add(status));
  if (route.params || route.query || route.body) errors.add(400);
  if (route.body) [413, 415].forEach((status) => errors.add(status));
  const roles = PERMISSIONS[route.permission].join(', ');
  return {
    operationId: route.operationId,
    summary: route.summary,
    description: `Roles: ${roles}.`,
    security: [{ bearerAuth: [] }],
    parameters: [
      ...parameters('path', route.params),
      ...parameters('query', route.query?.schema),
      ...(route.idempotent ? [IDEMPOTENCY_PARAMETER] : []),
    ],
    ...(route.body
      ? {
          requestBody: {
            required: !route.body.optional,
            content: { 'application/json': { schema: jsonSchema(route.body.schema, 'input') } },
          },
        }
      : {}),
    responses: {
      [success.status]: {
        description: success.description,
        ...(success.status === 201 || success.status === 202
          ? { headers: { location: { description: 'where what was created or started can be read', schema: { type: 'string' } } } }
          : {}),
        ...(success.schema
          ? {
              content: {
                'application/json': { schema: jsonSchema(success.schema, 'output') },
                // With Accept: text/event-stream (see the schema's description for the events).
                ...(route.events ? { 'text/event-stream': { schema: { type: 'string' } } } : {}),
              },
            }
          : {}),
      },
      ...Object.fromEntries([...errors].sort().map((status) => [status, errorResponse(status)])),
    },
  };
}

const HTML = { 'text/html': { schema: { type: 'string' } } };

/** The routes outside the table: no token, not JSON in. */
function publicPaths() {
  const approvalId = parameters('path', ApprovalLinkPath);
  return {
    '/healthz': {
      get: {
        operationId: 'health',
        summary: 'Liveness',
        security: [],
        responses: { 200: { description: 'up', content: { 'application/json': { schema: jsonSchema(Health, 'output') } } } },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'openApi',
        summary: 'This document',
        security: [],
        responses: { 200: { description: 'the OpenAPI 3.1 document', content: { 'application/json': { schema: { type: 'object' } } } } },
      },
    },
    '/approvals/{approvalId}': {
      get: {
        operationId: 'viewApprovalPage',
        summary: 'The page behind an approver\'s link: shows the change, decides nothing (HEAD too)',
        security: [],
        parameters: approvalId,
        responses: {
          200: { description: 'the decision page', content: HTML },
          404: { description: 'an unknown link', content: HTML },
          409: { description: 'the link was used already', content: HTML },
          410: { description: 'an expired link', content: HTML },
        },
      },
      post: {
        operationId: 'decideByApprovalPage',
        summary: 'The decision page\'s form: approve or reject, once per link',
        security: [],
        parameters: approvalId,
        requestBody: {
          required: true,
          content: { 'application/x-www-form-urlencoded': { schema: jsonSchema(ApprovalForm, 'input') } },
        },
        responses: {
          200: { description: 'decided', content: HTML },
          400: { description: 'the form was incomplete; nothing was decided', content: HTML },
          403: { description: 'a forged form, or an approver approving their own release', content: HTML },
          404: { description: 'an unknown link', content: HTML },
          409: { description: 'already decided', content: HTML },
          410: { description: 'an expired link', content: HTML },
          413: { description: 'a form over 16 KiB', content: HTML },
        },
      },
    },
  };
}

export function buildOpenApiDocument(routes: ApiRoute[]) {
  const paths: Record<string, Record<string, unknown>> = publicPaths();
  for (const route of routes) {
    paths[route.path] = { ...paths[route.path], [route.method.toLowerCase()]: operation(route) };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Slipway API',
      version: '1',
      description:
        'Releases for server fleets. Every /v1 route takes "Authorization: Bearer <token>"; errors answer the Error shape. ' +
        'The CLI (slipway) calls these routes; its --help names the route of each command.',
    },
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: jsonSchema(ErrorBody, 'output') },
    },
    paths,
  };
}
