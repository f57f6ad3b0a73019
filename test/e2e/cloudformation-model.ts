/**
 * A small model of what CloudFormation does with one stack holding one import (the start
 * resource, its WaitCondition and the result resource), played against the engine on the
 * local servers (engine-harness.ts): create, update (image properties, tags or removal
 * policy only), the cleanup of replaced resources, the rollback of a failed create or
 * update, the stack's deletion, a request delivered twice, and a stack made again after
 * its deletion (with a new stack ID). CloudFormation's documented order is kept: a
 * WaitCondition is created after the start resource answers and waits for a signal sent
 * after that; an update's cleanup deletes what the update replaced; a rollback updates
 * what it changed back to the old properties, deletes what it created, then deletes the
 * new physical resources that the rollback replaced.
 */
import { Engine, STACK_ID, startProps } from './engine-harness';
import { CustomResourceResponse } from './local-cfn';

export type Variant = 'A' | 'B' | 'C';
export type Removal = 'retain' | 'destroy';

/** What one deploy asks for, and what goes wrong during it. */
export interface DeployStep {
  readonly variant: Variant;
  readonly removal: Removal;
  /** A tag value: changing only it is a tags-only update. */
  readonly team: 'infra' | 'web';
  /** EC2 fails the import (its StatusMessage reaches the stack). */
  readonly importFails?: boolean;
  /** Another resource of the stack fails after the import: the stack rolls back. */
  readonly otherFails?: boolean;
  /** Another resource fails while the import is still running (the rollback meets a running execution). */
  readonly failWhileImporting?: boolean;
  /** CloudFormation delivers the start resource's request twice. */
  readonly duplicate?: boolean;
  /** CloudFormation throttles the engine's next calls. */
  readonly throttled?: boolean;
}

interface Live {
  readonly variant: Variant;
  readonly removal: Removal;
  readonly props: Record<string, unknown>;
  readonly startPhysical: string;
  readonly resultProps: Record<string, unknown>;
  readonly resultPhysical: string;
}

const START = 'WebServerImage';
const RESULT = 'WebServerImageResult';
const START_TYPE = 'Custom::VmImageImport';
const RESULT_TYPE = 'Custom::VmImageImportResult';

/** The start resource's properties for a variant: each variant is other disks, so another WaitCondition. */
export function variantProps(step: Pick<DeployStep, 'variant' | 'removal' | 'team'>): Record<string, unknown> {
  return startProps({
    DiskContainers: [{ Format: 'VMDK', S3Bucket: 'vm-images-bucket', S3Key: `web/disk-${step.variant}.vmdk` }],
    WaitConditionId: `WebServerImageWait${step.variant.repeat(12)}`,
    RemovalPolicy: step.removal,
    Tags: [{ Key: 'team', Value: step.team }],
    ...(step.variant === 'C' ? { ImageName: 'web-server-C' } : {}),
    PollIntervalSeconds: '30',
  });
}

/** The result resource's properties: the start resource's Ref and what the result applies. */
function resultPropsOf(startPhysical: string, props: Record<string, unknown>): Record<string, unknown> {
  return { ExecutionArn: startPhysical, Tags: props.Tags, RemovalPolicy: props.RemovalPolicy };
}

export class CloudFormationModel {
  /** Every WaitCondition that was created and never got a signal: a stack that would hang. */
  public readonly hangs: string[] = [];
  /** Stack IDs, oldest first; the last is the current one while `exists`. */
  public readonly stackIds: string[] = [];
  /** Stacks for which some deploy asked to keep what it imported. */
  public readonly retaining = new Set<string>();
  public live?: Live;
  public exists = false;

  constructor(private readonly engine: Engine) {}

  public get stackId(): string {
    return this.stackIds[this.stackIds.length - 1] ?? STACK_ID;
  }

  /** `cdk deploy`: a create when there is no stack, else an update. */
  public async deploy(step: DeployStep): Promise<'complete' | 'rolled-back'> {
    // What EC2 does to this deploy's import, if it starts one: not to a later deploy's.
    this.engine.ec2.clearQueuedBehaviours();
    if (step.importFails) {
      this.engine.ec2.queueTaskBehaviour({ failAfter: { stages: 1, message: 'ClientError: Unknown OS / Missing OS files.' } });
    } else {
      this.engine.ec2.queueTaskBehaviour({ stagesToComplete: 2 });
    }
    if (step.throttled) {
      this.engine.cfn.throttleNext = 2;
    }
    if (step.removal === 'retain') {
      this.retaining.add(this.exists ? this.stackId : this.nextStackId());
    }
    return this.exists ? this.update(step) : this.create(step);
  }

  /** `cdk destroy`: the result, the WaitCondition, then the start resource. */
  public async deleteStack(): Promise<void> {
    if (!this.exists) {
      return;
    }
    this.setStatus('DELETE_IN_PROGRESS');
    const live = this.live;
    if (live) {
      await this.send('Delete', RESULT_TYPE, RESULT, live.resultProps, { physicalResourceId: live.resultPhysical });
      this.engine.cfn.deleteWaitCondition(this.stackId, String(live.props.WaitConditionId));
      await this.send('Delete', START_TYPE, START, live.props, { physicalResourceId: live.startPhysical });
    }
    this.engine.cfn.setStackStatus(this.stackId, null);
    this.exists = false;
    this.live = undefined;
  }

  private nextStackId(): string {
    return STACK_ID.replace(/[0-9a-f]{12}$/, (tail) => `${tail.slice(0, 8)}${String(this.stackIds.length).padStart(4, '0')}`);
  }

  private setStatus(status: string): void {
    this.engine.cfn.setStackStatus(this.stackId, status);
  }

  private async send(
    type: 'Create' | 'Update' | 'Delete', resourceType: string, logicalId: string, props: Record<string, unknown>,
    extra: { physicalResourceId?: string; oldProps?: Record<string, unknown>; duplicate?: boolean } = {},
  ): Promise<CustomResourceResponse> {
    const requestId = `${this.stackIds.length}-${type}-${logicalId}-${Math.random().toString(36).slice(2)}`;
    const first = await this.engine.request(type, resourceType, logicalId, props, { ...extra, requestId, stackId: this.stackId });
    if (extra.duplicate) {
      await this.engine.request(type, resourceType, logicalId, props, { ...extra, requestId, stackId: this.stackId });
    }
    return first;
  }

  /** Creates the WaitCondition and waits for its signal; a missing signal is recorded as a hang. */
  private async waitFor(waitConditionId: string, startPhysical: string, failWhileImporting: boolean): Promise<boolean> {
    this.engine.cfn.resetWaitCondition(this.stackId, waitConditionId);
    if (failWhileImporting) {
      return false;
    }
    const execution = this.engine.sfn.executions.get(startPhysical);
    const signalled = () => this.engine.cfn.waitConditionStatus(this.stackId, waitConditionId) === 'CREATE_COMPLETE';
    // The signal comes before its execution ends: an execution that ended (or none at all) without it never sends it.
    // (The engine's clock moves one poll interval a poll, so 20 s of real time is hours of an import.)
    await this.engine.until(() => signalled() || execution === undefined || execution.status !== 'RUNNING', 20_000).catch(() => undefined);
    if (!signalled()) {
      this.hangs.push(`${this.stackId} ${waitConditionId} (execution ${startPhysical}: ${execution?.status ?? 'none'})`);
      return false;
    }
    await execution?.done;
    return true;
  }

  /** The stack holds this deploy's import now. */
  private completed(step: DeployStep, props: Record<string, unknown>, startPhysical: string, resultPhysical: string): 'complete' {
    const resultProps = resultPropsOf(startPhysical, props);
    this.live = { variant: step.variant, removal: step.removal, props, startPhysical, resultProps, resultPhysical };
    return 'complete';
  }

  private async create(step: DeployStep): Promise<'complete' | 'rolled-back'> {
    this.stackIds.push(this.nextStackId());
    this.exists = true;
    this.setStatus('CREATE_IN_PROGRESS');
    const props = variantProps(step);
    const start = await this.send('Create', START_TYPE, START, props, { duplicate: step.duplicate });
    const rollback = async (resultPhysical?: string) => {
      this.setStatus('ROLLBACK_IN_PROGRESS');
      const resultProps = resultPropsOf(start.PhysicalResourceId, props);
      if (resultPhysical) {
        await this.send('Delete', RESULT_TYPE, RESULT, resultProps, { physicalResourceId: resultPhysical });
      }
      this.engine.cfn.deleteWaitCondition(this.stackId, String(props.WaitConditionId));
      await this.send('Delete', START_TYPE, START, props, { physicalResourceId: start.PhysicalResourceId });
      // ROLLBACK_COMPLETE: the user deletes the stack, which holds nothing any more.
      this.engine.cfn.setStackStatus(this.stackId, null);
      this.exists = false;
      this.live = undefined;
      return 'rolled-back' as const;
    };
    if (start.Status !== 'SUCCESS') {
      return rollback();
    }
    if (!await this.waitFor(String(props.WaitConditionId), start.PhysicalResourceId, !!step.failWhileImporting)) {
      return rollback();
    }
    const resultProps = resultPropsOf(start.PhysicalResourceId, props);
    const result = await this.send('Create', RESULT_TYPE, RESULT, resultProps);
    if (result.Status !== 'SUCCESS' || step.otherFails) {
      return rollback(result.PhysicalResourceId);
    }
    this.setStatus('CREATE_COMPLETE');
    return this.completed(step, props, start.PhysicalResourceId, result.PhysicalResourceId);
  }

  private async update(step: DeployStep): Promise<'complete' | 'rolled-back'> {
    const old = this.live!;
    this.setStatus('UPDATE_IN_PROGRESS');
    const props = variantProps(step);
    const newWait = props.WaitConditionId !== old.props.WaitConditionId;
    const start = await this.send('Update', START_TYPE, START, props, {
      physicalResourceId: old.startPhysical, oldProps: old.props, duplicate: step.duplicate,
    });
    let resultPhysical: string | undefined;
    let waited = false;
    const rollback = async () => {
      this.setStatus('UPDATE_ROLLBACK_IN_PROGRESS');
      // What the update changed goes back to the old properties, in reverse order.
      let restoredResult = old.resultPhysical;
      if (resultPhysical !== undefined) {
        const back = await this.send('Update', RESULT_TYPE, RESULT, old.resultProps, {
          physicalResourceId: resultPhysical,
          oldProps: resultPropsOf(start.PhysicalResourceId, props),
        });
        restoredResult = back.PhysicalResourceId;
      }
      let restoredStart = old.startPhysical;
      if (start.Status === 'SUCCESS') {
        const back = await this.send('Update', START_TYPE, START, old.props, { physicalResourceId: start.PhysicalResourceId, oldProps: props });
        restoredStart = back.PhysicalResourceId;
      }
      if (newWait && (waited || step.failWhileImporting)) {
        this.engine.cfn.deleteWaitCondition(this.stackId, String(props.WaitConditionId));
      }
      this.setStatus('UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS');
      if (resultPhysical !== undefined && resultPhysical !== restoredResult) {
        const replaced = resultPropsOf(start.PhysicalResourceId, props);
        await this.send('Delete', RESULT_TYPE, RESULT, replaced, { physicalResourceId: resultPhysical });
      }
      if (start.Status === 'SUCCESS' && start.PhysicalResourceId !== restoredStart) {
        await this.send('Delete', START_TYPE, START, props, { physicalResourceId: start.PhysicalResourceId });
      }
      this.setStatus('UPDATE_ROLLBACK_COMPLETE');
      this.live = { ...old, startPhysical: restoredStart, resultPhysical: restoredResult };
      return 'rolled-back' as const;
    };
    if (start.Status !== 'SUCCESS') {
      return rollback();
    }
    if (newWait) {
      waited = true;
      if (!await this.waitFor(String(props.WaitConditionId), start.PhysicalResourceId, !!step.failWhileImporting)) {
        return rollback();
      }
    }
    const resultProps = resultPropsOf(start.PhysicalResourceId, props);
    const result = await this.send('Update', RESULT_TYPE, RESULT, resultProps, { physicalResourceId: old.resultPhysical, oldProps: old.resultProps });
    resultPhysical = result.PhysicalResourceId;
    if (result.Status !== 'SUCCESS' || step.otherFails) {
      if (result.Status !== 'SUCCESS') {
        // A failed update keeps the old physical ID: nothing to update back.
        resultPhysical = undefined;
      }
      return rollback();
    }
    this.setStatus('UPDATE_COMPLETE_CLEANUP_IN_PROGRESS');
    if (newWait) {
      this.engine.cfn.deleteWaitCondition(this.stackId, String(old.props.WaitConditionId));
    }
    if (result.PhysicalResourceId !== old.resultPhysical) {
      await this.send('Delete', RESULT_TYPE, RESULT, old.resultProps, { physicalResourceId: old.resultPhysical });
    }
    if (start.PhysicalResourceId !== old.startPhysical) {
      await this.send('Delete', START_TYPE, START, old.props, { physicalResourceId: old.startPhysical });
    }
    this.setStatus('UPDATE_COMPLETE');
    return this.completed(step, props, start.PhysicalResourceId, result.PhysicalResourceId);
  }
}
