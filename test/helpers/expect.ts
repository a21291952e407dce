import { InputError } from '../../src/util/errors';

/** The InputError `fn` throws (bad input: the message users see); fails the test if it throws none. */
export function errorOf(fn: () => unknown): InputError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  }
  throw new Error('expected an InputError');
}
