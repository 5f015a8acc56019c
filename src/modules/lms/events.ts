/** What the LMS module tells other modules; published after the change is committed. */
declare module '../../infra/events.js' {
  interface DomainEvents {
    /** A student completed the last lesson of a course. */
    'course.completed': { userId: string; courseId: string; courseTitle: string };
    /** A lesson's uploaded video is transcoded and plays; `adminId` uploaded it. */
    'lesson.video_ready': { lessonId: string; uploadId: string; courseId: string; lessonTitle: string; adminId: string };
    /** A lesson's uploaded video could not be transcoded, after its retries. */
    'lesson.video_failed': { lessonId: string; uploadId: string; courseId: string; lessonTitle: string; adminId: string; reason: string };
  }
}

export {};
