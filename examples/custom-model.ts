/**
 * A model of one's own size, trained on the shipped fables tokenized by a Hugging Face
 * `tokenizer.json` (examples/tokenizer: a 62-token lower-case BPE, `</s>` its end of document).
 * Derived from the debug preset (its timing and protocol); small and on the local chain, it runs
 * as declared, not scaled.
 *
 *   bun run examples/custom-model.ts --peers 2 --windows 4 --backend cpu
 */
import { derive, debug, defineRun } from "@covenant/dsl"
import { runMain } from "@covenant/runtime"

const run = defineRun(() =>
  derive(debug(), {
    name: "custom-model",
    // The vocabulary must hold every id the tokenizer makes (62 here).
    model: { dim: 96, nLayers: 3, nHeads: 6, nKvHeads: 2, ffnDim: 256, vocabSize: 64, seqLen: 64 },
    data: {
      source: { kind: "text", path: "packages/runtime/corpus/aesop-fables.jsonl" },
      // Paths are relative to the repository root; a tokenizer_config.json beside it is read too.
      tokenizer: { kind: "huggingface", name: "examples/tokenizer/tokenizer.json" },
      eosTokenId: 1,
    },
  }))

export default run

if (import.meta.main) await runMain(run)
