// The group screens: creating a group, a group thread's members panel (add and remove for admins, leave for everyone)
// and the text of membership changes. HTTP goes through api.js; text goes in with textContent only.
import { ApiError } from './api.js';

const USER_ID = /^[A-Za-z0-9._-]{1,64}$/;
const $ = (id) => document.getElementById(id);

export const isGroupId = (id) => typeof id === 'string' && id.startsWith('grp~');

/** conversationId -> the group as GET /v1/groups answers it, or { conversationId, member: false } once we are out. */
export const groups = new Map();

let context = null; // { api(), me(), opened(conversationId), changed(conversationId) }

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** "bob, carol" -> ["bob", "carol"]: commas, semicolons or spaces between ids, each once. */
export function parseIds(text) {
  return [...new Set(text.split(/[\s,;]+/).filter(Boolean))];
}

function name(id, me, start) {
  if (id !== me) return id;
  return start ? 'You' : 'you';
}

function names(ids, me) {
  const all = ids.map((id) => name(id, me, false));
  return all.length <= 1 ? all.join('') : `${all.slice(0, -1).join(', ')} and ${all[all.length - 1]}`;
}

/** A membership change as a line of the thread: "alice added dave", "bob left", "alice removed you". */
export function systemText(m, me) {
  const actor = name(m.senderId, me, true);
  const users = names((m.system && m.system.userIds) || [], me);
  switch (m.system && m.system.action) {
    case 'created': return users ? `${actor} created the group with ${users}` : `${actor} created the group`;
    case 'added': return `${actor} added ${users}`;
    case 'removed': return `${actor} removed ${users}`;
    case 'left': return `${actor} left`;
    default: return `${actor} changed the group`;
  }
}

/** Whether we can still write to the group: our copy's participantIds (kept current by live events) say so. */
export function isMember(conversationId, conversation, me) {
  if (conversation) return conversation.participantIds.includes(me);
  const known = groups.get(conversationId);
  return !known || (known.member !== false && known.participantIds.includes(me));
}

/** Reads the group (admins, members); a 403 means we are no longer in it. */
export async function loadGroup(conversationId) {
  try {
    const group = await context.api().group(conversationId);
    groups.set(conversationId, group);
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) groups.set(conversationId, { conversationId, member: false });
    else return;
  }
  context.changed(conversationId);
}

function wait(ms) {
  return new Promise((resolve) => { setTimeout(resolve, ms); });
}

// ---------- creating a group ----------

async function createGroup(nameText, memberIds, form) {
  const error = $('newgroup-error');
  const submit = form.querySelector('button[type="submit"]');
  // One clientRequestId for every attempt of this create: a retry after a lost answer gets the same group.
  const clientRequestId = crypto.randomUUID();
  submit.disabled = true;
  error.textContent = '';
  let delay = 1000;
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const group = await context.api().createGroup(nameText, memberIds, clientRequestId);
        groups.set(group.conversationId, group);
        form.reset();
        $('newgroup').open = false;
        context.opened(group.conversationId);
        return;
      } catch (e) {
        if (!(e instanceof ApiError) || !e.transient || attempt >= 6) {
          error.textContent = `Could not create the group: ${e.message}`;
          return;
        }
        error.textContent = `Creating… (retrying: ${e.status ? `${e.status}, ` : ''}${e.message})`;
        await wait(e.retryAfterSeconds ? Math.max(e.retryAfterSeconds * 1000, 500) : delay);
        delay = Math.min(delay * 2, 8000);
      }
    }
  } finally {
    submit.disabled = false;
  }
}

function onCreateSubmit(e) {
  e.preventDefault();
  const form = e.target;
  const error = $('newgroup-error');
  const groupName = $('newgroup-name').value.trim();
  const memberIds = parseIds($('newgroup-members').value);
  const me = context.me();
  const bad = memberIds.find((id) => !USER_ID.test(id));
  if (groupName === '') {
    error.textContent = 'Give the group a name.';
    $('newgroup-name').focus();
  } else if (memberIds.length === 0) {
    error.textContent = 'Name at least one member by user id.';
    $('newgroup-members').focus();
  } else if (bad !== undefined) {
    error.textContent = `"${bad}" is not a user id (1-64 letters, digits, . _ -).`;
    $('newgroup-members').focus();
  } else if (memberIds.includes(me)) {
    error.textContent = 'You are in the group anyway: list the others only.';
    $('newgroup-members').focus();
  } else {
    createGroup(groupName, memberIds, form);
  }
}

// ---------- the members panel ----------

let panelFor = null; // the conversationId the panel shows

/**
 * A membership change, checked against the group when its answer is lost: add, remove and leave are not idempotent
 * (the retry of a change that went through is refused), so the page reads the group instead of retrying blindly.
 */
async function changeMembership(conversationId, action, done, describe) {
  const error = $('members-error');
  error.textContent = '';
  try {
    const group = await action();
    if (group) groups.set(conversationId, group);
  } catch (e) {
    if (e instanceof ApiError && e.transient) {
      await loadGroup(conversationId);
      if (done(groups.get(conversationId))) {
        context.changed(conversationId);
        return;
      }
    }
    error.textContent = `Could not ${describe}: ${e.message}`;
    return;
  }
  context.changed(conversationId);
}

function removeMember(conversationId, userId) {
  return changeMembership(conversationId, () => context.api().changeMembers(conversationId, { remove: [userId] }),
    (g) => g && g.member !== false && !g.participantIds.includes(userId), `remove ${userId}`);
}

function addMembers(conversationId, userIds) {
  return changeMembership(conversationId, () => context.api().changeMembers(conversationId, { add: userIds }),
    (g) => g && g.member !== false && userIds.every((id) => g.participantIds.includes(id)), `add ${userIds.join(', ')}`);
}

function leave(conversationId) {
  const me = context.me();
  return changeMembership(conversationId, async () => {
    const group = await context.api().leaveGroup(conversationId);
    groups.set(conversationId, { ...group, member: false });
    return null;
  }, (g) => g && g.member === false, 'leave the group');
}

/** Shows the open group's members (with remove buttons for an admin), the add form and leave; hidden otherwise. */
export function renderGroupPanel(conversationId, conversation) {
  const toggle = $('members-toggle');
  const panel = $('members-panel');
  const sub = $('thread-sub');
  if (!isGroupId(conversationId)) {
    panelFor = null;
    toggle.hidden = true;
    panel.hidden = true;
    sub.hidden = true;
    toggle.setAttribute('aria-expanded', 'false');
    return;
  }
  if (panelFor !== conversationId) {
    panelFor = conversationId;
    panel.hidden = true;
    toggle.setAttribute('aria-expanded', 'false');
    $('members-error').textContent = '';
    resetLeave();
  }
  const me = context.me();
  const group = groups.get(conversationId);
  const members = conversation ? conversation.participantIds : (group && group.participantIds) || [];
  const member = isMember(conversationId, conversation, me);
  const admins = (group && group.admins) || [];
  const admin = member && admins.includes(me);

  sub.hidden = false;
  sub.textContent = member
    ? `${members.length} ${members.length === 1 ? 'member' : 'members'}`
    : 'You are no longer a member';
  toggle.hidden = false;

  const items = [...members].sort().map((id) => {
    const li = el('li', 'member');
    li.append(el('span', 'member-name', id === me ? `${id} (you)` : id));
    if (admins.includes(id)) li.append(el('span', 'tag', 'admin'));
    if (admin && id !== me) {
      const remove = el('button', 'remove', 'Remove');
      remove.type = 'button';
      remove.setAttribute('aria-label', `Remove ${id}`);
      remove.addEventListener('click', () => removeMember(conversationId, id));
      li.append(remove);
    }
    return li;
  });
  const focused = document.activeElement && $('members').contains(document.activeElement)
    ? document.activeElement.getAttribute('aria-label') : null;
  $('members').replaceChildren(...items);
  if (focused) ($('members').querySelector(`[aria-label="${CSS.escape(focused)}"]`) || $('members-toggle')).focus();
  $('add-member-form').hidden = !admin;
  $('leave-group').hidden = !member;
}

function resetLeave() {
  const button = $('leave-group');
  delete button.dataset.confirm;
  button.textContent = 'Leave group';
}

// ---------- wiring ----------

export function wireGroupScreens(ctx) {
  context = ctx;
  $('newgroup-form').addEventListener('submit', onCreateSubmit);
  for (const id of ['newgroup-name', 'newgroup-members']) {
    $(id).addEventListener('input', () => { $('newgroup-error').textContent = ''; });
  }
  $('members-toggle').addEventListener('click', () => {
    const panel = $('members-panel');
    panel.hidden = !panel.hidden;
    $('members-toggle').setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden && panelFor) {
      if (groups.get(panelFor)?.member !== false) loadGroup(panelFor); // admins may have changed
      panel.querySelector('button, input')?.focus();
    }
  });
  $('add-member-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('add-member-user');
    const ids = parseIds(input.value);
    const bad = ids.find((id) => !USER_ID.test(id));
    if (ids.length === 0 || bad !== undefined) {
      $('members-error').textContent = `"${bad || ''}" is not a user id (1-64 letters, digits, . _ -).`;
      return;
    }
    input.value = '';
    if (panelFor) addMembers(panelFor, ids);
  });
  $('leave-group').addEventListener('click', () => {
    const button = $('leave-group');
    if (!panelFor) return;
    if (!button.dataset.confirm) {
      // Leaving cannot be undone by the leaver: ask once more, in place.
      button.dataset.confirm = '1';
      button.textContent = 'Really leave? Press again';
      return;
    }
    resetLeave();
    leave(panelFor);
  });
}
