import type { DomainEventName, DomainEvents, EventBus } from '../../infra/events.js';
import type { JobDefinition, JobQueue } from '../../infra/jobs.js';
import type { Logger } from '../../infra/logger.js';
import { renderMail } from '../../infra/mail-templates.js';
import type { AccountsService, ProfilesService } from '../users/index.js';
import type { NotificationsService } from './service.js';

export const REACT_JOB = 'notifications.react';

/** Day streaks worth a word of praise. */
export const STREAK_MILESTONES = [3, 7, 14, 30, 60, 100, 180, 365] as const;

const REPORT_OUTCOMES = {
  actioned: 'We reviewed your report and took action. Thank you for helping keep Parley safe.',
  reviewed: 'We reviewed your report. Thank you for helping keep Parley safe.',
  dismissed: 'We reviewed your report and found no breach of the rules this time.',
} as const;

/**
 * A reaction to one event. `once` is the same for every run of its job: a notice without a
 * natural key uses it as its dedupe key, so a retried job never tells the user twice.
 */
type Reactions = { [K in DomainEventName]?: (payload: DomainEvents[K], once: string) => Promise<void> };

/** Events worth a job only sometimes: the others of their kind tell nobody anything. */
const WORTH_A_JOB: { [K in DomainEventName]?: (payload: DomainEvents[K]) => boolean } = {
  'user.signed-in': ({ newDevice }) => newDevice,
  'report.created': ({ flagged }) => flagged,
};

interface ReactionDependencies {
  notifications: NotificationsService;
  accounts: AccountsService;
  profiles: ProfilesService;
}

/** What other modules' events tell users. Each runs as a job (`notifications.react`): no request waits on it, and a failure is retried. */
function reactions({ notifications, accounts, profiles }: ReactionDependencies): Reactions {
  return {
    'user.banned': async ({ userId, reason }, once) => {
      await notifications.notify(userId, 'system', {
        title: 'Your Parley account is suspended',
        body: `An administrator suspended your account. Reason: ${reason}`,
        channels: ['in_app', 'email'],
        dedupeKey: once,
      });
    },
    'user.unbanned': async ({ userId }, once) => {
      await notifications.notify(userId, 'system', {
        title: 'Your Parley account is active again',
        body: 'You can sign in and practise again.',
        dedupeKey: once,
      });
    },
    'report.resolved': async ({ reportId, reporterId, status }) => {
      await notifications.notify(reporterId, 'report_update', {
        title: 'Your report was reviewed',
        body: REPORT_OUTCOMES[status],
        data: { screen: 'reports', reportId, status },
        dedupeKey: `report:${reportId}:${status}`,
      });
    },
    'report.created': async ({ reportId, reportedId }) => {
      let afterId: string | null = null;
      for (;;) {
        const admins = await accounts.recipients({ kind: 'role', role: 'admin' }, afterId, 100);
        for (const adminId of admins) {
          await notifications.notify(adminId, 'system', {
            title: 'A user was flagged for review',
            body: 'Reports against a user reached the review threshold.',
            data: { screen: 'admin/users', userId: reportedId, reportId },
            dedupeKey: `flagged:${reportedId}:${reportId}`,
            channels: ['in_app', 'push'],
          });
        }
        if (admins.length < 100) return;
        afterId = admins[admins.length - 1]!;
      }
    },
    'call.ended': async ({ userIds }) => {
      for (const userId of userIds) {
        const streak = await profiles.practiceStreak(userId);
        if (!streak.lastDay || !STREAK_MILESTONES.some((days) => days === streak.days)) continue;
        await notifications.notify(userId, 'achievement', {
          title: `${streak.days}-day streak!`,
          body: `You have practised ${streak.days} days in a row. Keep it going!`,
          data: { screen: 'profile', streakDays: String(streak.days) },
          dedupeKey: `streak:${streak.days}:${streak.lastDay}`,
        });
      }
    },
    'password.changed': async ({ userId, at }, once) => {
      await notifications.notify(userId, 'system', {
        dedupeKey: once,
        title: 'Your password was changed',
        body: 'Every device was signed out. If it was not you, reset your password at once.',
        email: renderMail('password-changed', { at: new Date(at), signedOutEverywhere: true }),
      });
    },
    'user.signed-in': async ({ userId, platform, userAgent, ip, at }, once) => {
      const device = describeDevice(userAgent, platform);
      await notifications.notify(userId, 'system', {
        dedupeKey: once,
        title: 'New sign-in to your account',
        body: `Signed in on ${device}. If it was not you, change your password.`,
        data: { screen: 'sessions' },
        email: renderMail('new-sign-in', { device, ip, at: new Date(at) }),
      });
    },
    'course.completed': async ({ userId, courseId, courseTitle }) => {
      await notifications.notify(userId, 'achievement', {
        title: 'Course completed!',
        body: `You finished every lesson of ${courseTitle}. Well done!`,
        data: { screen: 'course', courseId },
        dedupeKey: `course-completed:${courseId}`,
      });
    },
    'lesson.video_ready': async ({ adminId, courseId, lessonId, lessonTitle, uploadId }) => {
      await notifications.notify(adminId, 'course_ready', {
        title: 'Video ready',
        body: `The video of "${lessonTitle}" is transcoded and plays now.`,
        data: { screen: 'lesson', courseId, lessonId },
        dedupeKey: `video-ready:${uploadId}`,
      });
    },
    'lesson.video_failed': async ({ adminId, courseId, lessonId, lessonTitle, uploadId }) => {
      await notifications.notify(adminId, 'system', {
        title: 'Video failed',
        body: `The video of "${lessonTitle}" could not be transcoded. Open the lesson to see why, then upload it again.`,
        data: { screen: 'lesson', courseId, lessonId },
        dedupeKey: `video-failed:${uploadId}`,
      });
    },
    'match.found': async ({ userId, roomId, partnerName }) => {
      await notifications.notify(userId, 'match_found', {
        title: 'Partner found!',
        body: `${partnerName} is ready to talk. Open Parley to join the call.`,
        data: { screen: 'call', roomId },
        dedupeKey: `match:${roomId}`,
        channels: ['push'],
      });
    },
  };
}

/** A short name for the device of a sign-in, from its User-Agent (or the app's platform). */
function describeDevice(userAgent: string | null, platform: string): string {
  const ua = userAgent ?? '';
  const browser = /Edg\//.test(ua) ? 'Edge' : /Chrome\//.test(ua) ? 'Chrome' : /Firefox\//.test(ua) ? 'Firefox' : /Safari\//.test(ua) ? 'Safari' : null;
  const system = /Android/.test(ua)
    ? 'Android'
    : /iPhone|iPad/.test(ua)
      ? 'iOS'
      : /Mac OS X/.test(ua)
        ? 'macOS'
        : /Windows/.test(ua)
          ? 'Windows'
          : /Linux/.test(ua)
            ? 'Linux'
            : null;
  if (browser && system) return `${browser} on ${system}`;
  return { ios: 'an iPhone or iPad', android: 'an Android device', web: 'a web browser' }[platform] ?? 'a new device';
}

/**
 * Subscribes to the events users hear about: each becomes a `notifications.react` job. Device
 * tokens of signed-out devices are forgotten at once, before the next push could reach them.
 */
export function subscribeToEvents(
  events: EventBus,
  dependencies: ReactionDependencies & { jobs: JobQueue; logger: Logger },
): Array<JobDefinition<{ event: DomainEventName; payload: unknown }>> {
  const { notifications, jobs, logger } = dependencies;
  const handlers = reactions(dependencies);
  for (const event of Object.keys(handlers) as DomainEventName[]) {
    // The user's action (a sign-in, a ban) has committed: a notice that cannot be queued is logged, not turned into its failure.
    const worthAJob = WORTH_A_JOB[event] as ((payload: unknown) => boolean) | undefined;
    events.on(event, async (payload) => {
      if (worthAJob && !worthAJob(payload)) return;
      await jobs.enqueue(REACT_JOB, { event, payload }).then(
        () => undefined,
        (error: unknown) => logger.error({ err: error, event }, 'could not queue the notification of an event'),
      );
    });
  }
  events.on('user.signed-out', ({ userId, deviceIds }) => notifications.forgetDevices(userId, deviceIds));
  events.on('user.banned', ({ userId }) => notifications.forgetDevices(userId, 'all'));
  events.on('password.changed', ({ userId }) => notifications.forgetDevices(userId, 'all'));
  events.on('user.deleted', ({ userId }) => notifications.eraseUser(userId));
  return [
    {
      name: REACT_JOB,
      attempts: 5,
      backoffMs: 2_000,
      concurrency: 4,
      timeoutMs: 60_000,
      handle: async ({ event, payload }, { jobId }) => {
        const handler = handlers[event] as ((payload: unknown, once: string) => Promise<void>) | undefined;
        if (handler) await handler(payload, `event:${jobId}`);
      },
    },
  ];
}
