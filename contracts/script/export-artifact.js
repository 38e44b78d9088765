#!/usr/bin/env node
// Copies the compact artifact of RlnMembership out of forge's build output:
//
//   node contracts/script/export-artifact.js FORGE_OUT_DIR ARTIFACTS_DIR
//
// writes ARTIFACTS_DIR/RlnMembership.json = {"abi": [...], "bytecode": {"object": "0x..."}},
// the foundry artifact shape that alloy's `sol!(RlnMembership, "RlnMembership.json")` accepts.
'use strict';
const fs = require('fs');
const path = require('path');

const [outDir, artDir] = process.argv.slice(2);
if (!outDir || !artDir) {
  process.stderr.write('usage: export-artifact.js FORGE_OUT_DIR ARTIFACTS_DIR\n');
  process.exit(2);
}

for (const name of ['RlnMembership']) {
  const src = path.join(outDir, `${name}.sol`, `${name}.json`);
  const full = JSON.parse(fs.readFileSync(src, 'utf8'));
  const object = full.bytecode && full.bytecode.object;
  if (!Array.isArray(full.abi) || !/^0x[0-9a-f]+$/.test(object || '')) {
    throw new Error(`${src}: no abi or bytecode.object`);
  }
  const compact = { abi: full.abi, bytecode: { object } };
  fs.mkdirSync(artDir, { recursive: true });
  fs.writeFileSync(path.join(artDir, `${name}.json`), JSON.stringify(compact, null, 2) + '\n');
}
