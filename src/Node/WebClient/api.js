// The public HTTP API (API.md v1/v1.1), nothing else. Every call carries the Bearer token, except the live events
// stream, which a browser's EventSource can only authenticate with ?access_token= (that route only).

const REQUEST_TIMEOUT_MS = 10000;

/** The JWT's payload, unverified (the server verifies it): the page needs `sub` (the user id) and `exp`. */
export function decodeToken(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const base64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof payload.sub !== 'string' || payload.sub === '') return null;
    return payload;
  } catch {
    return null;
  }
}

/** A failed call: `status` is the HTTP code (0 when the network failed or the call timed out). */
export class ApiError extends Error {
  constructor(status, detail, retryAfterSeconds) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /** Worth trying again with the same request: offline, timeout, 429, 5xx. */
  get transient() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

export class Api {
  constructor(token, userId, onUnauthorized) {
    this.token = token;
    this.userId = userId;
    this.onUnauthorized = onUnauthorized;
  }

  user() {
    return `/v1/users/${encodeURIComponent(this.userId)}`;
  }

  async call(method, path, body) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: {
          Authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, e && e.name === 'TimeoutError' ? 'the server did not answer in time' : 'offline or unreachable');
    }
    if (response.status === 204) return null;
    const text = await response.text().catch(() => '');
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!response.ok) {
      if (response.status === 401) this.onUnauthorized();
      const retryAfter = Number(response.headers.get('Retry-After'));
      throw new ApiError(response.status, json && json.detail, Number.isFinite(retryAfter) ? retryAfter : undefined);
    }
    return json;
  }

  conversations(offset = 0, count = 100) {
    return this.call('GET', `${this.user()}/conversations?offset=${offset}&count=${count}`);
  }

  thread(conversationId, { count = 50, beforeSeq, afterSeq } = {}) {
    const query = new URLSearchParams({ count: String(count) });
    if (beforeSeq !== undefined) query.set('beforeSeq', String(beforeSeq));
    if (afterSeq !== undefined) query.set('afterSeq', String(afterSeq));
    return this.call('GET', `${this.user()}/conversations/${encodeURIComponent(conversationId)}/messages?${query}`);
  }

  /** body: { recipientIds: [id] } or { conversationId } (a group), plus message and clientMessageId. */
  send(body) {
    return this.call('POST', '/v1/messages', body);
  }

  receipts(conversationId, markers) {
    return this.call('POST', `${this.user()}/conversations/${encodeURIComponent(conversationId)}/receipts`, markers);
  }

  typing(conversationId) {
    return this.call('POST', `${this.user()}/conversations/${encodeURIComponent(conversationId)}/typing`);
  }

  /** POST /v1/groups: idempotent per clientRequestId (a retry answers the same group). */
  createGroup(name, memberIds, clientRequestId) {
    return this.call('POST', '/v1/groups', { name, memberIds, clientRequestId });
  }

  group(conversationId) {
    return this.call('GET', `/v1/groups/${encodeURIComponent(conversationId)}`);
  }

  /** change: { add: [ids] } or { remove: [ids] } (admins only). */
  changeMembers(conversationId, change) {
    return this.call('POST', `/v1/groups/${encodeURIComponent(conversationId)}/members`, change);
  }

  leaveGroup(conversationId) {
    return this.call('POST', `/v1/groups/${encodeURIComponent(conversationId)}/leave`);
  }

  eventsUrl(lastEventId) {
    const query = new URLSearchParams({ access_token: this.token });
    if (lastEventId) query.set('lastEventId', String(lastEventId));
    return `${this.user()}/events?${query}`;
  }
}
