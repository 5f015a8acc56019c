import { CHANNELS, NOTIFICATION_TYPES, type Channel, type NotificationType } from './entities.js';

export type ChannelSwitches = Record<Channel, boolean>;
export type ChannelPreferences = Record<NotificationType, ChannelSwitches>;
export type ChannelOverrides = Partial<Record<NotificationType, Partial<ChannelSwitches>>>;

/** Push waits while the user's local clock is in [start, end); the window may cross midnight. */
export interface QuietHours {
  /** 'HH:MM' */
  start: string;
  end: string;
  /** IANA time zone, e.g. Europe/Berlin. */
  timeZone: string;
}

export interface Preferences {
  channels: ChannelPreferences;
  quietHours: QuietHours | null;
}

/**
 * What a user gets without choosing: every type in the inbox and as a push; e-mail only for
 * what concerns the account or money (system, payment_success).
 */
export const DEFAULT_CHANNELS: ChannelPreferences = {
  match_found: { push: true, in_app: true, email: false },
  payment_success: { push: true, in_app: true, email: true },
  system: { push: true, in_app: true, email: true },
  achievement: { push: true, in_app: true, email: false },
  report_update: { push: true, in_app: true, email: false },
  course_ready: { push: true, in_app: true, email: false },
};

/** Notices about the account itself (a ban, a password change, a new sign-in) reach the user on every channel. */
export const LOCKED_TYPES: readonly NotificationType[] = ['system'];

export function resolveChannels(overrides: ChannelOverrides | null | undefined): ChannelPreferences {
  const resolved = {} as ChannelPreferences;
  for (const type of NOTIFICATION_TYPES) {
    const chosen = LOCKED_TYPES.includes(type) ? {} : (overrides?.[type] ?? {});
    resolved[type] = Object.fromEntries(CHANNELS.map((channel) => [channel, chosen[channel] ?? DEFAULT_CHANNELS[type][channel]])) as ChannelSwitches;
  }
  return resolved;
}

/** The stored overrides after applying `change` (a later choice wins per type and channel). */
export function mergeOverrides(current: ChannelOverrides | null | undefined, change: ChannelOverrides): ChannelOverrides {
  const merged: ChannelOverrides = { ...current };
  for (const type of NOTIFICATION_TYPES) {
    if (change[type]) merged[type] = { ...current?.[type], ...change[type] };
  }
  return merged;
}

/** True when `timeZone` is an IANA zone this runtime knows. */
export function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone });
    return true;
  } catch {
    return false;
  }
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

function localClock(at: Date, timeZone: string): { minutes: number; seconds: number } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', { timeZone, hourCycle: 'h23', hour: '2-digit', minute: '2-digit', second: '2-digit' })
      .formatToParts(at)
      .map((part) => [part.type, Number(part.value)]),
  ) as { hour: number; minute: number; second: number };
  return { minutes: parts.hour * 60 + parts.minute, seconds: parts.second };
}

/**
 * How long from `now` until the quiet window ends (the next time the local clock reads
 * `end`); 0 outside the window. A clock change during the night is accounted for: the push
 * waits for the local `end`, not for as many hours as the clock showed.
 */
export function quietDelayMs(now: Date, quiet: QuietHours | null): number {
  if (!quiet) return 0;
  const clock = localClock(now, quiet.timeZone);
  const start = minutesOf(quiet.start);
  const end = minutesOf(quiet.end);
  const isInside = (minutes: number) => (start < end ? minutes >= start && minutes < end : minutes >= start || minutes < end);
  if (!isInside(clock.minutes)) return 0;
  const wallClockMs = (((end - clock.minutes + 1440) % 1440) * 60 - clock.seconds) * 1000 - now.getUTCMilliseconds();
  // After a DST change the instant `wallClockMs` ahead shows another local time: shift by the difference.
  const landed = localClock(new Date(now.getTime() + wallClockMs), quiet.timeZone).minutes;
  const shiftMinutes = ((end - landed + 720 + 1440) % 1440) - 720;
  let target = now.getTime() + wallClockMs + shiftMinutes * 60_000;
  // An end the clocks skip that night (02:30 when 02:00 jumps to 03:00): the first minute past the window.
  for (let minutes = 0; minutes < 180 && isInside(localClock(new Date(target), quiet.timeZone).minutes); minutes += 1) target += 60_000;
  return Math.max(0, target - now.getTime());
}
