/** What the LMS module tells other modules; published after the change is committed. */
declare module '../../infra/events.js' {
  interface DomainEvents {
    /** A student completed the last lesson of a course. */
    'course.completed': { userId: string; courseId: string; courseTitle: string };
  }
}

export {};
