import { TOP_UP_MIN_KEEP_RATE, topUpSize } from '../src/workflows/allocation';

/** How a top-up round is sized (README: "Top-up rounds"): missing / max(keep rate, 0.25). */
describe('topUpSize', () => {
  test('asks for what the observed keep rate says is needed', () => {
    expect(topUpSize(10, 50, 100)).toBe(20); // keep rate 0.5
    expect(topUpSize(3, 1, 3)).toBe(9); // 1/3: exactly 9, float error does not make it 10
    expect(topUpSize(1, 5, 6)).toBe(2); // 5/6 -> 1.2 -> 2
    expect(topUpSize(7, 9, 9)).toBe(7); // everything kept: just the missing pairs
  });

  test('a low keep rate cannot make a round more than 4x the missing pairs', () => {
    expect(TOP_UP_MIN_KEEP_RATE).toBe(0.25);
    expect(topUpSize(3, 1, 100)).toBe(12); // keep rate 0.01 would ask for 300
    expect(topUpSize(3, 0, 40)).toBe(12); // nothing kept yet
    expect(topUpSize(3, 0, 0)).toBe(12); // nothing finished yet
    for (const [missing, kept, finished] of [
      [1, 0, 1000],
      [50, 1, 999],
      [200, 3, 30],
    ] as const)
      expect(topUpSize(missing, kept, finished)).toBeLessThanOrEqual(4 * missing);
  });

  test('nothing missing: no round', () => {
    expect(topUpSize(0, 10, 10)).toBe(0);
    expect(topUpSize(-2, 12, 12)).toBe(0);
  });
});
