// Lint rules that protect durability: no floating promises anywhere, and no Node built-ins in
// workflow code (it runs in Temporal's deterministic sandbox and is replayed).
import { defineConfig, globalIgnores } from 'eslint/config';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

// defineConfig (ESLint >= 9.22) replaces the deprecated tseslint.config helper.
export default defineConfig(
  globalIgnores([
    'node_modules/**',
    'dist/**',
    '.codeclm/**',
    'coverage/**',
    'bin/**',
    '*.config.*',
    'temporal-docker/**',
  ]),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({
            name,
            message: 'Workflow code must stay deterministic: no Node built-ins.',
          })),
          patterns: [
            {
              group: ['../activities/*', '../activities'],
              allowTypeImports: true,
              message: 'Workflows may import only types from activities.',
            },
          ],
        },
      ],
    },
  },
);
