// The pages e-mail links open when no front end of your own is configured. The token travels
// in the link; the page sends it with a POST only when the user acts, so a mail scanner that
// prefetches the link does not use it up.
'use strict';

const page = document.body.dataset.page;
const token = new window.URLSearchParams(window.location.search).get('token');
const outcome = document.getElementById('outcome');

function show(state, message) {
  document.body.dataset.state = state;
  outcome.textContent = message;
}

async function post(path, body) {
  const response = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (response.ok) return null;
  const payload = await response.json().catch(() => null);
  return payload?.error?.message ?? `The server answered ${response.status}`;
}

function forget() {
  // the token is spent (or useless): keep it out of the history and of bookmarks
  window.history.replaceState(null, '', window.location.pathname);
}

const actions = {
  'reset-password': {
    form: 'reset-form',
    async submit() {
      const newPassword = document.getElementById('new-password').value;
      if (newPassword !== document.getElementById('repeat-password').value) return show('failed', 'The two passwords differ.');
      const error = await post('/auth/reset-password', { token, newPassword });
      if (error) return show('failed', error);
      forget();
      show('done', 'Your password has been changed. Sign in with it in the app.');
    },
  },
  'verify-email': {
    form: 'verify-form',
    async submit() {
      const error = await post('/auth/verify-email', { token });
      if (error) return show('failed', error);
      forget();
      show('done', 'Your e-mail address is confirmed. You can close this page.');
    },
  },
};

const action = actions[page];
if (!token) {
  show('no-token', 'This link is incomplete: open the link from the e-mail again.');
} else {
  const form = document.getElementById(action.form);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = document.getElementById('submit');
    button.disabled = true;
    show('working', '');
    try {
      await action.submit();
    } catch {
      show('failed', 'The server could not be reached. Try again.');
    } finally {
      button.disabled = false;
    }
  });
}
