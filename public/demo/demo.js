// Parley demo client: the whole flow a mobile or web client implements, in plain JavaScript.
// State is mirrored on <body data-state> and window.parley for automated tests.
(() => {
  const $ = (id) => document.getElementById(id);
  // token: a bearer access token (password sign-in); csrf: the CSRF token of a GitHub sign-in's session cookie
  const parley = (window.parley = { token: null, csrf: null, user: null, socket: null, pc: null, roomId: null, role: null, pendingCandidates: [] });

  function log(message) {
    const item = document.createElement('li');
    item.textContent = `${new Date().toISOString().slice(11, 19)} ${message}`;
    $('log').append(item);
  }
  function setState(state) {
    document.body.dataset.state = state;
    log(`state: ${state}`);
  }

  async function api(method, path, body) {
    const response = await fetch(path, {
      method,
      headers: {
        'content-type': 'application/json',
        ...(parley.token ? { authorization: `Bearer ${parley.token}` } : {}),
        // the session cookie goes by itself; its writes carry the CSRF token
        ...(!parley.token && parley.csrf && method !== 'GET' ? { 'x-csrf-token': parley.csrf } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = response.status === 204 ? null : await response.json();
    if (!response.ok) throw new Error(`${data?.error?.code ?? response.status}: ${data?.error?.message ?? ''}`);
    return data;
  }

  async function signIn(path) {
    const credentials = {
      email: $('email').value,
      password: $('password').value,
      deviceId: `demo-${navigator.userAgent.length}-${Math.random().toString(16).slice(2, 8)}`,
      platform: 'web',
    };
    try {
      const pair = await api('POST', path, credentials);
      parley.token = pair.accessToken;
      showUser(pair.user);
      setState('signed-in');
      connectSocket();
    } catch (error) {
      log(`sign-in failed: ${error.message}`);
    }
  }

  function showUser(user) {
    parley.user = user;
    $('signed-in-as').textContent = user.email;
  }

  // GitHub sign-in comes back here with the session cookie set (or ?error=<code>)
  async function resumeBrowserSession() {
    const error = new window.URLSearchParams(window.location.search).get('error');
    if (error) log(`GitHub sign-in failed: ${error}`);
    const providers = await api('GET', '/auth/providers');
    $('github').hidden = !providers.github;
    try {
      const { user, csrfToken } = await api('GET', '/auth/user');
      parley.csrf = csrfToken;
      showUser(user);
      setState('signed-in');
      log('signed in by the session cookie (matching needs a password sign-in: sockets take a bearer token)');
    } catch {
      // not signed in by cookie: the forms are there
    }
  }

  function connectSocket() {
    const socket = (parley.socket = io({ auth: { token: parley.token }, transports: ['websocket'] }));
    socket.on('connect', () => log('socket connected'));
    socket.on('connect_error', (error) => log(`socket refused: ${error.data?.code ?? error.message}`));
    socket.on('error', (error) => log(`error: ${error.code} ${error.message}`));
    socket.on('searching', ({ estimated_wait_seconds }) => {
      setState('searching');
      log(`searching, about ${estimated_wait_seconds} s`);
    });
    socket.on('search_timeout', () => setState('signed-in'));
    socket.on('match_found', onMatch);
    socket.on('peer_joined', onPeerJoined);
    socket.on('webrtc_offer', onOffer);
    socket.on('webrtc_answer', async ({ sdp }) => {
      await parley.pc.setRemoteDescription({ type: 'answer', sdp });
      await flushCandidates();
    });
    socket.on('webrtc_ice', async ({ candidate }) => {
      if (parley.pc?.remoteDescription) await parley.pc.addIceCandidate(candidate);
      else parley.pendingCandidates.push(candidate);
    });
    socket.on('peer_left', ({ reason }) => {
      log(`partner left (${reason})`);
      hangUp('ended');
    });
  }

  async function flushCandidates() {
    for (const candidate of parley.pendingCandidates.splice(0)) await parley.pc.addIceCandidate(candidate);
  }

  async function onMatch({ roomId, partner, iceServers }) {
    parley.roomId = roomId;
    $('partner').textContent = `${partner.displayName} (${partner.level ?? 'any level'})`;
    setState('matched');
    const pc = (parley.pc = new RTCPeerConnection({ iceServers }));
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
    pc.onicecandidate = ({ candidate }) => candidate && parley.socket.emit('webrtc_ice', { roomId, candidate: candidate.toJSON() });
    pc.ontrack = ({ streams }) => ($('remote-audio').srcObject = streams[0]);
    pc.onconnectionstatechange = () => {
      log(`connection: ${pc.connectionState}`);
      if (pc.connectionState === 'connected') setState('in-call');
    };
    parley.socket.emit('join_room', { roomId });
  }

  async function onPeerJoined({ yourRole }) {
    parley.role = yourRole;
    log(`peer_joined: I am the ${yourRole}`);
    // the caller offers once both are in the room
    if (yourRole === 'caller' && parley.pc && document.body.dataset.state === 'matched' && parley.peerPresent) {
      const offer = await parley.pc.createOffer();
      await parley.pc.setLocalDescription(offer);
      parley.socket.emit('webrtc_offer', { roomId: parley.roomId, sdp: offer.sdp });
    }
    parley.peerPresent = true;
  }

  async function onOffer({ sdp }) {
    await parley.pc.setRemoteDescription({ type: 'offer', sdp });
    await flushCandidates();
    const answer = await parley.pc.createAnswer();
    await parley.pc.setLocalDescription(answer);
    parley.socket.emit('webrtc_answer', { roomId: parley.roomId, sdp: answer.sdp });
  }

  function hangUp(state) {
    parley.pc?.close();
    parley.pc = null;
    parley.peerPresent = false;
    setState(state);
  }

  $('sign-in').addEventListener('submit', (event) => {
    event.preventDefault();
    void signIn('/auth/login');
  });
  $('register').addEventListener('click', () => void signIn('/auth/register'));
  $('github').addEventListener('click', () => {
    const returnTo = `${window.location.origin}/demo`;
    window.location.href = `/auth/login?redirect=true&returnTo=${encodeURIComponent(returnTo)}`;
  });
  void resumeBrowserSession();
  $('level-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const me = await api('GET', '/users/me');
      await api('PATCH', '/users/me', { version: me.profile.version, username: $('username').value, englishLevel: $('level').value });
      setState('ready');
    } catch (error) {
      log(`profile: ${error.message}`);
    }
  });
  $('find').addEventListener('click', () => parley.socket.emit('find_partner', { level: 'all' }));
  $('cancel').addEventListener('click', () => parley.socket.emit('cancel_search'));
  $('end').addEventListener('click', () => {
    if (parley.roomId) parley.socket.emit('end_call', { roomId: parley.roomId });
    hangUp('ended');
  });
})();
