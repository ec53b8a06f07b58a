/**
 * Every flag of the `covenant` command line, each defined and documented once. A command lists
 * the flags it takes (commands.ts); the same name means the same thing in every command.
 *
 * Adding a flag: define it here with its description (and default), add it to the command's
 * options in commands.ts, and read it in the handler. `--help` and the errors come from
 * @effect/cli.
 */
import { HelpDoc, Options, ValidationError } from "@effect/cli"
import { Effect, Option } from "effect"
import { catalogue } from "../adversary/catalogue.ts"
import { parseAdversaryFlag } from "../adversary/assign.ts"

const invalid = (flag: string, value: string, expected: string) =>
  ValidationError.invalidValue(HelpDoc.p(`--${flag} ${value}: expected ${expected}`))

/** An integer flag whose error names the flag and the range (@effect/cli's own names neither). */
const integer = (name: string, min: number, max = Number.MAX_SAFE_INTEGER) =>
  Options.text(name).pipe(
    Options.withPseudoName("N"),
    Options.mapEffect((text) => {
      const n = /^-?\d+$/.test(text) ? Number(text) : Number.NaN
      return Number.isSafeInteger(n) && n >= min && n <= max
        ? Effect.succeed(n)
        : Effect.fail(invalid(name, text, max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`))
    }),
  )

/** One of `values`; the error names the flag and the choices. */
const oneOf = <const A extends string>(name: string, values: ReadonlyArray<A>) =>
  Options.text(name).pipe(
    Options.withPseudoName(values.join("|")),
    Options.mapEffect((text) => (values as ReadonlyArray<string>).includes(text) ? Effect.succeed(text as A) : Effect.fail(invalid(name, text, values.join(" | ")))),
  )

const text = (name: string, pseudo: string) => Options.text(name).pipe(Options.withPseudoName(pseudo))

// ---- which run ----

export const presets = ["scaled", "debug", "debug-subnet", "covenant72b"] as const
export type Preset = (typeof presets)[number]

export const run = text("run", "file.ts").pipe(
  Options.withDescription("a run.ts whose default export is the run (defineRun); wins over --preset"),
  Options.optional,
)
export const preset = oneOf("preset", presets).pipe(
  Options.withDescription("a built-in run (default scaled): scaled (Covenant-72B scaled to this machine) | debug | debug-subnet (the debug model timed for a real subnet's 12 s blocks) | covenant72b"),
  Options.withDefault("scaled" as Preset),
)

// ---- what to print ----

export const plan = Options.boolean("plan").pipe(Options.withDescription("print the run's plan table (parameters, bytes on the wire, tokens, memory) and exit"))
export const spec = Options.boolean("spec").pipe(Options.withDescription("print the run's spec summary before its plan, and exit"))

// ---- how long ----

const windowsBase = integer("windows", 1).pipe(
  Options.withDescription("windows to run: the swarm runs N (default 16); a node runs N from the live window, then stops (a restarted node runs N more)"),
)
export const swarmWindows = windowsBase.pipe(Options.withDefault(16))
export const nodeWindows = windowsBase.pipe(Options.optional)
export const untilWindow = integer("until-window", 0).pipe(
  Options.withDescription("finish window N, then stop (default: run on); excludes --windows"),
  Options.optional,
)
/** Gone: refused with a pointer to what replaced it. */
export const rounds = Options.text("rounds").pipe(
  Options.withPseudoName("N"),
  Options.withDescription("gone, refused: use --until-window N or --windows N"),
  Options.optional,
  Options.mapEffect((value) =>
    Option.isNone(value)
      ? Effect.succeed(undefined)
      : Effect.fail(ValidationError.invalidValue(HelpDoc.p("--rounds is gone: --until-window N finishes window N then stops; --windows N runs N windows from the live one")))),
)

// ---- where it runs ----

export const backends = ["cpu", "cpu-fast", "webgpu", "auto"] as const
const backendBase = oneOf("backend", backends).pipe(
  Options.withDescription("the training engine: cpu (the reference) | cpu-fast (its WebAssembly SIMD kernels) | webgpu | auto (the fastest on a measured step); default auto for the swarm, cpu for a node"),
)
export const swarmBackend = backendBase.pipe(Options.withDefault("auto" as (typeof backends)[number]))
export const nodeBackend = backendBase.pipe(Options.withDefault("cpu" as (typeof backends)[number]))

export const transport = oneOf("transport", ["fs", "s3"] as const).pipe(
  Options.withDescription(
    "where updates are published (default fs). fs: a folder (--store). s3: the swarm starts a local S3-compatible server; a node reads " +
      "S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY (the write key, stays on this node) and " +
      "S3_READ_ACCESS_KEY_ID, S3_READ_SECRET_ACCESS_KEY (a read-only token committed on chain for the others; must differ " +
      "from the write key); this node's bucket is covenant-<name> (R2: S3_ENDPOINT=https://<account>.r2.cloudflarestorage.com)",
  ),
  Options.withDefault("fs" as "fs" | "s3"),
)
export const bucketCors = text("bucket-cors", "origin|none").pipe(
  Options.withDescription(
    "with --transport s3 (and prepare's s3:// output): the CORS rule this node gives its bucket when it has none, so browser tabs " +
      "(the peer page) can read it directly: GET and HEAD from this page origin, default * (any). CORS grants no access, every " +
      "read is still signed with the read key committed on chain. A rule already on the bucket is kept; none: leave the bucket's CORS alone",
  ),
  Options.withDefault("*"),
)
export const chain = text("chain", "local|ws-url").pipe(
  Options.withDescription(
    "local (default): the embedded local chain (--chain-dir; --own-chain serves it). ws(s)://...: a subtensor node, with " +
      "--netuid (hotkey registered and staked with btcli); the run's timing is checked against the chain's measured block " +
      "time and refused if it cannot fit (--fit-to-chain). The swarm takes only local: it registers its own nodes",
  ),
  Options.withDefault("local"),
)
export const chainDir = text("chain-dir", "dir").pipe(Options.withDescription("the local chain's folder (default .covenant/<run>/chain)"), Options.optional)
export const ownChain = Options.boolean("own-chain").pipe(Options.withDescription("this process owns the local chain: serves it on loopback and writes its URL into --chain-dir"))
export const netuid = integer("netuid", 0).pipe(Options.withDescription("the subnet, with a subtensor --chain"), Options.optional)
export const fitToChain = Options.boolean("fit-to-chain").pipe(Options.withDescription("derive the run's timing from the subtensor chain's measured block time instead of refusing a run that does not fit"))
export const store = text("store", "dir").pipe(Options.withDescription("the filesystem transport's folder (default .covenant/<run>/store)"), Options.optional)
export const dir = text("dir", "dir").pipe(Options.withDescription("the swarm's work folder: chain, store, state, data, report (default a fresh temporary folder)"), Options.optional)

// ---- who ----

export const secret = text("secret", "s").pipe(Options.withDescription("this node's hotkey: a dev URI (//Alice), a mnemonic or a 0x seed"))
export const name = text("name", "n").pipe(Options.withDescription("node name: bucket covenant-<n> and state folder (default: the role)"), Options.optional)
export const state = text("state", "dir").pipe(Options.withDescription("this node's state folder (default .covenant/<run>/nodes/<name>)"), Options.optional)
export const acceptSlow = Options.boolean("accept-slow").pipe(
  Options.withDescription("a peer times one inner step at start and refuses a run whose inner steps cannot fit its window on this machine (every update would land late); this runs it anyway"),
)

// ---- the swarm ----

export const peers = integer("peers", 1, 32).pipe(Options.withDescription("peers in the swarm, adversaries included (default 4)"), Options.withDefault(4))
export const adversary = text("adversary", "name|path.ts=count").pipe(
  Options.withDescription(`that many of the swarm's peers (the last ones) run a catalogue behaviour (${Object.keys(catalogue).join(", ")}) or a behaviour file's default export; repeatable`),
  Options.repeated,
  Options.mapEffect((values) => Effect.forEach(values, (value) => Effect.mapError(parseAdversaryFlag(value), (e) => ValidationError.invalidValue(HelpDoc.p(e.reason))))),
)
export const scoring = oneOf("scoring", ["gauntlet", "equal"] as const).pipe(
  Options.withDescription("how the validator weighs peers: the run's Gauntlet (default), or equal weights"),
  Options.withDefault("gauntlet" as "gauntlet" | "equal"),
)
export const dataCheck = oneOf("data-check", ["spec", "on", "off"] as const).pipe(
  Options.withDescription("the Gauntlet's data check (catches peers that train on other data): as the run's spec says (default; off in the presets), on (16 random batches, every peer every window; best with --backend cpu-fast), or off"),
  Options.withDefault("spec" as "spec" | "on" | "off"),
)
export const clock = oneOf("clock", ["wall", "simulated"] as const).pipe(
  Options.withDescription("wall (default), or simulated: a simulated clock with an in-memory store and chain, reproducible from the run's seed, taking compute time only (not with --transport s3)"),
  Options.withDefault("wall" as "wall" | "simulated"),
)
export const summary = text("summary", "file.json").pipe(Options.withDescription("write per window: eval loss, aggregated, rejected and flagged uids, weights; and each peer's behaviour"), Options.optional)
export const report = text("report", "file.html").pipe(Options.withDescription("the run's HTML report (loss, bytes, peers, phases; each peer's weight by behaviour) (default <dir>/report.html)"), Options.optional)

// ---- the peer page ----

export const pageData = text("data", "dir").pipe(Options.withDescription("where the page server prepares the run's shards for the tab (default .covenant/<run>/page-data)"), Options.optional)
export const port = integer("port", 0, 65535).pipe(Options.withDescription("the page server's port (default: any free port)"), Options.optional)
export const host = text("host", "addr").pipe(Options.withDescription("the page server's address (default 127.0.0.1)"), Options.optional)
export const offerKeys = Options.boolean("offer-keys").pipe(
  Options.withDescription("fill the page's form with this environment's S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY and S3_READ_* (and an s3:// corpus' DATA_S3_* keys), and make each tab's bucket covenant-<name> with a CORS rule letting this server's pages write it (a local run only: anyone who loads the page sees the keys)"),
)

// ---- prepare ----

export const input = text("input", "dir|file").pipe(Options.withDescription("text to tokenize (a folder or a file; repeatable; further arguments are more inputs)"), Options.repeated)
export const out = text("out", "dir|s3://bucket/prefix").pipe(
  Options.withDescription("where the shards go: a folder, or s3://bucket/prefix (store and write keys from DATA_S3_ENDPOINT, DATA_S3_REGION, DATA_S3_ACCESS_KEY_ID, DATA_S3_SECRET_ACCESS_KEY, each falling back to S3_*)"),
)
export const tokenizer = text("tokenizer", "tokenizer.json").pipe(Options.withDescription("a Hugging Face tokenizer.json (default: bytes, ids 0..255, 256 EOS, 257 PAD)"), Options.optional)
export const eosToken = text("eos-token", "T").pipe(Options.withDescription("the end-of-document token's text (default: tokenizer_config.json's, then common names)"), Options.optional)
export const eosId = integer("eos-id", 0).pipe(Options.withDescription("the end-of-document token's id (wins over --eos-token)"), Options.optional)
export const seqLen = integer("seq-len", 1).pipe(Options.withDescription("tokens per sample (default 2048)"), Options.withDefault(2048))
export const shardTokens = integer("shard-tokens", 1).pipe(Options.withDescription("tokens per shard (default: one shard)"), Options.optional)
export const partMib = integer("part-mib", 1).pipe(Options.withDescription("multipart part size in MiB for s3:// output, at least 5 (default 16)"), Options.withDefault(16))

// ---- chain ----

export const endpoint = text("endpoint", "ws-url").pipe(Options.withDescription("a subtensor node, e.g. wss://test.finney.opentensor.ai:443 or ws://127.0.0.1:9944 (with --netuid)"), Options.optional)
export const local = text("local", "dir").pipe(Options.withDescription("a local chain's folder whose owner is running (reads dir/owner.json)"), Options.optional)
export const blocksPerWindow = integer("blocks-per-window", 1).pipe(Options.withDescription("window length in blocks (default 115)"), Options.withDefault(115))
