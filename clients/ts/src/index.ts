export { Client, directConvId, previewOf } from './client.js';
export type { ClientEvents, ClientOptions, State, UploadOptions, ViewMessage } from './client.js';
export { MemoryCache } from './cache.js';
export type { Cache, Cursor, OutboxEntry } from './cache.js';
export { Close, NatterError } from './errors.js';
export type { ErrorCode } from './errors.js';
export { EVENTS, OPS } from './gen.js';
export type * from './gen.js';
export type * from './types.js';
