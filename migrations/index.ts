import { EnableCitext1763769600000 } from './1763769600000-EnableCitext.js';
import { CreateAccounts1763776800000 } from './1763776800000-CreateAccounts.js';
import { ProfileAvatarKeyAndWallet1763784000000 } from './1763784000000-ProfileAvatarKeyAndWallet.js';
import { CreateCallSessions1763791200000 } from './1763791200000-CreateCallSessions.js';
import { CreateReports1763798400000 } from './1763798400000-CreateReports.js';
import { OpenCallsIndex1763805600000 } from './1763805600000-OpenCallsIndex.js';
import { CreateIdempotencyKeys1764800000000 } from './1764800000000-CreateIdempotencyKeys.js';

/** Every migration, oldest first. `npm run migration:generate|create` adds new ones here. */
import { CreateNotifications1796127504632 } from './1796127504632-CreateNotifications.js';
import { CreatePayments1796139015198 } from './1796139015198-CreatePayments.js';
import { CreateLessons1796143567350 } from './1796143567350-CreateLessons.js';
import { LessonVideos1796148589182 } from './1796148589182-LessonVideos.js';
import { OllamaKeys1796151093444 } from './1796151093444-OllamaKeys.js';
import { ChatThreads1796159277764 } from './1796159277764-ChatThreads.js';
import { ExternalIdentities1796162342481 } from './1796162342481-ExternalIdentities.js';
import { CookieSessions1796172539769 } from './1796172539769-CookieSessions.js';
import { PracticeSeconds1796175767698 } from './1796175767698-PracticeSeconds.js';
import { Locks1796177495745 } from './1796177495745-Locks.js';
export const migrations = [
  EnableCitext1763769600000,
  CreateAccounts1763776800000,
  ProfileAvatarKeyAndWallet1763784000000,
  CreateCallSessions1763791200000,
  CreateReports1763798400000,
  OpenCallsIndex1763805600000,
  CreateIdempotencyKeys1764800000000,
  CreateNotifications1796127504632,
  CreatePayments1796139015198,
  CreateLessons1796143567350,
  LessonVideos1796148589182,
  OllamaKeys1796151093444,
  ChatThreads1796159277764,
  ExternalIdentities1796162342481,
  CookieSessions1796172539769,
  PracticeSeconds1796175767698,
  Locks1796177495745,
];
