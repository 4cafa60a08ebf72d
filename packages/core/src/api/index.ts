export { createHttpApi, DEFAULT_MAX_IN_FLIGHT_REQUESTS, MAX_BODY_BYTES, OVERLOAD_RETRY_AFTER_SECONDS, type HttpApi } from './app.ts';
export { buildOpenApiDocument } from './openapi.ts';
export { apiRoutes, type ApiRoute, type ApiServices } from './routes.ts';
