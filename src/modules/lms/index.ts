import type { Infra } from '../../infra/bundle.js';
import { defineModule } from '../kit.js';
import { Course, Enrollment } from './entities.js';
import { lmsRoutes } from './routes.js';
import { moneySchema } from './schemas.js';
import { LmsService } from './service.js';

export type { CourseForSale, LmsService, Money } from './service.js';
export { moneySchema };

/** Courses and who is enrolled in them (lessons and video build on it). */
export const lmsModule = defineModule({
  name: 'lms',
  entities: [Course, Enrollment],
  tags: [{ name: 'courses', description: 'The course catalogue and enrollment' }],
  create: ({ infra }: { infra: Infra }) => {
    const lms = new LmsService({ db: infra.db, clock: infra.clock, ids: infra.ids });
    return { service: lms, http: async (app) => app.register(lmsRoutes, { lms }) };
  },
});
