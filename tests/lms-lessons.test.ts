import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, register, type Pair } from './helpers/auth.js';
import { eventually } from './helpers/jobs.js';
import { createCourse, registerAdmin } from './helpers/payments.js';

let t: TestApp;
let admin: Pair;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());
beforeEach(async () => {
  await truncateAll(t);
  admin = await registerAdmin(t);
});

interface LessonBody {
  id: string;
  title: string;
  position: number;
  content: string | null;
  locked: boolean;
}

const addLesson = async (courseId: string, body: Record<string, unknown>) => {
  const res = await injectAs(t.app, admin, { method: 'POST', url: `/courses/${courseId}/lessons`, payload: body });
  expect(res.statusCode).toBe(201);
  return res.json<LessonBody>();
};
const lessons = async (courseId: string, caller?: Pair) =>
  (caller
    ? await injectAs(t.app, caller, { method: 'GET', url: `/courses/${courseId}/lessons` })
    : await t.app.inject({ method: 'GET', url: `/courses/${courseId}/lessons` })
  ).json<{
    items: LessonBody[];
  }>().items;
const watch = (caller: Pair, lessonId: string, watchSeconds: number) =>
  injectAs(t.app, caller, { method: 'POST', url: `/lessons/${lessonId}/progress`, payload: { watchSeconds } });
const complete = (caller: Pair, lessonId: string) => injectAs(t.app, caller, { method: 'POST', url: `/lessons/${lessonId}/complete` });

/** A free course with three lessons (the first a free preview), and a student enrolled in it. */
async function freeCourseWithLessons() {
  const course = await createCourse(t.app, admin, { title: 'Small talk', price: { amount: 0, currency: 'usd' } });
  const first = await addLesson(course.id, { title: 'Greetings', content: 'Hello!', durationSeconds: 300, freePreview: true });
  const second = await addLesson(course.id, { title: 'Weather', content: 'Sunny', durationSeconds: 600 });
  const third = await addLesson(course.id, { title: 'Goodbyes', content: 'Bye', durationSeconds: 0 });
  const student = await register(t.app);
  expect((await injectAs(t.app, student, { method: 'POST', url: `/courses/${course.id}/enroll` })).statusCode).toBe(201);
  return { course, lessons: [first, second, third], student };
}

describe('lessons', () => {
  it('appends lessons in order, shows titles to everyone and content to the enrolled and in free previews', async () => {
    const course = await createCourse(t.app, admin, { price: { amount: 900, currency: 'usd' } });
    const a = await addLesson(course.id, { title: 'One', content: 'first text', freePreview: true });
    const b = await addLesson(course.id, { title: 'Two', content: 'second text' });
    expect([a.position, b.position]).toEqual([1, 2]);

    const anonymous = await lessons(course.id);
    expect(anonymous.map((lesson) => [lesson.title, lesson.content, lesson.locked])).toEqual([
      ['One', 'first text', false],
      ['Two', null, true],
    ]);
    const student = await register(t.app);
    expect((await lessons(course.id, student)).map((lesson) => lesson.content)).toEqual(['first text', null]);
    expect((await lessons(course.id, admin)).map((lesson) => lesson.content)).toEqual(['first text', 'second text']);

    expect((await injectAs(t.app, student, { method: 'POST', url: `/courses/${course.id}/lessons`, payload: { title: 'x' } })).statusCode).toBe(403);
    expect((await injectAs(t.app, admin, { method: 'POST', url: `/courses/${randomUUID()}/lessons`, payload: { title: 'x' } })).statusCode).toBe(404);
    const draft = await createCourse(t.app, admin, { published: false });
    expect((await t.app.inject({ method: 'GET', url: `/courses/${draft.id}/lessons` })).statusCode).toBe(404);
  });

  it('changes, reorders in one go, and deletes lessons, closing the gap', async () => {
    const {
      course,
      lessons: [first, second, third],
    } = await freeCourseWithLessons();
    const renamed = await injectAs(t.app, admin, { method: 'PATCH', url: `/lessons/${second!.id}`, payload: { title: 'The weather' } });
    expect(renamed.json()).toMatchObject({ title: 'The weather', position: 2 });
    expect((await injectAs(t.app, admin, { method: 'PATCH', url: `/lessons/${randomUUID()}`, payload: { title: 'x' } })).statusCode).toBe(404);

    const order = (lessonIds: string[]) => injectAs(t.app, admin, { method: 'PATCH', url: `/courses/${course.id}/lessons/order`, payload: { lessonIds } });
    const reordered = await order([third!.id, first!.id, second!.id]);
    expect(reordered.statusCode).toBe(200);
    expect(reordered.json<{ items: LessonBody[] }>().items.map((lesson) => [lesson.id, lesson.position])).toEqual([
      [third!.id, 1],
      [first!.id, 2],
      [second!.id, 3],
    ]);
    for (const wrong of [
      [third!.id, first!.id],
      [third!.id, first!.id, first!.id],
      [third!.id, first!.id, randomUUID()],
    ]) {
      expect((await order(wrong)).statusCode).toBe(400);
    }
    expect((await lessons(course.id)).map((lesson) => lesson.id)).toEqual([third!.id, first!.id, second!.id]);

    expect((await injectAs(t.app, admin, { method: 'DELETE', url: `/lessons/${third!.id}` })).statusCode).toBe(204);
    expect((await lessons(course.id)).map((lesson) => [lesson.id, lesson.position])).toEqual([
      [first!.id, 1],
      [second!.id, 2],
    ]);
    expect((await injectAs(t.app, admin, { method: 'DELETE', url: `/lessons/${third!.id}` })).statusCode).toBe(404);
  });
});

describe('progress', () => {
  it('keeps the watch time growing and within the lesson, and refuses students who are not enrolled', async () => {
    const {
      lessons: [first, second, third],
      student,
    } = await freeCourseWithLessons();
    expect((await watch(student, second!.id, 120)).json()).toEqual({ lessonId: second!.id, watchSeconds: 120, completed: false });
    expect((await watch(student, second!.id, 60)).json().watchSeconds).toBe(120);
    expect((await watch(student, second!.id, 5000)).json().watchSeconds).toBe(600);
    // a lesson without a known duration keeps what the player says
    expect((await watch(student, third!.id, 45)).json().watchSeconds).toBe(45);
    const concurrent = await Promise.all([200, 250, 100].map((seconds) => watch(student, first!.id, seconds)));
    expect(concurrent.every((res) => res.statusCode === 200)).toBe(true);
    expect((await watch(student, first!.id, 0)).json().watchSeconds).toBe(250);

    const outsider = await register(t.app);
    const refused = await watch(outsider, second!.id, 10);
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.code).toBe('not_enrolled');
    // a free preview may be studied by anyone signed in
    expect((await watch(outsider, first!.id, 10)).statusCode).toBe(200);
    expect((await watch(student, randomUUID(), 10)).statusCode).toBe(404);
    expect((await watch(student, second!.id, -1)).statusCode).toBe(400);
  });

  it('reports percent, next lesson and watch time, and sends one achievement when the course is finished', async () => {
    const {
      course,
      lessons: [first, second, third],
      student,
    } = await freeCourseWithLessons();
    await watch(student, first!.id, 300);
    const afterFirst = await complete(student, first!.id);
    expect(afterFirst.json()).toMatchObject({
      percent: 33,
      lessons: 3,
      completedLessonIds: [first!.id],
      nextLesson: { id: second!.id, position: 2 },
      totalWatchSeconds: 300,
    });
    expect((await complete(student, first!.id)).json().percent).toBe(33);

    const mine = await injectAs(t.app, student, { method: 'GET', url: '/my/courses' });
    expect(mine.json()).toMatchObject({
      items: [{ course: { id: course.id, title: 'Small talk' }, progress: { percent: 33, nextLesson: { id: second!.id } } }],
      nextCursor: null,
    });

    await complete(student, second!.id);
    const done = await complete(student, third!.id);
    expect(done.json()).toMatchObject({ percent: 100, nextLesson: null });
    expect((await injectAs(t.app, student, { method: 'GET', url: `/my/progress/${course.id}` })).json()).toMatchObject({
      percent: 100,
      completedLessonIds: expect.arrayContaining([first!.id, second!.id, third!.id]),
    });
    const achievements = await eventually(
      async () =>
        (await injectAs(t.app, student, { method: 'GET', url: '/notifications' }))
          .json<{ items: Array<{ type: string; title: string; data: Record<string, string> }> }>()
          .items.filter((item) => item.type === 'achievement'),
      (items) => items.length >= 1,
    );
    expect(achievements).toEqual([expect.objectContaining({ title: 'Course completed!', data: { screen: 'course', courseId: course.id } })]);
    // completing again tells nobody anything new
    await complete(student, third!.id);
    const db = t.container.db;
    await eventually(
      async () => (await t.container.jobs.queue.stats()).find((entry) => entry.queue === 'notifications.react')?.counts.waiting ?? 0,
      (waiting) => waiting === 0,
    );
    expect(await db.query(`SELECT count(*)::int AS n FROM notifications WHERE user_id = $1 AND type = 'achievement'`, [student.user.id])).toEqual([{ n: 1 }]);

    const outsider = await register(t.app);
    expect((await injectAs(t.app, outsider, { method: 'GET', url: `/my/progress/${course.id}` })).json().error.code).toBe('not_enrolled');
    expect((await injectAs(t.app, outsider, { method: 'GET', url: '/my/courses' })).json().items).toEqual([]);
  });
});
