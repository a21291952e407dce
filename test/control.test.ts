import { testAddress } from './helpers/env';
import { describeControlScenarios } from './helpers/controlScenarios';

/**
 * pause / resume / cancel and the budget on the suite's dev server (the scenarios are in
 * test/helpers/controlScenarios.ts; test/cluster.test.ts runs them on the PostgreSQL cluster).
 */
describeControlScenarios('control on the dev server', testAddress);
