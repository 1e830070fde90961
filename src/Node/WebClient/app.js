// The web client: sign-in, conversation list, threads, composer with retries, live events, receipts, typing.
// The group screens (create, members, membership lines) are in groups.js.
// Everything from the server or the user is put on the page with textContent (never as HTML).
import { Api, ApiError, decodeToken } from './api.js';
import {
  groups, isGroupId, isMember, loadGroup, renderGroupPanel, systemText, wireGroupScreens,
} from './groups.js';

const TOKEN_KEY = 'messaging.token';
const OUTBOX_KEY = 'messaging.outbox';
const PAGE = 50;
const TYPING_EVERY_MS = 3000;
const TYPING_SHOWN_MS = 5000; // a typing event counts for 5 s after the server got it (API.md)
const STATUS_RANK = { pending: 0, sent: 1, delivered: 2, read: 3 };
const STATUS_MARK = { pending: '\u{1F552}', sent: '\u2713', delivered: '\u2713\u2713', read: '\u2713\u2713' };

const $ = (id) => document.getElementById(id);
const phone = window.matchMedia('(max-width: 700px)');

let api = null;
let me = null;
const conversations = new Map(); // conversationId -> conversation object (API v1.1)
const activity = new Map(); // conversationId -> stamp of its last new message seen (the list's order)
const outbox = new Map(); // clientMessageId -> { body, text, peer, conversationId, state, error, createdAt }
const typing = new Map(); // conversationId -> Map(userId -> { until (local ms), since (server ms) })
const lastMessageFrom = new Map(); // conversationId -> Map(userId -> serverTimestamp of their newest message seen live)
const deliveredPosted = new Map(); // conversationId -> seq we posted deliveredUpToSeq for
let events = null;
let lastEventId = null;
let reconnectTimer = null;
let reconnectDelay = 1000;

// The open thread: a conversation (conversationId set) or a draft direct chat (only peer set).
let thread = null;
let lastTypingSent = 0;
let readInFlight = false;

// ---------- helpers ----------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function formatTime(ms) {
  const date = new Date(ms);
  const now = new Date();
  if (date.toDateString() === now.toDateString()) {
    return date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  }
  return date.toLocaleDateString(undefined, { day: 'numeric', month: 'short' });
}

function others(conversation) {
  return (conversation.participantIds || []).filter((id) => id !== me);
}

function titleOf(conversation) {
  if (conversation.kind === 'group') return conversation.name || groups.get(conversation.conversationId)?.name || 'Group';
  return others(conversation).join(', ') || me;
}

/** The open thread's title when its conversation is not in the list yet (a group just created, a draft chat). */
function threadTitle(c) {
  if (c) return titleOf(c);
  if (thread.conversationId && isGroupId(thread.conversationId)) return groups.get(thread.conversationId)?.name || 'Group';
  return thread.peer;
}

function directWith(peer) {
  for (const c of conversations.values()) {
    if (c.kind !== 'group' && c.participantIds.length === 2 && c.participantIds.includes(peer)) return c;
  }
  return null;
}

function sleep(ms) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      window.removeEventListener('online', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    window.addEventListener('online', done); // back online: try at once
  });
}

// ---------- sign-in ----------

function tokenFromAddress() {
  const hash = window.location.hash;
  if (!hash.startsWith('#')) return null;
  const params = new URLSearchParams(hash.slice(1));
  const token = params.get('token');
  if (!token) return null;
  // Out of the address bar (and history) at once; the tab's session storage keeps it.
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
  return token;
}

function signIn(token, quietly) {
  const payload = decodeToken(token.trim());
  if (!payload) {
    if (!quietly) $('signin-error').textContent = 'That is not a token (three dot-separated parts with a sub).';
    return false;
  }
  if (typeof payload.exp === 'number' && payload.exp * 1000 < Date.now()) {
    $('signin-error').textContent = 'That token has expired; make a new one.';
    return false;
  }
  sessionStorage.setItem(TOKEN_KEY, token.trim());
  start(token.trim(), payload.sub);
  return true;
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(OUTBOX_KEY);
  if (events) events.close();
  events = null;
  clearTimeout(reconnectTimer);
  api = null;
  me = null;
  conversations.clear();
  activity.clear();
  outbox.clear();
  groups.clear();
  thread = null;
  $('app').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message || '';
  $('token-input').value = '';
  $('token-input').focus();
}

async function start(token, userId) {
  api = new Api(token, userId, () => signOut('The server refused the token (expired or signed with another key).'));
  me = userId;
  $('signin').hidden = true;
  $('app').hidden = false;
  $('me').textContent = userId;
  document.title = `Messaging: ${userId}`;
  restoreOutbox();
  renderThread();
  await loadConversations();
  connectEvents();
}

// ---------- conversations ----------

async function loadConversations() {
  try {
    let offset = 0;
    for (;;) {
      const page = await api.conversations(offset, 100);
      for (const c of page.conversations) upsertConversation(c);
      if (page.conversations.length < 100) break;
      offset += 100;
    }
    for (const c of conversations.values()) {
      if (lastEventId === null || c.lastUpdatedTimestamp > lastEventId) lastEventId = c.lastUpdatedTimestamp;
      markDelivered(c);
    }
    if (lastEventId === null) lastEventId = 0; // the stream replays whatever changes after this list was read
  } catch (e) {
    setConnection(`Could not load conversations: ${e.message}`);
    if (lastEventId === null) lastEventId = 0;
  }
  renderList();
}

/** Keeps the newest copy of a conversation (an answer and an event may arrive in either order). */
function upsertConversation(c) {
  const known = conversations.get(c.conversationId);
  if (known && known.lastUpdatedTimestamp > c.lastUpdatedTimestamp) return known;
  // The list is ordered by activity: a new message moves a conversation up, a receipt (ours or theirs) does not,
  // although it advances lastUpdatedTimestamp (the API gives no time of the last message).
  activity.set(c.conversationId, !known || c.lastSeq !== known.lastSeq || c.snippet !== known.snippet
    ? c.lastUpdatedTimestamp : activity.get(c.conversationId));
  conversations.set(c.conversationId, c);
  return c;
}

function renderList() {
  const list = $('conversations');
  const focused = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.conversationId : undefined;
  const sorted = [...conversations.values()]
    .sort((a, b) => activity.get(b.conversationId) - activity.get(a.conversationId));
  const items = sorted.map((c) => {
    const li = el('li');
    const button = el('button', 'conversation');
    button.type = 'button';
    button.dataset.conversationId = c.conversationId;
    if (thread && thread.conversationId === c.conversationId) button.setAttribute('aria-current', 'true');
    const top = el('span', 'top');
    top.append(el('span', 'name', titleOf(c)), el('time', 'time', formatTime(activity.get(c.conversationId))));
    const bottom = el('span', 'bottom');
    bottom.append(el('span', 'snippet', c.snippet || ''));
    if (c.unreadCount > 0) {
      const badge = el('span', 'badge', String(c.unreadCount));
      badge.setAttribute('aria-label', `${c.unreadCount} unread`);
      bottom.append(badge);
    }
    if (c.kind === 'group') {
      const mark = el('span', 'group-mark', '# ');
      mark.setAttribute('aria-hidden', 'true');
      top.firstChild.prepend(mark);
      const count = c.participantIds.length;
      top.firstChild.after(el('span', 'member-count', `${count} ${count === 1 ? 'member' : 'members'}`));
    }
    button.append(top, bottom);
    button.addEventListener('click', () => openConversation(c.conversationId));
    li.append(button);
    return li;
  });
  list.replaceChildren(...items);
  $('list-empty').hidden = items.length > 0;
  if (focused) {
    const again = list.querySelector(`[data-conversation-id="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

function markDelivered(c) {
  if (!(c.unreadCount > 0) || c.lastSeq <= (deliveredPosted.get(c.conversationId) || 0)) return;
  deliveredPosted.set(c.conversationId, c.lastSeq);
  api.receipts(c.conversationId, { deliveredUpToSeq: c.lastSeq })
    .then((updated) => { if (updated) upsertConversation(updated); })
    .catch(() => deliveredPosted.delete(c.conversationId));
}

// ---------- thread ----------

function newThread(conversationId, peer) {
  return {
    conversationId,
    peer,
    messages: new Map(), // seq -> message
    elements: new Map(), // key -> li
    loadingOlder: false,
    exhausted: false,
  };
}

async function openConversation(conversationId) {
  const c = conversations.get(conversationId);
  const group = isGroupId(conversationId);
  thread = newThread(conversationId, c && !group ? others(c)[0] : null);
  document.body.classList.add('show-thread');
  $('messages').replaceChildren();
  renderThread();
  renderList();
  $('thread-loading').textContent = 'Loading messages…';
  const opened = thread;
  if (group) loadGroup(conversationId);
  try {
    let page;
    try {
      page = await api.thread(conversationId, { count: PAGE });
    } catch (e) {
      // A group created a moment ago may not be in this mailbox yet: its first message arrives as a live event.
      if (!(group && e instanceof ApiError && e.status === 404)) throw e;
      page = { messages: [] };
    }
    if (thread !== opened) return;
    mergeMessages(page.messages);
    thread.exhausted = page.messages.length < PAGE;
    $('thread-loading').textContent = '';
    renderThread();
    scrollToBottom();
    await catchUp();
    markRead();
  } catch (e) {
    if (thread === opened) $('thread-loading').textContent = `Could not load messages: ${e.message}`;
  }
  $('composer-text').focus();
}

function openDraft(peer) {
  const existing = directWith(peer);
  if (existing) return openConversation(existing.conversationId);
  thread = newThread(null, peer);
  document.body.classList.add('show-thread');
  $('messages').replaceChildren();
  $('thread-loading').textContent = '';
  renderThread();
  renderList();
  $('composer-text').focus();
  return undefined;
}

function mergeMessages(messages) {
  let added = false;
  for (const m of messages || []) {
    if (!thread || m.conversationId !== thread.conversationId) continue;
    const known = thread.messages.get(m.seq);
    if (!known || STATUS_RANK[m.status] > STATUS_RANK[known.status]) {
      thread.messages.set(m.seq, m);
      added = true;
    }
    if (m.senderId === me && outbox.get(m.clientMessageId)?.state === 'acked') {
      outbox.delete(m.clientMessageId);
    }
  }
  return added;
}

function newestSeq() {
  let max = 0;
  for (const seq of thread.messages.keys()) if (seq > max) max = seq;
  return max;
}

function oldestSeq() {
  let min = Infinity;
  for (const seq of thread.messages.keys()) if (seq < min) min = seq;
  return min === Infinity ? 0 : min;
}

/** Reads whatever the open thread lacks up to the conversation's lastSeq (after a resume, or an ack). */
async function catchUp() {
  const opened = thread;
  if (!opened || !opened.conversationId || opened.catchingUp) return;
  opened.catchingUp = true;
  try {
    for (;;) {
      const c = conversations.get(opened.conversationId);
      const after = newestSeq();
      if (thread !== opened || (c && c.lastSeq <= after && ![...outbox.values()].some((o) => o.state === 'acked'
        && o.conversationId === opened.conversationId))) break;
      const page = await api.thread(opened.conversationId, { count: 200, afterSeq: after });
      if (thread !== opened) break;
      const wasAtBottom = nearBottom();
      mergeMessages(page.messages);
      renderThread();
      if (wasAtBottom) scrollToBottom();
      if (page.messages.length === 0) break;
    }
  } catch {
    // the next event or ack tries again
  } finally {
    opened.catchingUp = false;
  }
}

async function loadOlder() {
  const opened = thread;
  if (!opened || !opened.conversationId || opened.loadingOlder || opened.exhausted) return;
  const before = oldestSeq();
  if (before <= 1) {
    opened.exhausted = before === 1;
    if (opened.exhausted) return;
  }
  opened.loadingOlder = true;
  $('thread-loading').textContent = 'Loading older messages…';
  try {
    const page = await api.thread(opened.conversationId, before > 0 ? { count: PAGE, beforeSeq: before } : { count: PAGE });
    if (thread !== opened) return;
    const list = $('messages');
    const heightBefore = list.scrollHeight;
    const topBefore = list.scrollTop;
    mergeMessages(page.messages);
    opened.exhausted = page.messages.length < PAGE || oldestSeq() <= 1;
    renderThread();
    list.scrollTop = topBefore + (list.scrollHeight - heightBefore); // keep the reader's place
    $('thread-loading').textContent = '';
  } catch (e) {
    $('thread-loading').textContent = `Could not load older messages: ${e.message}`;
  } finally {
    opened.loadingOlder = false;
  }
}

function nearBottom() {
  const list = $('messages');
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}

function scrollToBottom() {
  const list = $('messages');
  list.scrollTop = list.scrollHeight;
}

function statusOf(m, c) {
  // A group message's status counts the members it went to, which the page cannot tell from the receipts it is
  // given: it takes the server's (refreshed by refreshGroupStatuses).
  let status = m.status || 'sent';
  if (c && c.receipts && c.kind !== 'group') {
    const receipts = others(c).map((id) => c.receipts[id] || { deliveredUpTo: 0, readUpTo: 0 });
    if (receipts.length > 0) {
      let fromReceipts = 'sent';
      if (receipts.every((r) => r.readUpTo >= m.serverTimestamp)) fromReceipts = 'read';
      else if (receipts.every((r) => r.deliveredUpTo >= m.serverTimestamp)) fromReceipts = 'delivered';
      if (STATUS_RANK[fromReceipts] > STATUS_RANK[status]) status = fromReceipts;
    }
  }
  return status;
}

function pendingForThread() {
  if (!thread) return [];
  const stored = new Set([...thread.messages.values()].filter((m) => m.senderId === me).map((m) => m.clientMessageId));
  const c = thread.conversationId ? conversations.get(thread.conversationId) : null;
  return [...outbox.entries()]
    .filter(([id, o]) => !stored.has(id) && (
      (thread.conversationId && o.conversationId === thread.conversationId)
      || (!o.conversationId && thread.peer && o.peer === thread.peer && (!c || c.kind !== 'group'))))
    .sort((a, b) => a[1].createdAt - b[1].createdAt);
}

function renderStatus(container, status, detail) {
  const span = el('span', 'status');
  span.dataset.status = status;
  const mark = el('span', 'mark', STATUS_MARK[status] || '');
  mark.setAttribute('aria-hidden', 'true');
  span.append(mark, el('span', status === 'pending' || status === 'failed' ? 'state' : 'sr-only', detail || status));
  container.replaceChildren(span);
}

function systemElement(key, m) {
  const li = el('li', 'system');
  li.dataset.key = key;
  li.append(el('span', 'system-text', systemText(m, me)));
  return li;
}

function messageElement(key, text, senderId, group) {
  const li = el('li', `message ${senderId === me ? 'own' : 'theirs'}`);
  li.dataset.key = key;
  if (group && senderId !== me) li.append(el('span', 'sender', senderId));
  else li.append(el('span', 'sr-only', senderId === me ? 'You: ' : `${senderId}: `));
  li.append(el('p', 'text', text));
  const meta = el('span', 'meta');
  meta.append(el('time', 'time'), el('span', 'status-slot'));
  li.append(meta);
  return li;
}

function renderThread() {
  const composer = $('composer');
  const title = $('thread-title');
  if (!thread) {
    title.textContent = 'Pick a conversation';
    composer.hidden = true;
    $('composer-note').hidden = true;
    renderGroupPanel(null, null);
    $('typing').textContent = '';
    return;
  }
  const c = thread.conversationId ? conversations.get(thread.conversationId) : null;
  title.textContent = threadTitle(c);
  const group = isGroupId(thread.conversationId);
  renderGroupPanel(thread.conversationId, c);
  renderComposer(group && !isMember(thread.conversationId, c, me));
  const list = $('messages');
  const ordered = [];

  for (const m of [...thread.messages.values()].sort((a, b) => a.seq - b.seq)) {
    if (m.system) {
      let line = thread.elements.get(`s:${m.seq}`);
      if (!line) {
        line = systemElement(`s:${m.seq}`, m);
        line.dataset.seq = String(m.seq);
        thread.elements.set(`s:${m.seq}`, line);
      }
      ordered.push(line);
      continue;
    }
    const pendingKey = `p:${m.clientMessageId}`;
    let li = thread.elements.get(`s:${m.seq}`);
    if (!li && m.senderId === me && thread.elements.has(pendingKey)) {
      li = thread.elements.get(pendingKey); // the pending bubble becomes the stored message (no re-announcement)
      thread.elements.delete(pendingKey);
    }
    if (!li) li = messageElement(`s:${m.seq}`, m.message, m.senderId, group);
    li.dataset.key = `s:${m.seq}`;
    li.dataset.seq = String(m.seq);
    li.dataset.clientMessageId = m.clientMessageId;
    li.classList.remove('pending', 'failed');
    thread.elements.set(`s:${m.seq}`, li);
    const time = li.querySelector('.meta time');
    time.textContent = formatTime(m.serverTimestamp);
    time.dateTime = new Date(m.serverTimestamp).toISOString();
    if (m.senderId === me) renderStatus(li.querySelector('.status-slot'), statusOf(m, c));
    ordered.push(li);
  }
  for (const [id, o] of pendingForThread()) {
    const key = `p:${id}`;
    let li = thread.elements.get(key);
    if (!li) {
      li = messageElement(key, o.text, me, group);
      thread.elements.set(key, li);
    }
    li.dataset.clientMessageId = id;
    li.classList.toggle('pending', o.state === 'pending');
    li.classList.toggle('failed', o.state === 'failed');
    const slot = li.querySelector('.status-slot');
    if (o.state === 'acked') {
      renderStatus(slot, 'sent');
    } else if (o.state === 'failed') {
      renderStatus(slot, 'failed', `Not sent: ${o.error}`);
      const retry = el('button', 'retry', 'Retry');
      retry.type = 'button';
      retry.addEventListener('click', () => { o.state = 'pending'; o.error = null; renderThread(); deliver(id); });
      slot.append(retry);
    } else {
      renderStatus(slot, 'pending', o.error ? `Sending… (retrying: ${o.error})` : 'Sending…');
    }
    ordered.push(li);
  }

  const keep = new Set(ordered);
  for (const child of [...list.children]) if (!keep.has(child)) child.remove();
  ordered.forEach((li, i) => {
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  renderTyping();
}

/** The composer, or in a group we are no longer in, a note saying why there is none to use. */
function renderComposer(outOfGroup) {
  const composer = $('composer');
  const note = $('composer-note');
  composer.hidden = false;
  const box = $('composer-text');
  const wasFocused = document.activeElement === box;
  box.disabled = outOfGroup;
  composer.querySelector('button[type="submit"]').disabled = outOfGroup;
  note.hidden = !outOfGroup;
  note.textContent = outOfGroup ? 'You can no longer send messages to this group: you are not a member.' : '';
  if (outOfGroup && wasFocused) $('messages').focus();
}

let statusRefresh = null; // the open group thread's refresh in flight, and whether another is wanted

/** Re-reads the open group thread from its oldest own message not yet read, for the statuses the server computes. */
async function refreshGroupStatuses() {
  const opened = thread;
  if (!opened || !isGroupId(opened.conversationId)) return;
  if (statusRefresh && statusRefresh.thread === opened) {
    statusRefresh.again = true;
    return;
  }
  statusRefresh = { thread: opened, again: false };
  try {
    do {
      statusRefresh.again = false;
      const waiting = [...opened.messages.values()]
        .filter((m) => m.senderId === me && !m.system && m.status !== 'read').map((m) => m.seq);
      if (waiting.length === 0) break;
      let after = Math.min(...waiting) - 1;
      for (;;) {
        const page = await api.thread(opened.conversationId, { count: 200, afterSeq: after });
        if (thread !== opened) return;
        mergeMessages(page.messages);
        if (page.messages.length < 200) break;
        after = page.messages[page.messages.length - 1].seq;
      }
      renderThread();
    } while (statusRefresh.again);
  } catch {
    // the next event tries again
  } finally {
    if (statusRefresh && statusRefresh.thread === opened) statusRefresh = null;
  }
}

function isThreadVisible() {
  return !!thread && document.visibilityState === 'visible'
    && (!phone.matches || document.body.classList.contains('show-thread'));
}

async function markRead() {
  if (!isThreadVisible() || !thread.conversationId || readInFlight) return;
  const c = conversations.get(thread.conversationId);
  const upTo = newestSeq();
  if (!c || upTo <= (c.readUpToSeq || 0)) return;
  readInFlight = true;
  try {
    const updated = await api.receipts(c.conversationId, { readUpToSeq: upTo });
    if (updated) upsertConversation(updated);
    renderList();
  } catch {
    // tried again on the next message, focus or visibility change
  } finally {
    readInFlight = false;
  }
  const now = conversations.get(c.conversationId);
  if (now && thread && thread.conversationId === now.conversationId && newestSeq() > (now.readUpToSeq || 0)) markRead();
}

// ---------- typing ----------

function renderTyping() {
  const line = $('typing');
  if (!thread || !thread.conversationId) {
    line.textContent = '';
    return;
  }
  const now = Date.now();
  const who = [...(typing.get(thread.conversationId) || new Map()).entries()]
    .filter(([, t]) => t.until > now).map(([userId]) => userId);
  line.textContent = who.length === 0 ? '' : `${who.join(', ')} ${who.length === 1 ? 'is' : 'are'} typing…`;
}

function onTyping(data) {
  if (!data || data.userId === me) return;
  // A typing event that reaches us after the message it led to (the two travel apart) is over already: shown, it
  // would say "typing…" for five seconds after they sent.
  const sentAt = lastMessageFrom.get(data.conversationId)?.get(data.userId);
  if (sentAt !== undefined && sentAt >= data.until - TYPING_SHOWN_MS) return;
  // Shown until the server's `until`, bounded so a skewed clock can neither hide it nor keep it forever.
  const ms = Math.min(Math.max(data.until - Date.now(), 500), 6000);
  const perConversation = typing.get(data.conversationId) || new Map();
  perConversation.set(data.userId, { until: Date.now() + ms, since: data.until - TYPING_SHOWN_MS });
  typing.set(data.conversationId, perConversation);
  renderTyping();
  setTimeout(renderTyping, ms + 50);
}

function sendTyping() {
  if (!thread || !thread.conversationId) return;
  const now = Date.now();
  if (now - lastTypingSent < TYPING_EVERY_MS) return;
  lastTypingSent = now;
  api.typing(thread.conversationId).catch(() => {});
}

// ---------- sending ----------

function saveOutbox() {
  const waiting = [...outbox.entries()].filter(([, o]) => o.state !== 'acked');
  sessionStorage.setItem(OUTBOX_KEY, JSON.stringify(waiting));
}

function restoreOutbox() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(OUTBOX_KEY) || '[]');
    for (const [id, o] of saved) {
      outbox.set(id, o);
      if (o.state === 'pending') deliver(id); // the same clientMessageId: stored once however often it is sent
    }
  } catch {
    sessionStorage.removeItem(OUTBOX_KEY);
  }
}

function compose(text) {
  if (!thread || text.trim() === '') return;
  const clientMessageId = crypto.randomUUID();
  const group = isGroupId(thread.conversationId);
  const body = group
    ? { conversationId: thread.conversationId, message: text, clientMessageId }
    : { recipientIds: [thread.peer], message: text, clientMessageId };
  outbox.set(clientMessageId, {
    body, text, peer: group ? null : thread.peer, conversationId: thread.conversationId,
    state: 'pending', error: null, createdAt: Date.now(),
  });
  saveOutbox();
  lastTypingSent = 0; // others drop our typing when this message reaches them: the next keystroke says it again
  renderThread();
  scrollToBottom();
  deliver(clientMessageId);
}

/** Sends until the server acknowledges (Sent, Accepted, Duplicate), always with the same body and clientMessageId. */
async function deliver(clientMessageId) {
  let delay = 1000;
  for (;;) {
    const entry = outbox.get(clientMessageId);
    if (!entry || entry.state !== 'pending' || !api) return;
    try {
      const ack = await api.send(entry.body);
      entry.state = 'acked';
      entry.conversationId = ack.conversationId;
      entry.ack = ack;
      saveOutbox();
      onAck(entry);
      return;
    } catch (e) {
      if (!(e instanceof ApiError) || !e.transient) {
        entry.state = 'failed';
        entry.error = e.message;
        saveOutbox();
        renderThread();
        return;
      }
      entry.error = e.status ? `${e.status}, ${e.message}` : e.message;
      renderThread();
      await sleep(e.retryAfterSeconds ? Math.max(e.retryAfterSeconds * 1000, 500) : delay);
      delay = Math.min(delay * 2, 15000);
    }
  }
}

function onAck(entry) {
  if (thread && [...thread.messages.values()].some((m) => m.senderId === me && m.clientMessageId === entry.body.clientMessageId)) {
    outbox.delete(entry.body.clientMessageId); // already shown as stored (the live stream was first)
  }
  if (thread && !thread.conversationId && thread.peer && entry.peer === thread.peer) {
    // The first message of a new chat: the conversation now exists; the thread becomes it.
    thread.conversationId = entry.conversationId;
    if (!conversations.has(entry.conversationId)) {
      loadConversations().then(() => { renderThread(); catchUp(); });
    }
  }
  renderThread();
  if (thread && thread.conversationId === entry.conversationId) catchUp();
  else outbox.delete(entry.body.clientMessageId); // not on screen: nothing left to show for it
}

// ---------- live events ----------

function setConnection(text) {
  $('connection').textContent = text;
}

function connectEvents() {
  clearTimeout(reconnectTimer);
  if (events) events.close();
  const source = new EventSource(api.eventsUrl(lastEventId));
  events = source;
  source.addEventListener('open', () => {
    reconnectDelay = 1000;
    setConnection('Live');
  });
  source.addEventListener('conversation', (e) => {
    if (e.lastEventId) lastEventId = e.lastEventId;
    onConversationEvent(JSON.parse(e.data));
  });
  source.addEventListener('typing', (e) => onTyping(JSON.parse(e.data)));
  source.addEventListener('error', () => {
    if (events !== source) return;
    if (source.readyState === EventSource.CLOSED) {
      // Refused (429, 503, ...): the browser gives up, so reconnect here, resuming with the last id processed.
      setConnection('Offline, reconnecting…');
      reconnectTimer = setTimeout(() => { if (api) connectEvents(); }, reconnectDelay);
      reconnectDelay = Math.min(reconnectDelay * 2, 30000);
    } else {
      setConnection('Reconnecting…'); // the browser reconnects itself, sending Last-Event-ID
    }
  });
}

function onConversationEvent(data) {
  if (!data || !data.conversation) return;
  const c = upsertConversation(data.conversation);
  const typers = typing.get(c.conversationId);
  const from = lastMessageFrom.get(c.conversationId) || new Map();
  for (const m of data.messages || []) {
    // Their message ends what they were typing before it, not what they started after it (events race).
    if (typers && typers.get(m.senderId)?.since <= m.serverTimestamp) typers.delete(m.senderId);
    from.set(m.senderId, Math.max(from.get(m.senderId) ?? 0, m.serverTimestamp));
  }
  lastMessageFrom.set(c.conversationId, from);
  if (thread && !thread.conversationId && thread.peer && c.kind !== 'group'
      && c.participantIds.length === 2 && c.participantIds.includes(thread.peer)) {
    thread.conversationId = c.conversationId; // a draft chat that now exists (sent from here or another tab)
  }
  if (thread && thread.conversationId === c.conversationId) {
    const wasAtBottom = nearBottom();
    mergeMessages(data.messages);
    renderThread();
    if (wasAtBottom) scrollToBottom();
    if (c.lastSeq > newestSeq()) catchUp().then(markRead);
    else markRead();
    if (!isThreadVisible()) markDelivered(c);
    if (c.kind === 'group') {
      // Admins may change with membership (the last admin leaving hands it on); statuses change with receipts.
      if ((data.messages || []).some((m) => m.system) && c.participantIds.includes(me)) loadGroup(c.conversationId);
      refreshGroupStatuses();
    }
  } else {
    markDelivered(c);
  }
  renderList();
}

// ---------- wiring ----------

function wire() {
  wireGroupScreens({
    api: () => api,
    me: () => me,
    opened: (conversationId) => openConversation(conversationId),
    changed: (conversationId) => { if (thread && thread.conversationId === conversationId) renderThread(); renderList(); },
  });
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    signIn($('token-input').value, false);
  });
  $('signout').addEventListener('click', () => signOut());
  $('newchat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('newchat-user');
    const peer = input.value.trim();
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(peer) || peer === me) {
      input.setCustomValidity(peer === me ? 'That is you: pick someone else.' : 'A user id: 1-64 letters, digits, . _ -');
      input.reportValidity();
      return;
    }
    input.value = '';
    openDraft(peer);
  });
  $('newchat-user').addEventListener('input', (e) => e.target.setCustomValidity(''));
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const box = $('composer-text');
    compose(box.value);
    box.value = '';
    box.focus();
  });
  $('composer-text').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $('composer').requestSubmit();
    }
  });
  $('composer-text').addEventListener('input', sendTyping);
  $('messages').addEventListener('scroll', () => {
    if ($('messages').scrollTop < 60) loadOlder();
  });
  $('back').addEventListener('click', () => {
    document.body.classList.remove('show-thread');
    const current = thread && thread.conversationId;
    thread = null;
    renderThread();
    renderList();
    const button = current && document.querySelector(`[data-conversation-id="${CSS.escape(current)}"]`);
    if (button) button.focus();
  });
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') markRead(); });
  window.addEventListener('focus', markRead);
  window.addEventListener('hashchange', () => {
    const token = tokenFromAddress();
    if (token && decodeToken(token)) {
      // Another user's link in this tab: start over as them.
      sessionStorage.setItem(TOKEN_KEY, token);
      sessionStorage.removeItem(OUTBOX_KEY);
      window.location.reload();
    }
  });
  window.addEventListener('online', () => { if (api && (!events || events.readyState === EventSource.CLOSED)) connectEvents(); });
}

wire();
const fromLink = tokenFromAddress();
const saved = fromLink || sessionStorage.getItem(TOKEN_KEY);
if (!saved || !signIn(saved, !fromLink)) {
  if (saved && !fromLink) sessionStorage.removeItem(TOKEN_KEY);
  $('signin').hidden = false;
}
