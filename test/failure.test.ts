import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, RetryState } from '@temporalio/common';
import { failureMessage, rootCause } from '../src/util/failure';

describe('failureMessage', () => {
  it('reads the root cause of an activity failure, with its type', () => {
    const root = ApplicationFailure.create({ type: 'LlmRejected', message: 'HTTP 400: bad schema' });
    const err = new ActivityFailure(
      'activity failed',
      'judge',
      '7',
      RetryState.NON_RETRYABLE_FAILURE,
      'w',
      root,
    );
    expect(failureMessage(err)).toBe('LlmRejected: HTTP 400: bad schema');
  });

  it('returns (does not loop) on an activity or child failure without a cause', () => {
    const bare = new ActivityFailure('activity task failed', 'judge', '7', RetryState.TIMEOUT, 'w');
    expect(failureMessage(bare)).toBe('activity task failed');
    const child = new ChildWorkflowFailure(
      'ns',
      { workflowId: 'a', runId: 'b' },
      'entry',
      RetryState.TIMEOUT,
    );
    expect(rootCause(child)).toBe(child);
  });

  it('stops on a cause chain that points back at itself', () => {
    const loop = new Error('outer') as Error & { cause?: unknown };
    loop.cause = loop;
    expect(failureMessage(loop)).toBe('outer');
  });

  it('describes non-errors', () => {
    expect(failureMessage('plain text')).toBe('plain text');
    expect(failureMessage(undefined)).toBe('undefined');
  });
});
