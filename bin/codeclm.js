#!/usr/bin/env node
// Runs the TypeScript CLI directly through tsx, so `npx codeclm` never needs a build step.
'use strict';
require('tsx/cjs');
require('../src/client.ts');
