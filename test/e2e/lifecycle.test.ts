/**
 * The engine's life cycle over generated sequences of deploys: fast-check's model-based
 * testing drives CloudFormationModel (creates, updates of image properties and of tags or
 * the removal policy, reverts, rollbacks of failed creates and updates, rollbacks while an
 * import runs, failed imports, duplicated requests, throttled CloudFormation calls, stack
 * deletions and stacks made again) against the synthesized state machine, the bundled
 * function and the local EC2, Step Functions and CloudFormation servers. After every step
 * the invariants hold:
 *
 * - every WaitCondition CloudFormation created got its signal;
 * - no execution runs and no import task is active once CloudFormation is done;
 * - every AMI and snapshot the engine made carries its stack's tag (so a later DESTROY can
 *   find it), and one is left only where it is the stack's live AMI or a deploy of its stack
 *   asked to keep it (RETAIN);
 * - the live result resource names an available AMI.
 *
 * Each failing sequence fast-check found is kept below as a fixed test.
 */
import * as fc from 'fast-check';
import { CloudFormationModel, DeployStep } from './cloudformation-model';
import { Engine } from './engine-harness';

jest.setTimeout(600_000);

const TAG_STACK_ID = 'cdk-vm-import:stack-id';

let engine: Engine | undefined;

afterEach(async () => {
  expect(engine?.blockedRequests ?? []).toEqual([]);
  await engine?.stop();
  engine = undefined;
});

/** What the test keeps of the real system: the model of CloudFormation and the engine behind it. */
interface Real {
  readonly engine: Engine;
  readonly cfn: CloudFormationModel;
}

/** The model: nothing but what the commands' preconditions need (the invariants read the real system). */
interface Model {
  exists: boolean;
}

const tagOf = (resource: { tags: { key: string; value: string }[] }) => resource.tags.find((t) => t.key === TAG_STACK_ID)?.value;

/** Checks every invariant; returns what is wrong (an empty list when all hold). */
function violations({ engine: e, cfn }: Real): string[] {
  const wrong: string[] = [];
  wrong.push(...cfn.hangs.map((h) => `a WaitCondition got no signal: ${h}`));
  for (const execution of e.sfn.executions.values()) {
    if (execution.status === 'RUNNING') {
      wrong.push(`execution ${execution.name} still runs`);
    }
  }
  for (const task of [...e.ec2.state.tasks.values(), ...e.ec2.state.snapshotTasks.values()]) {
    if (task.status === 'active') {
      wrong.push(`import task ${task.importTaskId} is still active`);
    }
  }
  const live = cfn.exists ? cfn.live?.resultPhysical : undefined;
  for (const image of e.ec2.state.images.values()) {
    const stack = tagOf(image);
    if (!stack) {
      wrong.push(`AMI ${image.imageId} has no stack tag`);
    } else if (image.imageId !== live && !cfn.retaining.has(stack)) {
      wrong.push(`AMI ${image.imageId} of ${stack} was left behind though no deploy of that stack asked to keep it`);
    }
  }
  for (const snapshot of e.ec2.state.snapshots.values()) {
    const stack = tagOf(snapshot);
    const ofLive = live !== undefined && e.ec2.state.images.get(live)?.blockDevices.some((d) => d.snapshotId === snapshot.snapshotId);
    if (!stack) {
      wrong.push(`snapshot ${snapshot.snapshotId} has no stack tag`);
    } else if (!ofLive && !cfn.retaining.has(stack)) {
      wrong.push(`snapshot ${snapshot.snapshotId} of ${stack} was left behind though no deploy of that stack asked to keep it`);
    }
  }
  if (live !== undefined && e.ec2.state.images.get(live)?.state !== 'available') {
    wrong.push(`the live result names ${live}, which is not an available AMI`);
  }
  return wrong;
}

class Deploy implements fc.AsyncCommand<Model, Real> {
  constructor(readonly step: DeployStep) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    // The named variant's name may be held by an AMI that an earlier stack kept (RETAIN): then it is refused, as EC2 would.
    const nameHeld = this.step.variant === 'C' && [...real.engine.ec2.state.images.values()]
      .some((i) => i.name === 'web-server-C' && tagOf(i) !== (real.cfn.exists ? real.cfn.stackId : undefined));
    const outcome = await real.cfn.deploy(this.step);
    model.exists = real.cfn.exists;
    expect(violations(real)).toEqual([]);
    if (!this.step.importFails && !this.step.otherFails && !this.step.failWhileImporting && !nameHeld) {
      expect(outcome).toBe('complete');
    }
  }
  toString(): string {
    return `deploy(${JSON.stringify(this.step)})`;
  }
}

class DeleteStack implements fc.AsyncCommand<Model, Real> {
  check(model: Readonly<Model>): boolean {
    return model.exists;
  }
  async run(model: Model, real: Real): Promise<void> {
    await real.cfn.deleteStack();
    model.exists = false;
    expect(violations(real)).toEqual([]);
    // Nothing of a stack deleted under DESTROY only is left.
  }
  toString(): string {
    return 'deleteStack()';
  }
}

const deployStep: fc.Arbitrary<DeployStep> = fc.record({
  variant: fc.constantFrom('A', 'B', 'C'),
  removal: fc.constantFrom('retain', 'destroy'),
  team: fc.constantFrom('infra', 'web'),
  importFails: fc.constantFrom(false, false, false, false, true),
  otherFails: fc.boolean(),
  failWhileImporting: fc.boolean(),
  duplicate: fc.boolean(),
  throttled: fc.boolean(),
}, { requiredKeys: ['variant', 'removal', 'team'] });

const commands = fc.commands([
  deployStep.map((step) => new Deploy(step)),
  fc.constant(new DeleteStack()),
], { maxCommands: 7 });

/** Runs one sequence on a fresh engine; returns the steps it took. */
async function runSequence(cmds: Iterable<fc.AsyncCommand<Model, Real>>): Promise<void> {
  // A poll takes 25 ms of real time: an import (two polls here) outlasts the few calls of a request that meets it.
  const e = engine = await Engine.start({ iamRetrySeconds: 0, waitMs: 25 });
  const real: Real = { engine: e, cfn: new CloudFormationModel(e) };
  try {
    await fc.asyncModelRun(() => ({ model: { exists: false }, real }), cmds);
    await real.cfn.deleteStack();
    expect(violations(real)).toEqual([]);
  } finally {
    await e.stop();
    engine = undefined;
  }
}

/** How many sequences to generate (LIFECYCLE_RUNS overrides; the seed is printed on failure). */
const RUNS = Number(process.env.LIFECYCLE_RUNS ?? 25);
/**
 * The seed: fixed, so that CI runs the same sequences every time; LIFECYCLE_SEED explores others
 * (any number; a failure prints the seed and the path to keep as a fixed test below).
 */
const SEED = Number(process.env.LIFECYCLE_SEED ?? 1);

test('generated sequences of deploys, reverts, rollbacks, faults and deletions keep every invariant', async () => {
  let steps = 0;
  await fc.assert(fc.asyncProperty(commands, async (cmds) => {
    steps += [...cmds].length;
    await runSequence(cmds);
  }), { numRuns: RUNS, seed: SEED, endOnFailure: true });
  // Read by the note and the docs: how much was explored.
  console.log(JSON.stringify({ lifecycleSeed: SEED, lifecycleSequences: RUNS, lifecycleSteps: steps }));
});

describe('sequences kept as fixed tests', () => {
  const deploy = (step: Partial<DeployStep> & Pick<DeployStep, 'variant'>) =>
    new Deploy({ removal: 'retain', team: 'infra', ...step });

  test('a revert under RETAIN: A, then B, then A again (the new WaitCondition of A is signalled with the AMI A kept)', async () => {
    await runSequence([deploy({ variant: 'A' }), deploy({ variant: 'B' }), deploy({ variant: 'A' })]);
  });

  test('a redeploy after a rollback: B imported, another resource fails, then B deployed again', async () => {
    await runSequence([deploy({ variant: 'A' }), deploy({ variant: 'B', otherFails: true }), deploy({ variant: 'B' })]);
  });

  test('the rollback of a failed update to properties imported before reuses that execution and the WaitCondition that stands', async () => {
    await runSequence([deploy({ variant: 'A' }), deploy({ variant: 'B' }), deploy({ variant: 'A', otherFails: true }), deploy({ variant: 'C', removal: 'destroy' })]);
  });

  test('a rollback while the import runs stops the execution and cancels the task; DESTROY deletes leave nothing', async () => {
    await runSequence([deploy({ variant: 'A', removal: 'destroy' }), deploy({ variant: 'B', removal: 'destroy', failWhileImporting: true }), new DeleteStack()]);
  });

  // Seed 788451472: a rollback right after the start found no task recorded, stopped the execution, and left the
  // task its start step had just recorded running. Now the Delete stops first and reads the history again.
  test('a rollback while the start step records its task: the task is found after the stop and cancelled', async () => {
    await runSequence([deploy({ variant: 'C', failWhileImporting: true, throttled: true })]);
  });

  // Seed -58835880: a model error. A failure queued for an import that the deploy never started (an update of tags
  // only) hit the next deploy's import; each deploy now queues what EC2 does for its own import alone.
  test('an update that starts no import, rolled back, then a new import of other properties', async () => {
    await runSequence([
      deploy({ variant: 'C', removal: 'destroy' }),
      deploy({ variant: 'C', removal: 'destroy', importFails: true, otherFails: true, failWhileImporting: true, duplicate: true, throttled: true }),
      deploy({ variant: 'A', duplicate: true }),
    ]);
  });

  test('duplicated and throttled requests, a named import, a failed import and a stack made again', async () => {
    await runSequence([
      deploy({ variant: 'C', duplicate: true, throttled: true }),
      deploy({ variant: 'A', importFails: true }),
      new DeleteStack(),
      deploy({ variant: 'A', removal: 'destroy', duplicate: true }),
    ]);
  });
});
