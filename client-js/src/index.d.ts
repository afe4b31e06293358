// Types for @sessiongate/client. See README.md for behaviour.

/** Close codes the gateway uses. */
export declare const CloseCodes: Readonly<{
  NORMAL: 1000;
  GOING_AWAY: 1001;
  ABNORMAL: 1006;
  TOO_BIG: 1009;
  INTERNAL: 1011;
  SLOW_CONSUMER: 4000;
  HEARTBEAT_TIMEOUT: 4001;
  RATE_LIMITED: 4008;
  CONNECTION_LIMIT: 4009;
  EVENTS_MISSED: 4010;
  REVOKED: 4500;
  EXPIRED: 4501;
  UNAUTHORIZED: 4502;
  PROTOCOL_ERROR: 4503;
  SESSION_LOST: 4504;
}>;

/** Codes a send() promise rejects with (`SendError.code`). */
export declare const SendErrorCodes: Readonly<{
  /** Server: the message is larger than the gateway accepts. */
  TOO_LARGE: 'too_large';
  /** Server: the connection sends messages faster than allowed. */
  RATE_LIMITED: 'rate_limited';
  /** Server: the user's inbound queue is full (backpressure: retry later). */
  QUEUE_FULL: 'queue_full';
  /** Server: the queue cannot be reached; nothing was queued. */
  UNAVAILABLE: 'unavailable';
  /** Server or client: the message is not acceptable (e.g. null data); do not retry as is. */
  INVALID: 'invalid';
  /** Client: no ack or error within the timeout; the message may or may not have been queued. */
  TIMEOUT: 'timeout';
  /** Client: the connection closed after the message was sent, before its ack; it may or may not have been queued. */
  DISCONNECTED: 'disconnected';
  /** Client: the client is closed, or closed (terminal close, close()) before the message was sent. */
  CLOSED: 'closed';
  /** Client: maxPending messages already wait for a connection. */
  BACKPRESSURE: 'backpressure';
}>;

export type SendErrorCode =
  | 'too_large' | 'rate_limited' | 'queue_full' | 'unavailable' | 'invalid'
  | 'timeout' | 'disconnected' | 'closed' | 'backpressure'
  | (string & {});

/** The Error a send() promise rejects with. */
export interface SendError extends Error {
  name: 'SendError';
  /** Why: a server code, or one of the client's (see SendErrorCodes). A newer gateway may send other codes. */
  code: SendErrorCode;
  /** The message's id, when it had one (absent for data refused before an id was given). */
  id?: string;
}

export interface SendOptions {
  /** The message's name (selects the worker's handler). Omitted from the frame when not given. */
  event?: string;
  /** ms to wait for the ack, counted from the call (time held included). Defaults to the client's sendTimeout. */
  timeout?: number;
}

/** What a send() resolves with once the gateway acked the message. */
export interface SendResult {
  /** The id the client gave the message. */
  id: string;
  /** The queue's id of the message (the worker's idempotency key). */
  msgId: string | null;
}

/** isTerminalCode reports whether a close code means "do not reconnect" (4500-4504, 1009). */
export declare function isTerminalCode(code: number): boolean;

/** Connection state. */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Minimal WebSocket constructor shape: the browser/Node 22 global or the `ws` package. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: any) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** ws (Node) only: drop the TCP connection without a close handshake. */
  terminate?(): void;
}
export type WebSocketConstructor = new (url: string, protocolsOrOptions?: any) => WebSocketLike;

export interface ReconnectOptions {
  /** Base delay in ms. Defaults to 500. */
  minDelay?: number;
  /** Cap in ms. Defaults to 30000. */
  maxDelay?: number;
  /** Growth per attempt (>= 1). Defaults to 2. */
  factor?: number;
}

export interface SessionGateClientOptions {
  /** ws(s):// (or http(s)://) URL of /ws. Defaults to `/ws` on the page's origin (browsers only). */
  url?: string | URL;
  /** Session token for non-browser clients, sent as `Authorization: Bearer`. Refused with a browser's native WebSocket. */
  token?: string;
  /** WebSocket implementation. Defaults to globalThis.WebSocket; on Node 20 pass `ws`. */
  WebSocket?: WebSocketConstructor;
  /** Extra constructor options for Node implementations (ws, undici), e.g. `{ headers }`, TLS options. */
  webSocketOptions?: Record<string, unknown>;
  /** Full-jitter exponential backoff. */
  reconnect?: ReconnectOptions;
  /** ms a connection must stay open (after its welcome) for backoff to reset. Defaults to 10000. */
  stableAfter?: number;
  /** ms added to the server's ping_interval_ms before a silent connection is dropped. Defaults to 10000. */
  pingGrace?: number;
  /** ms allowed for the handshake before it is abandoned and retried. Defaults to 10000. */
  connectTimeout?: number;
  /** Consecutive failures before the upgrade after which the session endpoint is probed; 0 disables. Defaults to 3. */
  authProbeAfter?: number;
  /** ms allowed for the session probe. Defaults to 10000. */
  probeTimeout?: number;
  /** Session endpoint, resolved against the http(s) form of `url`. Defaults to "/auth/session". */
  sessionUrl?: string;
  /** Random source in [0, 1) for the jitter. Defaults to Math.random. */
  random?: () => number;
  /** fetch used by the session probe. Defaults to globalThis.fetch. */
  fetch?: typeof globalThis.fetch;
  /** ms a send() waits for its ack before it rejects with "timeout". Defaults to 10000. */
  sendTimeout?: number;
  /** Messages send() may hold while not connected; over it send() rejects with "backpressure". 0: never hold. Defaults to 100. */
  maxPending?: number;
}

export interface StateDetail {
  state: ClientState;
  /** Close code that caused `reconnecting` or `closed`. */
  code?: number;
  reason?: string;
  /** `reconnecting`: 1-based number of the coming attempt since the last stable connection. */
  attempt?: number;
  /** `reconnecting`: ms until the next attempt (absent while probing). */
  delay?: number;
  /** `reconnecting`: the session endpoint is being probed before the next attempt. */
  probing?: boolean;
}

export interface WelcomeDetail {
  connId: string | null;
  userId: string | null;
  instance: string | null;
  pingIntervalMs: number;
}

/** A history stream: the connection's user's own, or the broadcast stream. */
export type StreamName = 'user' | 'all';

/** Where a stream stands: its epoch (lowercase hex) and an offset within it. */
export interface StreamPosition {
  epoch: string;
  offset: number;
}

/** Position per stream; a stream without one is absent (`{}` with history off). */
export type Positions = Partial<Record<StreamName, StreamPosition>>;

export interface EventDetail<T = unknown> {
  id: string | null;
  event: string | null;
  data: T;
  /** The event's stream and position in it; absent with history off. */
  stream?: StreamName | string;
  epoch?: string;
  offset?: number;
}

export interface RecoveredDetail {
  /** The streams the reconnect resumed; their missed events follow as `event`s. */
  streams: StreamName[];
}

export interface RecoveryFailedDetail {
  /** The resumed streams whose missed events the gateway could not replay: refetch their state. */
  lost: StreamName[];
  /** The client's positions after the welcome (the lost streams start from the welcome's). */
  positions: Positions;
}

export interface ClosedDetail {
  code: number;
  reason: string;
  /** true: no reconnect follows (terminal code, rejected session or close()). */
  terminal: boolean;
}

export interface TerminalDetail {
  code: number;
  reason: string;
}

export interface ErrorDetail {
  message: string;
  /** HTTP status of a rejected handshake, when the implementation reveals it (ws). */
  status?: number;
  /** Terminal close code that caused this error (4503, 1009). */
  code?: number;
  /** An `error` frame from the gateway that answers no pending send(): its code. */
  errorCode?: string;
  /** The message id that error frame named, if any. */
  id?: string;
  error?: unknown;
}

export interface SessionGateEventMap {
  state: StateDetail;
  welcome: WelcomeDetail;
  recovered: RecoveredDetail;
  recoveryFailed: RecoveryFailedDetail;
  event: EventDetail;
  revoked: TerminalDetail;
  expired: TerminalDetail;
  unauthorized: TerminalDetail;
  closed: ClosedDetail;
  error: ErrorDetail;
}

export type SessionGateEventName = keyof SessionGateEventMap;

export declare class SessionGateClient extends EventTarget {
  constructor(options?: SessionGateClientOptions);

  /** The ws(s) URL this client connects to. */
  readonly url: string;
  readonly state: ClientState;
  /** From the current (or last) welcome. */
  readonly connId: string | null;
  readonly userId: string | null;
  readonly instance: string | null;
  /** Id of the last event delivered; kept across reconnects. */
  readonly lastEventId: string | null;
  /** Position of the last event delivered per stream (or the welcome's); a fresh copy on every read. */
  readonly positions: Positions;
  /** Number of event frames dropped as duplicates of events already delivered. */
  readonly duplicates: number;
  /** Reconnect attempts since the last stable connection. */
  readonly attempt: number;

  /** Starts connecting; a no-op unless closed. */
  connect(): this;
  /** Closes the socket and stops all timers, reconnects and probes. */
  close(code?: number, reason?: string): void;
  /**
   * Sends `{"type":"message","id","event"?,"data"}`; resolves once the gateway
   * acked it (durably queued), rejects with a SendError otherwise. Held while
   * connecting or reconnecting and sent after the next welcome, in order.
   * `data` is any JSON value but null/undefined, serialised at the call.
   */
  send(data: unknown, options?: SendOptions): Promise<SendResult>;
  /** Adds a listener called as fn(detail, event); returns an unsubscribe function. */
  on<K extends SessionGateEventName>(
    name: K,
    fn: (detail: SessionGateEventMap[K], event: CustomEvent<SessionGateEventMap[K]>) => void,
  ): () => void;

  addEventListener<K extends SessionGateEventName>(
    type: K,
    listener: (event: CustomEvent<SessionGateEventMap[K]>) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends SessionGateEventName>(
    type: K,
    listener: (event: CustomEvent<SessionGateEventMap[K]>) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}
