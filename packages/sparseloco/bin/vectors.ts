/** `bun bin/vectors.ts <folder>`: checks every golden-vector *.json in a folder against this codec. */
import { checkFolder } from "../src/vectors.ts"

const dir = process.argv[2]
if (dir === undefined) {
  console.error("usage: bun bin/vectors.ts <folder>")
  process.exit(2)
}
let results
try {
  results = checkFolder(dir)
} catch (e) {
  console.error(`cannot read ${dir}: ${String(e)}`)
  process.exit(2)
}
for (const r of results) console.log(r.ok ? `PASS ${r.name}` : `FAIL ${r.name}: ${r.reason}`)
const passed = results.filter((r) => r.ok).length
console.log(`${passed} passed, ${results.length - passed} failed`)
process.exit(passed === results.length && results.length > 0 ? 0 : 1)
