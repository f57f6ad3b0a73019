/**
 * How many events an import's Step Functions execution writes to its history. Step
 * Functions stops a Standard execution at 25,000 events, and no Catch runs then: the
 * WaitCondition would get no signal. So synth refuses any timeout and poll interval whose
 * worst case passes HISTORY_BUDGET, which leaves the rest for retries of the polls.
 *
 * Counted as Step Functions counts them: an execution starts and ends (2 events); a Task
 * state is entered, scheduled, started, succeeds or fails, and exits (5); any other state
 * is entered and exits (2), but a Fail state is only entered (1); each retry of a Task adds a
 * failure, a schedule and a start (3).
 * The states are those of the engine's state machine (engine.ts); a test runs the
 * synthesized definition and compares this count with the events it wrote.
 */

/** Step Functions' limit on one execution's history. */
export const HISTORY_LIMIT = 25_000;
/** The most events synth lets an import's worst case write: the rest is room for retried polls. */
export const HISTORY_BUDGET = 20_000;

const EXECUTION = 2;
const TASK = 5;
const STATE = 2;
const RETRY = 3;

/** Attempts after the first, at most, of each kind of state (engine.ts's retriers). */
const LAMBDA_RETRIES = 7;
const EC2_RETRIES = 5;
const SIGNAL_NOT_READY_RETRIES = 159;
const SIGNAL_ERROR_RETRIES = 39;
/** The most times the start step waits for IAM to propagate a new role (15 + 30 + 60 + 120 s, within its 300 s). */
const IAM_WAITS = 4;
/** VM Import's most volumes: the snapshot route tags each disk's snapshot when its task completes. */
const MAX_DISKS = 21;

/** The route whose states an execution runs. */
export type HistoryRoute = 'image' | 'snapshots';

/** One path through the state machine, for counting its events. */
export interface HistoryPath {
  readonly route: HistoryRoute;
  /** Polls of the import's task(s) (each a wait, a describe and one or two choices). */
  readonly polls: number;
  /** Refusals the start step waited out (quota, IAM propagation). */
  readonly startWaits?: number;
  /** With a name on the image route: polls of the copy. @default - not named */
  readonly copyPolls?: number;
  /** The import's (or the copy's) wait ran out and the timeout step ran. */
  readonly timedOut?: boolean;
  /** On the snapshot route: polls that found snapshots to tag. */
  readonly taggingPolls?: number;
  /** How the execution ended: 'completed' (tagged and, when named, copied), or 'failed' on the way (in the Fail state). */
  readonly outcome: 'completed' | 'failed';
}

/** The events an execution writes along this path, without retries. */
export function historyEvents(path: HistoryPath): number {
  const start = STATE /* ImportedBefore */ + TASK /* StartImport */ + STATE /* Started */;
  const startWait = STATE /* WaitToStart */ + TASK /* StartImport */ + STATE /* Started */;
  const poll = path.route === 'image'
    ? STATE /* WaitForImport */ + TASK /* DescribeImport */ + STATE /* ImportStatus */
    : STATE /* WaitForSnapshots */ + TASK /* PollSnapshots */ + STATE /* SnapshotsToTag */ + STATE /* SnapshotsStatus */;
  let events = EXECUTION + start + (path.startWaits ?? 0) * startWait + path.polls * poll;
  events += (path.taggingPolls ?? 0) * TASK; /* TagImportedSnapshots */
  if (path.timedOut) {
    events += TASK /* CancelOnTimeout or CancelCopyOnTimeout */ + STATE /* its choice */;
  }
  if (path.outcome === 'completed' || path.copyPolls !== undefined) {
    events += (path.route === 'snapshots' ? TASK : 0) /* RegisterImage */ + TASK /* TagImage */ + TASK /* TagSnapshots */ + STATE /* Named */;
  }
  if (path.copyPolls !== undefined) {
    events += STATE /* CopyWithKey */ + TASK /* CopyImage */ + path.copyPolls * (STATE + TASK + STATE) /* WaitForCopy, DescribeCopy, CopyStatus */;
    if (path.outcome === 'completed') {
      events += TASK; /* FinishCopy */
    }
  }
  // A signal state, then ImportCompleted (entered and exited) or ImportFailed (a Fail state is only entered).
  return events + TASK + (path.outcome === 'completed' ? STATE : 1);
}

/** The worst case synth must fit into the budget. */
export interface HistoryWorstCase {
  readonly events: number;
  /** Polls at most, the import's and the copy's together. */
  readonly polls: number;
  /** Events each poll writes. */
  readonly eventsPerPoll: number;
}

/**
 * The most events an import of this timeout and poll interval can write: a poll every
 * interval until the deadline (the import's polls and the copy's share it), the start
 * step refused as often as its backoff allows within the timeout, every one-time state
 * retried to its limit, and the signal step waiting for its WaitCondition as long as it
 * may. Retries of the polls themselves are what the budget leaves under the limit.
 */
export function worstCaseHistory(route: HistoryRoute, timeoutSeconds: number, pollSeconds: number): HistoryWorstCase {
  const polls = Math.ceil(timeoutSeconds / pollSeconds) + 2;
  const startWaits = startRefusals(timeoutSeconds) + IAM_WAITS;
  const path: HistoryPath = route === 'image'
    ? { route, polls: polls - 1, copyPolls: 1, startWaits, timedOut: true, outcome: 'completed' }
    : { route, polls, startWaits, taggingPolls: MAX_DISKS, outcome: 'completed' };
  const lambdaSteps = route === 'image'
    ? 4 /* StartImport, CancelOnTimeout, CancelCopyOnTimeout, FinishCopy */
    : 2 /* StartImport, RegisterImage */;
  const ec2Steps = route === 'image'
    ? 3 /* TagImage, TagSnapshots, CopyImage */
    : 2 + MAX_DISKS /* TagImage, TagSnapshots, each TagImportedSnapshots */;
  const retries = RETRY * (
    (lambdaSteps + 1 /* the signal's Lambda errors */) * LAMBDA_RETRIES + ec2Steps * EC2_RETRIES + SIGNAL_NOT_READY_RETRIES + SIGNAL_ERROR_RETRIES
  );
  // The path above has one timeout step; the image route can run both the import's and the copy's.
  const timeoutOfBoth = route === 'image' ? TASK + STATE : 0;
  return {
    events: historyEvents(path) + timeoutOfBoth + retries,
    polls,
    eventsPerPoll: route === 'image' ? STATE + TASK + STATE : STATE + TASK + STATE + STATE,
  };
}

/** How often the start step can be refused for quota before the deadline: it waits 15 s, doubling to 5 minutes, each time. */
function startRefusals(timeoutSeconds: number): number {
  let waited = 0;
  let refusals = 0;
  for (let delay = 15; waited <= timeoutSeconds; delay = Math.min(300, delay * 2)) {
    waited += delay;
    refusals += 1;
  }
  return refusals;
}
