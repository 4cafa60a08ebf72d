// One tool for lint and format: ESLint with typescript-eslint (correctness) and @stylistic (layout).
// `npm run lint` checks, `npm run format` fixes what can be fixed.
import js from '@eslint/js';
import stylistic from '@stylistic/eslint-plugin';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.slipway/', '.sst/', 'coverage/', 'packages/cli/dist/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  stylistic.configs.customize({ indent: 2, quotes: 'single', semi: true, arrowParens: true, braceStyle: '1tbs' }),
  {
    rules: {
      '@stylistic/max-len': ['error', { code: 140, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true }],
      '@stylistic/operator-linebreak': ['error', 'after', { overrides: { '?': 'before', ':': 'before' } }],
      '@stylistic/quote-props': ['error', 'as-needed'],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      'no-control-regex': 'off',
    },
  },
  {
    // A package reaches another by its name (@slipway/...), which its package.json declares: a path
    // out of the package (as the dev server once took into ../../../functions) bypasses both.
    files: ['packages/*/src/**', 'functions/**'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ group: ['../../*', '!../../*.ts'], message: 'import another workspace package by its name (@slipway/...), not by a path out of this one' }],
      }],
    },
  },
  {
    // SST finds its platform types through this reference and nothing else.
    files: ['sst.config.ts'],
    rules: { '@typescript-eslint/triple-slash-reference': 'off' },
  },
  {
    // Plain JavaScript that Node runs as it is (a stand-in's thread, a bench's client process).
    files: ['**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
  {
    files: ['packages/dashboard/src/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['test/**', 'bench/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
