// Prints circomlibjs Poseidon outputs for the inputs given as JSON on the command line:
//   node poseidon-vectors.js '[["1"], ["1","2"], ["1","2","3"]]'
// Each inner list is one hash; values are decimal strings. Output: a JSON list of decimals.
const path = require("path");
const { buildPoseidon } = require(path.join(__dirname, "../../tools/node_modules/circomlibjs"));

(async () => {
  const inputs = JSON.parse(process.argv[2]);
  const poseidon = await buildPoseidon();
  const out = inputs.map((args) => poseidon.F.toString(poseidon(args.map((a) => BigInt(a)))));
  process.stdout.write(JSON.stringify(out));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
