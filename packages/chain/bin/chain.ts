// bun packages/chain/bin/chain.ts metagraph (--endpoint ws://... --netuid N | --local <dir>)
// Prints the metagraph and each uid's commitment (location only, never credentials).
import { mnemonicGenerate } from "@polkadot/util-crypto";
import { Effect, Either, Layer } from "effect";
import { Chain, describeChainError, identityFromSecret, layerLocalClient, layerSubtensor, readOwnerUrl } from "../src/index.ts";
import type { ChainShape, Commitment } from "../src/index.ts";

const usage = `Usage: bun packages/chain/bin/chain.ts metagraph [options]

Prints the subnet's metagraph and commitments as a table.

Options:
  --endpoint <ws-url>        a subtensor node, e.g. wss://entrypoint-finney.opentensor.ai:443,
                             wss://test.finney.opentensor.ai:443 or ws://127.0.0.1:9944
  --netuid <n>               the subnet (with --endpoint)
  --local <dir>              a local chain directory whose owner is running (reads dir/owner.json)
  --blocks-per-window <n>    window length in blocks (default 115)
  --help                     this text
`;

type Args = { readonly endpoint?: string; readonly netuid?: number; readonly local?: string; readonly blocksPerWindow: number };

const parseArgs = (argv: ReadonlyArray<string>): Either.Either<Args | "help", string> => {
  if (argv.includes("--help") || argv.includes("-h")) return Either.right("help");
  const [command, ...rest] = argv;
  if (command !== "metagraph") return Either.left(`unknown command ${JSON.stringify(command ?? "")}; try --help`);
  const values = new Map<string, string>();
  for (let i = 0; i < rest.length; i += 2) {
    const key = rest[i] ?? "";
    const value = rest[i + 1];
    if (!["--endpoint", "--netuid", "--local", "--blocks-per-window"].includes(key) || value === undefined) {
      return Either.left(`bad option ${JSON.stringify(key)}; try --help`);
    }
    values.set(key, value);
  }
  const int = (key: string, fallback?: number): number | undefined => {
    const text = values.get(key);
    return text === undefined ? fallback : /^\d+$/.test(text) ? Number(text) : Number.NaN;
  };
  const netuid = int("--netuid");
  const blocksPerWindow = int("--blocks-per-window", 115) ?? 115;
  const endpoint = values.get("--endpoint");
  const local = values.get("--local");
  if ((endpoint === undefined) === (local === undefined)) return Either.left("give exactly one of --endpoint or --local");
  if (endpoint !== undefined && (netuid === undefined || Number.isNaN(netuid))) return Either.left("--endpoint needs --netuid <n>");
  if (Number.isNaN(blocksPerWindow) || blocksPerWindow < 1) return Either.left("--blocks-per-window must be a positive integer");
  return Either.right({
    blocksPerWindow,
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(netuid === undefined ? {} : { netuid }),
    ...(local === undefined ? {} : { local }),
  });
};

const describeLocation = (c: Commitment): string => (c._tag === "S3" ? `s3 ${c.endpoint}/${c.bucket}` : `fs ${c.dir}`);

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ").trimEnd()).join("\n");
};

const printMetagraph = (chain: ChainShape) =>
  Effect.gen(function* () {
    const head = yield* chain.currentBlock;
    const metagraph = yield* chain.refreshMetagraph;
    const commitments = yield* chain.commitments;
    const byHotkey = new Map(commitments.map((c) => [c.hotkey, c]));
    const rows = metagraph.neurons.map((n) => {
      const c = byHotkey.get(n.hotkey);
      const location = c === undefined ? "-" : Either.isRight(c.commitment) ? describeLocation(c.commitment.right) : `unreadable (${c.raw.length} chars)`;
      return [String(n.uid), n.hotkey, n.coldkey, n.stake.toFixed(3), n.validatorPermit ? "yes" : "no", n.incentive.toFixed(4), String(n.lastUpdate), location];
    });
    console.log(`block ${head.number} (window ${chain.windowOf(head.number)}, ${new Date(head.timestampMs).toISOString()}), ${metagraph.neurons.length} uids`);
    console.log(table([["uid", "hotkey", "coldkey", "stake", "permit", "incentive", "last update", "commitment"], ...rows]));
  });

const main = Effect.gen(function* () {
  const parsed = parseArgs(process.argv.slice(2));
  if (Either.isLeft(parsed)) {
    console.error(parsed.left);
    return 2;
  }
  if (parsed.right === "help") {
    console.log(usage);
    return 0;
  }
  const args = parsed.right;
  // Reading needs no key of one's own: a throwaway identity fills the service's slot.
  const identity = yield* identityFromSecret(mnemonicGenerate());
  const layer =
    args.local !== undefined
      ? Layer.unwrapEffect(Effect.map(readOwnerUrl(args.local), (url) => layerLocalClient(url, identity, { reconnectTimeoutMs: 3_000 })))
      : layerSubtensor({ endpoint: args.endpoint ?? "", netuid: args.netuid ?? 0, identity, blocksPerWindow: args.blocksPerWindow, connectTimeoutMs: 20_000 });
  yield* Effect.provide(Effect.flatMap(Chain, printMetagraph), layer);
  return 0;
});

const code = await Effect.runPromise(
  main.pipe(
    Effect.catchAll((error) =>
      Effect.sync(() => {
        // e.g. "SubnetNotFound: subnet 77 does not exist on ws://…", "ChainUnavailable: endpoint …, reason cannot connect to …"
        console.error(error._tag === "IdentityError" || error._tag === "LocalStoreError" ? `${error._tag}: ${JSON.stringify(error)}` : describeChainError(error));
        return 1;
      }),
    ),
  ),
);
process.exit(code);
