export { createHttpApi, MAX_BODY_BYTES, type HttpApi } from './app.ts';
export { buildOpenApiDocument } from './openapi.ts';
export { apiRoutes, type ApiRoute, type ApiServices } from './routes.ts';
