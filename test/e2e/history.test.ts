/**
 * The history events an import's execution writes, counted as Step Functions counts them
 * (LocalSfn's historyEvents) while the synthesized state machine runs, against the count
 * synth's check uses (src/private/history.ts): equal on each path, and never above the
 * worst case synth accepts for that timeout and interval.
 */
import { Engine, snapshotRouteProps, startProps } from './engine-harness';
import { LocalExecution } from './local-sfn';
import { HISTORY_BUDGET, HISTORY_LIMIT, historyEvents, HistoryPath, HistoryRoute, worstCaseHistory } from '../../src/private/history';

jest.setTimeout(60_000);

let engine: Engine | undefined;

afterEach(async () => {
  expect(engine?.blockedRequests ?? []).toEqual([]);
  await engine?.stop();
  engine = undefined;
});

/** How often the execution entered a state. */
const entered = (execution: LocalExecution, state: string) =>
  execution.events.filter((e) => e.stateEnteredEventDetails?.name === state).length;

/** The path the execution took, read from the states it entered. */
function pathOf(execution: LocalExecution, route: HistoryRoute): HistoryPath {
  const copyPolls = entered(execution, 'WaitForCopy');
  return {
    route,
    polls: entered(execution, route === 'image' ? 'WaitForImport' : 'WaitForSnapshots'),
    startWaits: entered(execution, 'WaitToStart'),
    copyPolls: entered(execution, 'CopyImage') + entered(execution, 'CopyImageAsImported') > 0 ? copyPolls : undefined,
    timedOut: entered(execution, 'CancelOnTimeout') + entered(execution, 'CancelCopyOnTimeout') > 0,
    taggingPolls: entered(execution, 'TagImportedSnapshots'),
    outcome: entered(execution, 'ImportCompleted') > 0 && JSON.parse(execution.output ?? '{}').Outcome === 'completed' ? 'completed' : 'failed',
  };
}

const snapshotRoute = snapshotRouteProps;

test.each<[string, HistoryRoute, Record<string, unknown>, (e: Engine) => void]>([
  ['an ImportImage import of 120 polls', 'image', startProps(), (e) => e.ec2.queueTaskBehaviour({ stagesToComplete: 120 })],
  ['a named import: 40 polls, then the copy and its polls', 'image', startProps({ ImageName: 'web-1.0' }), (e) => e.ec2.queueTaskBehaviour({ stagesToComplete: 40 })],
  ['an import that fails after 10 polls', 'image', startProps(), (e) => e.ec2.queueTaskBehaviour({ failAfter: { stages: 10, message: 'ClientError: Unknown OS / Missing OS files.' } })],
  ['an import that times out', 'image', startProps({ WaitTimeoutSeconds: '900' }), (e) => e.ec2.queueTaskBehaviour({ stagesToComplete: 100_000 })],
  ['an import that waits for the quota first', 'image', startProps(), (e) => {
    e.ec2.failNext('ImportImage', { status: 400, code: 'ResourceCountLimitExceeded', message: 'too many active import tasks' }, 3);
    e.ec2.queueTaskBehaviour({ stagesToComplete: 5 });
  }],
  ['a two-disk snapshot-route import', 'snapshots', snapshotRoute(), (e) => {
    e.ec2.queueSnapshotTaskBehaviour({ stagesToComplete: 4 });
    e.ec2.queueSnapshotTaskBehaviour({ stagesToComplete: 9 });
  }],
  ['a snapshot-route import that times out', 'snapshots', snapshotRoute({ WaitTimeoutSeconds: '600' }), (e) => {
    e.ec2.queueSnapshotTaskBehaviour({ stagesToComplete: 1 });
    e.ec2.queueSnapshotTaskBehaviour({ stagesToComplete: 10_000 });
  }],
])('%s: the events written are the ones synth counts, within the worst case for its timeout', async (_name, route, props, arrange) => {
  const e = engine = await Engine.start();
  arrange(e);
  const { execution } = await e.deploy(props);
  await execution!.done;
  const path = pathOf(execution!, route);
  expect(path.polls).toBeGreaterThan(0);
  expect(execution!.historyEvents).toBe(historyEvents(path));
  const worst = worstCaseHistory(route, Number(props.WaitTimeoutSeconds), Number(props.PollIntervalSeconds));
  expect(execution!.historyEvents).toBeLessThanOrEqual(worst.events);
});

test('retries are counted three events each: a throttled describe adds three to the path', async () => {
  const e = engine = await Engine.start();
  e.ec2.queueTaskBehaviour({ stagesToComplete: 5 });
  e.ec2.failNext('DescribeImportImageTasks', { status: 503, code: 'RequestLimitExceeded', message: 'Request limit exceeded.' }, 2);
  const { execution } = await e.deploy(startProps());
  await execution!.done;
  expect(execution!.historyEvents).toBe(historyEvents(pathOf(execution!, 'image')) + 2 * 3);
});

test.each<[HistoryRoute, number, number]>([
  ['image', 12 * 3600, 22],
  ['image', 6 * 3600, 11],
  ['image', 6 * 3600, 30],
  ['snapshots', 12 * 3600, 28],
  ['snapshots', 6 * 3600, 30],
])('the worst case synth accepts (%s, %i s at %i s) stays within the budget, which leaves room under the limit', (route, timeout, poll) => {
  const worst = worstCaseHistory(route, timeout, poll);
  expect(worst.events).toBeLessThanOrEqual(HISTORY_BUDGET);
  expect(HISTORY_LIMIT - worst.events).toBeGreaterThanOrEqual(5_000);
  // One second faster would not fit at these edges.
  if (timeout === 12 * 3600) {
    expect(worstCaseHistory(route, timeout, poll - 1).events).toBeGreaterThan(HISTORY_BUDGET);
  }
});
