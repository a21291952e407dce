import { HttpError } from './errors';

/** A cursor page ({object: "list", data, first_id, last_id, has_more}) after `after`, `limit` long. */
export function page<T extends { id: string }>(
  items: T[],
  query: URLSearchParams,
  defaultLimit: number,
  max: number,
): unknown {
  const limitText = query.get('limit');
  const limit = limitText === null ? defaultLimit : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > max)
    throw new HttpError(
      400,
      `'limit' must be an integer from 1 to ${max}, got '${limitText}'`,
      'invalid_request_error',
      null,
      'limit',
    );
  const after = query.get('after');
  let start = 0;
  if (after) {
    const i = items.findIndex((x) => x.id === after);
    if (i < 0)
      throw new HttpError(
        400,
        `'after': no object with id '${after}' in this list`,
        'invalid_request_error',
        null,
        'after',
      );
    start = i + 1;
  }
  const data = items.slice(start, start + limit);
  return {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: start + limit < items.length,
  };
}
