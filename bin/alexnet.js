#!/usr/bin/env node
// The `alexnet` command: compiled TypeScript lives in dist/ (npm run build:ts).
import('../dist/cli/index.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist')) {
    console.error('alexnet: the TypeScript is not compiled yet; run `npm run build:ts` (or `npm run build`).');
  } else {
    console.error(err && err.stack ? err.stack : err);
  }
  process.exit(1);
});
