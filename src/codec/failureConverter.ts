import { DefaultFailureConverter } from '@temporalio/common';

/**
 * With encryption on, failure messages and stack traces are moved into an encoded payload (so the
 * codec encrypts them too): an error message can quote an instruction or a model's answer.
 * Loaded by path (DataConverter.failureConverterPath), so it also runs inside the workflow sandbox.
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
