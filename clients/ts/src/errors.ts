/** The server's closed set of error codes (docs/protocol.md), plus the SDK's own
 * `disconnected` (the connection closed before the reply) and `timeout`. */
export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'rate_limited'
  | 'too_large'
  | 'unavailable'
  | 'internal'
  | 'disconnected'
  | 'timeout';

export class NatterError extends Error {
  readonly code: ErrorCode;
  /** The request never left this client (no connection): sending it elsewhere is safe. */
  readonly unsent: boolean;
  constructor(code: ErrorCode, message: string, unsent = false) {
    super(message);
    this.name = 'NatterError';
    this.code = code;
    this.unsent = unsent;
  }

  /** Worth sending again as is (writes are idempotent). */
  get retryable(): boolean {
    return ['rate_limited', 'unavailable', 'internal', 'disconnected', 'timeout'].includes(this.code);
  }
}

/** WebSocket close codes of the edge. */
export const Close = {
  ShuttingDown: 3001,
  HeartbeatTimeout: 3002,
  SlowConsumer: 3003,
  Kicked: 3501,
  TokenExpired: 3502,
  TooLarge: 3503,
  NotUTF8: 1007,
} as const;
